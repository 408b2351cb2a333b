//! Bounds on everything that comes from outside the process, in one place.
//!
//! A server, a config file or a user on the CLI can send anything: a body
//! that never ends, a 10 MB error title, a token that lasts until the year
//! 300,000, a Retry-After in the year 9999. Each such value is bounded here
//! (with the reason for its bound) and enforced by the helpers below, so no
//! answer can panic a task, flood the log, eat memory or make the daemon
//! give up a user. README.md ("Limits") lists the same numbers.

use std::time::Duration;

/// Largest Enode API response body read (`GET /vehicles` for a user with a
/// few hundred vehicles is well under 1 MiB).
pub const ENODE_BODY_MAX: usize = 4 << 20;
/// Largest token endpoint response body read (a token answer is < 4 KiB).
pub const TOKEN_BODY_MAX: usize = 64 << 10;
/// Largest price API response body read (a week of ENTSO-E quarter-hours
/// as XML is about 300 KiB).
pub const PRICE_BODY_MAX: usize = 8 << 20;
/// Largest price file read (three years of hourly prices are < 1 MiB).
pub const PRICE_FILE_MAX: u64 = 32 << 20;
/// Longest price slot accepted from a provider, a price file or the cache.
/// Market slots last 15 or 60 minutes and a fixed price is written per
/// day or month; a slot of centuries (a timestamp of 0 or the year 9999)
/// would make the tariff formula cut it at every local midnight and every
/// grid-fee window edge: millions of slots and hundreds of MB per publish.
pub const PRICE_SLOT_MAX: chrono::TimeDelta = chrono::TimeDelta::days(31);
/// Longest span of one quote, first start to last end: a price file may
/// hold years of history (the shared series hold three), not millennia
/// of slots, for the same reason as [`PRICE_SLOT_MAX`].
pub const PRICE_SPAN_MAX: chrono::TimeDelta = chrono::TimeDelta::days(10 * 366);
/// Of an error answer (4xx/5xx), only this much is read for its problem
/// body; the rest is dropped unread.
pub const ERROR_BODY_MAX: usize = 64 << 10;

/// Largest webhook delivery read (Enode sends at most 100 events of a
/// few KiB each); a longer body is refused with 413 unread.
pub const WEBHOOK_BODY_MAX: usize = 1 << 20;
/// A webhook delivery id (`X-Enode-Delivery`) longer than this, or with
/// characters outside printable ASCII, is not remembered (it becomes a
/// store key and a log field).
pub const DELIVERY_ID_MAX: usize = 128;
/// Delivery ids remembered for deduplication: Enode retries a failed
/// delivery within hours, and this many ids cover days of a small fleet's
/// deliveries in well under a megabyte.
pub const DELIVERIES_REMEMBERED: usize = 10_000;

/// Requests in flight to Enode at most, API and token endpoint together;
/// also the idle connections kept. Thousands of refreshes or commands due
/// at one instant queue here instead of opening a connection each: every
/// connection kept its buffers (about 20 KiB), which made a 10,000-vehicle
/// fleet peak at 380 MiB. The fleet's polls have a smaller bound of their
/// own inside this one, so commands and refreshes always find a slot.
pub const ENODE_CONNECTIONS_MAX: usize = 64;

/// Largest secret file read (client secret, price API token): a secret
/// is a few hundred bytes; a config naming `/dev/zero` or a log file by
/// mistake must fail at once instead of reading without end.
pub const SECRET_FILE_MAX: u64 = 64 << 10;

/// Reads a secret file of at most [`SECRET_FILE_MAX`] bytes as UTF-8 text.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(SECRET_FILE_MAX + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > SECRET_FILE_MAX {
        return Err(std::io::Error::other(format!(
            "larger than {SECRET_FILE_MAX} bytes"
        )));
    }
    Ok(text)
}

/// Strings from outside (problem titles, OAuth error descriptions, provider
/// error texts) are cut to this many bytes before they reach a log line, an
/// error message or the store.
pub const TEXT_MAX: usize = 512;

