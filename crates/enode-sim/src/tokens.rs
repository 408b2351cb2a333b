//! Token values and OAuth scopes.
//!
//! Tokens are self-describing and authenticated with a keyed hash: the value
//! names its grant, its sequence number and its expiry. The simulator thus
//! recognises every token it ever issued — an expired one is told apart from
//! a made-up one — without storing millions of them during a load test, and
//! a refresh token's sequence number against its grant's says at once
//! whether it is the current one or an already rotated (replayed) one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The scopes of the 1.3.10 spec, in bit order, plus `offline_access`.
pub(crate) const SCOPE_NAMES: [&str; 9] = [
    "offline_access",
    "all",
    "charging_location",
    "control:vehicle:charging",
    "vehicle:charge_state",
    "vehicle:information",
    "vehicle:location",
    "vehicle:odometer",
    "vehicle:smart_charging_policy",
];

/// A set of scopes as a bit set (cheap to check on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scopes(pub u16);

impl Scopes {
    pub const OFFLINE: Scopes = Scopes(1);
    pub const ALL: Scopes = Scopes(1 << 1);
    pub const CHARGING_LOCATION: Scopes = Scopes(1 << 2);
    pub const CONTROL_CHARGING: Scopes = Scopes(1 << 3);
    pub const CHARGE_STATE: Scopes = Scopes(1 << 4);
    pub const INFORMATION: Scopes = Scopes(1 << 5);
    pub const LOCATION: Scopes = Scopes(1 << 6);
    pub const ODOMETER: Scopes = Scopes(1 << 7);
    pub const SMART_CHARGING_POLICY: Scopes = Scopes(1 << 8);

    /// Parses a space-separated scope string; `Err` names the unknown scope.
    pub fn parse(s: &str) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in s.split(' ').filter(|n| !n.is_empty()) {
            match SCOPE_NAMES.iter().position(|k| *k == name) {
                Some(i) => bits |= 1 << i,
                None => return Err(name.to_string()),
            }
        }
        Ok(Scopes(bits))
    }

    /// Union of scopes.
    pub const fn or(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// Whether any scope of `other` is in `self`.
    pub fn intersects(self, other: Scopes) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The space-separated form.
    pub fn to_scope_string(self) -> String {
        SCOPE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Client credentials access token; `id` is the client index.
    Client = 1,
    /// User access token; `id` is the grant id.
    User = 2,
    /// Refresh token; `id` is the grant id.
    Refresh = 3,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Client => "sim_ct_",
            Kind::User => "sim_at_",
            Kind::Refresh => "sim_rt_",
        }
    }
}

/// What a token value says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claims {
    /// What it is.
    pub kind: Kind,
    /// Client index or grant id.
    pub id: u64,
    /// Access generation (access tokens) or rotation sequence (refresh).
    pub seq: u32,
    /// Expiry in Unix milliseconds; `i64::MAX` for never.
    pub expires_ms: i64,
    /// Random part so that two tokens never look alike.
    pub nonce: u64,
}

const PAYLOAD: usize = 1 + 8 + 4 + 8 + 8;
const MAC: usize = 16;

fn mac(key: &[u8; 32], payload: &[u8]) -> [u8; MAC] {
    let mut h = Sha256::new();
    h.update(key);
    h.update(payload);
    let d = h.finalize();
    let mut out = [0; MAC];
    out.copy_from_slice(&d[..MAC]);
    out
}

/// The token value for `c`, authenticated with `key`.
pub(crate) fn encode(key: &[u8; 32], c: &Claims) -> String {
    let mut buf = [0u8; PAYLOAD + MAC];
    buf[0] = c.kind as u8;
    buf[1..9].copy_from_slice(&c.id.to_be_bytes());
    buf[9..13].copy_from_slice(&c.seq.to_be_bytes());
    buf[13..21].copy_from_slice(&c.expires_ms.to_be_bytes());
    buf[21..29].copy_from_slice(&c.nonce.to_be_bytes());
    let m = mac(key, &buf[..PAYLOAD]);
    buf[PAYLOAD..].copy_from_slice(&m);
    let mut s = String::with_capacity(7 + 60);
    s.push_str(c.kind.prefix());
    URL_SAFE_NO_PAD.encode_string(buf, &mut s);
    s
}

/// The claims of a token this simulator issued with `key`, or `None` for
/// anything else.
pub(crate) fn decode(key: &[u8; 32], token: &str) -> Option<Claims> {
    let kind = match token.get(..7)? {
        "sim_ct_" => Kind::Client,
        "sim_at_" => Kind::User,
        "sim_rt_" => Kind::Refresh,
        _ => return None,
    };
    let mut buf = [0u8; PAYLOAD + MAC + 2];
    let n = URL_SAFE_NO_PAD
        .decode_slice(&token.as_bytes()[7..], &mut buf)
        .ok()?;
    if n != PAYLOAD + MAC || buf[0] != kind as u8 {
        return None;
    }
    let m = mac(key, &buf[..PAYLOAD]);
    // Not constant time: the simulator guards no secrets.
    if m[..] != buf[PAYLOAD..PAYLOAD + MAC] {
        return None;
    }
    let u64_at = |i: usize| u64::from_be_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    Some(Claims {
        kind,
        id: u64_at(1),
        seq: u32::from_be_bytes(buf[9..13].try_into().expect("4 bytes")),
        expires_ms: u64_at(13) as i64,
        nonce: u64_at(21),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let key = [7; 32];
        let c = Claims {
            kind: Kind::Refresh,
            id: 42,
            seq: 3,
            expires_ms: 1_700_000_000_000,
            nonce: 99,
        };
        let t = encode(&key, &c);
        assert!(t.starts_with("sim_rt_"));
        assert_eq!(decode(&key, &t), Some(c));
        assert_eq!(decode(&[8; 32], &t), None);
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 3;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(decode(&key, std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(decode(&key, &t.replacen("sim_rt_", "sim_at_", 1)), None);
        assert_eq!(decode(&key, "nonsense"), None);
    }

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse("offline_access all").unwrap();
        assert!(s.contains(Scopes::OFFLINE.or(Scopes::ALL)));
        assert_eq!(s.to_scope_string(), "offline_access all");
        assert_eq!(Scopes::parse("all bogus"), Err("bogus".into()));
    }
}
