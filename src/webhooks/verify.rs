//! The signature check: `X-Enode-Signature` is `sha1=` and the hex
//! HMAC-SHA1 of the raw body under the shared secret. It runs before the
//! body is parsed, and compares in constant time (`hmac`'s
//! `verify_slice`), so neither a parser bug nor a timing difference is
//! reachable without the secret.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Enode-Signature` header.
    #[error("no signature header")]
    Missing,
    /// Not `sha1=` followed by 40 hex digits.
    #[error("malformed signature header")]
    Malformed,
    /// Well formed, but not the body's HMAC under our secret.
    #[error("wrong signature")]
    Wrong,
    /// No secret is configured, so nothing can be verified.
    #[error("no webhook secret configured")]
    NoSecret,
}

/// Length of a SHA-1 MAC in bytes.
const MAC_LEN: usize = 20;

/// Checks `header` (the raw `X-Enode-Signature` value) against `body`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix(b"sha1=")
        .ok_or(SignatureError::Malformed)?;
    let mac = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut m = Hmac::<Sha1>::new_from_slice(secret).map_err(|_| SignatureError::NoSecret)?;
    m.update(body);
    m.verify_slice(&mac).map_err(|_| SignatureError::Wrong)
}

/// The header value for `body` under `secret` (for `webhook test` and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(body);
    let mac = m.finalize().into_bytes();
    let mut s = String::with_capacity(5 + 2 * MAC_LEN);
    s.push_str("sha1=");
    for b in mac {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// 40 hex digits (either case) as 20 bytes.
fn decode_hex(hex: &[u8]) -> Option<[u8; MAC_LEN]> {
    if hex.len() != 2 * MAC_LEN {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; MAC_LEN];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_vector() {
        // RFC 2202 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn only_the_right_signature_passes() {
        let body = br#"[{"event":"x"}]"#;
        let good = sign(b"s3cret", body);
        assert_eq!(verify(b"s3cret", body, Some(good.as_bytes())), Ok(()));
        let upper = format!("sha1={}", good[5..].to_uppercase());
        assert_eq!(verify(b"s3cret", body, Some(upper.as_bytes())), Ok(()));
        assert_eq!(verify(b"s3cret", body, None), Err(SignatureError::Missing));
        assert_eq!(
            verify(b"other", body, Some(good.as_bytes())),
            Err(SignatureError::Wrong)
        );
        let mut changed = body.to_vec();
        changed[3] ^= 1;
        assert_eq!(
            verify(b"s3cret", &changed, Some(good.as_bytes())),
            Err(SignatureError::Wrong)
        );
        for bad in [
            &good[5..],
            "sha256=00",
            "sha1=",
            &format!("{good}00"),
            "sha1=zz0102030405060708090a0b0c0d0e0f10111213",
        ] {
            assert_eq!(
                verify(b"s3cret", body, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