/// Token lifetimes (`expires_in`) are clamped to this range: below it a
/// refresh storm, above it arithmetic overflow. Enode's are one hour.
pub const TOKEN_LIFETIME_MIN: Duration = Duration::from_secs(60);
/// See [`TOKEN_LIFETIME_MIN`]. Refreshing once a day costs nothing.
pub const TOKEN_LIFETIME_MAX: Duration = Duration::from_secs(86_400);
/// The keeper never refreshes one user's tokens twice within this time,
/// whatever the server says about their lifetime.
pub const REFRESH_FLOOR: Duration = Duration::from_secs(30);

/// A Retry-After (seconds or HTTP date) is capped at this: a server that
/// asks for more gets one probe an hour instead of a day of silence before
/// a deadline.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Ids Enode gives us (vehicles, charging locations) longer than this, or
/// with control characters, are not accepted: they become store keys,
/// URL path segments and log fields.
pub const ENODE_ID_MAX: usize = 128;

/// The documented range of a duration setting in the config file.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The key as written in the config.
    pub key: &'static str,
    /// Shortest accepted value.
    pub min: Duration,
    /// Longest accepted value.
    pub max: Duration,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `[enode] request_timeout`: every API request, connect to last byte.
pub const REQUEST_TIMEOUT: Bounds = Bounds {
    key: "request_timeout",
    min: secs(1),
    max: secs(300),
};
/// `[enode] token_timeout`: one token call. Long on purpose: abandoning a
/// refresh the server has already rotated loses the user.
pub const TOKEN_TIMEOUT: Bounds = Bounds {
    key: "token_timeout",
    min: secs(10),
    max: secs(900),
};
/// `[tokens] refresh_lead`.
pub const REFRESH_LEAD: Bounds = Bounds {
    key: "refresh_lead",
    min: secs(0),
    max: secs(3600),
};
/// `[tokens] refresh_jitter`.
pub const REFRESH_JITTER: Bounds = Bounds {
    key: "refresh_jitter",
    min: secs(0),
    max: secs(3600),
};
/// `[tokens] link_timeout`: how long a started link flow stays valid.
pub const LINK_TIMEOUT: Bounds = Bounds {
    key: "link_timeout",
    min: secs(60),
    max: secs(86_400),
};
/// `[policy] poll_fast`.
pub const POLL_FAST: Bounds = Bounds {
    key: "poll_fast",
    min: secs(10),
    max: secs(3600),
};
/// `[policy] poll_slow`.
pub const POLL_SLOW: Bounds = Bounds {
    key: "poll_slow",
    min: secs(30),
    max: secs(86_400),
};
/// `[webhooks] safety_poll`: polling while webhooks deliver.
pub const SAFETY_POLL: Bounds = Bounds {
    key: "safety_poll",
    min: secs(60),
    max: secs(86_400),
};
/// `[webhooks] silence`: no delivery for this long and webhooks count as
/// down (polling returns to normal).
pub const WEBHOOK_SILENCE: Bounds = Bounds {
    key: "silence",
    min: secs(60),
    max: secs(86_400),
};
/// `[prices] request_timeout`.
pub const PRICE_REQUEST_TIMEOUT: Bounds = Bounds {
    key: "request_timeout",
    min: secs(1),
    max: secs(300),
};
/// `[prices] retry_every`.
pub const PRICE_RETRY_EVERY: Bounds = Bounds {
    key: "retry_every",
    min: secs(10),
    max: secs(86_400),
};
/// `[prices] retry_max`.
pub const PRICE_RETRY_MAX: Bounds = Bounds {
    key: "retry_max",
    min: secs(10),
    max: secs(86_400),
};
/// `[prices.file] poll_every`.
pub const PRICE_FILE_POLL: Bounds = Bounds {
    key: "poll_every",
    min: secs(1),
    max: secs(86_400),
};
/// `[store] journal_retention`: how long command journal entries are kept.
pub const JOURNAL_RETENTION: Bounds = Bounds {
    key: "journal_retention",
    min: secs(86_400),
    max: secs(3650 * 86_400),
};

/// `[http] header_timeout` and `[admin] header_timeout`: how long a
/// connection may take to send a request head, and how long it may sit
/// idle between requests, before it is closed (slowloris, fd exhaustion).
pub const HEADER_TIMEOUT: Bounds = Bounds {
    key: "header_timeout",
    min: secs(1),
    max: secs(300),
};

/// The range of `[http] max_connections` and `[admin] max_connections`:
/// at least one, and few enough that the daemon keeps file descriptors
/// for Enode, the store and the price source (systemd's default soft
/// limit is 1024).
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<u32> = 1..=4096;

impl Bounds {
    /// Checks `d` against the range; the message names the key and range.
    pub fn check(&self, d: Duration) -> Result<Duration, String> {
        if d < self.min || d > self.max {
            Err(format!(
                "{} {} is out of range ({} to {})",
                self.key,
                show(d),
                show(self.min),
                show(self.max)
            ))
        } else {
            Ok(d)
        }
    }
}

/// A duration as the config writes it (`90s`, `5m`, `2h`, `1d`).
pub fn show(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 && !d.is_zero() {
        format!("{}ms", d.as_millis())
    } else if s != 0 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// `s` cut to at most [`TEXT_MAX`] bytes (on a character boundary, marked
/// with `…`), with control characters (CR, LF, ESC, NUL ...) replaced, so a
/// hostile string can neither grow a log line nor forge one.
pub fn clip(s: &str) -> String {
    clip_to(s, TEXT_MAX)
}

/// [`clip`] with an explicit byte budget.
pub fn clip_to(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 3));
    for c in s.chars() {
        // The budget counts what is written: a control character becomes
        // the 3-byte U+FFFD, not its own 1 byte.
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Whether an id from Enode is acceptable: 1 to [`ENODE_ID_MAX`] bytes, no
/// control characters, not only spaces.
pub fn enode_id_ok(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= ENODE_ID_MAX && !id.chars().any(char::is_control)
}

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the limit (by its Content-Length or as read).
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Reading failed (timeout, reset).
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads a response body of at most `limit` bytes, chunk by chunk, so an
/// endless or huge body costs at most `limit` bytes of memory. A declared
/// Content-Length over the limit is refused before anything is read.
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads at most `limit` bytes of an error body; a longer one is cut there
/// (an error body is only read for its problem fields), a failed read gives
/// what arrived.
pub async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

/// Servers that misbehave, for the tests of every HTTP client.
#[cfg(test)]
pub(crate) mod test_support {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on 127.0.0.1:0 that answers every request with 200 and a
    /// chunked body that never ends; returns its base URL.
    pub async fn endless_body_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                    while sock.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_bounds_length_on_a_char_boundary() {
        let long = "é".repeat(10_000);
        let c = clip(&long);
        assert!(c.len() <= TEXT_MAX + '…'.len_utf8(), "{}", c.len());
        assert!(c.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn clip_counts_replaced_control_characters_against_the_budget() {
        let c = clip(&"\0".repeat(10_000));
        assert!(c.len() <= TEXT_MAX + '…'.len_utf8(), "{}", c.len());
        assert!(c.ends_with('…'));
    }

    #[test]
    fn clip_replaces_control_characters() {
        assert_eq!(
            clip("a\r\nb\0c\u{1b}[31m"),
            "a\u{fffd}\u{fffd}b\u{fffd}c\u{fffd}[31m"
        );
    }

    #[test]
    fn bounds_name_the_key_and_range() {
        assert_eq!(POLL_FAST.check(secs(120)), Ok(secs(120)));
        assert_eq!(
            POLL_FAST.check(secs(100_000_000 * 86_400)).unwrap_err(),
            "poll_fast 100000000d is out of range (10s to 1h)"
        );
        assert!(REQUEST_TIMEOUT.check(Duration::ZERO).is_err());
        assert_eq!(show(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn enode_ids() {
        assert!(enode_id_ok("4b9c2f0e-8f8a-4b0e-9e3a-2d1e0c6f7a11"));
        assert!(!enode_id_ok(""));
        assert!(!enode_id_ok("   "));
        assert!(!enode_id_ok("a\nb"));
        assert!(!enode_id_ok(&"x".repeat(ENODE_ID_MAX + 1)));
    }
}
