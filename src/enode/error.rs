//! What can go wrong talking to Enode, sorted by what the caller does next.
//!
//! Each variant of [`Error`] is a decision: refresh the token (`Unauthorized`),
//! wait (`RateLimited`), retry with backoff (`Transient`), log and give up on
//! this request (`Rejected`, `Forbidden`, `NotFound`), or fix the code or the
//! config (`Decode`, `ClientToken`, `Setup`). Messages never carry a token:
//! tokens travel in headers and bodies, which are never copied into errors
//! except for problem+json fields written by the server.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

use super::auth::AuthError;

/// An error from an Enode API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: the access token is missing, expired or revoked. Refresh it once;
    /// if that fails too the user must link again.
    #[error("unauthorized: {0}")]
    Unauthorized(Problem),
    /// 403: the token is valid but lacks access (scope, or not the user's vehicle).
    #[error("forbidden: {0}")]
    Forbidden(Problem),
    /// 404: no such user, vehicle or location (it may have been unlinked).
    #[error("not found: {0}")]
    NotFound(Problem),
    /// 429, or 503 with a Retry-After: no request for this user/vendor before
    /// `retry_after`; without one, back off exponentially with jitter.
    #[error("rate limited{}: {problem}", RetryAfter::suffix(retry_after))]
    RateLimited {
        /// When the server allows the next request, if it said.
        retry_after: Option<RetryAfter>,
        /// The problem body, if any.
        problem: Problem,
    },
    /// Worth retrying with backoff: 5xx, timeouts, connection failures.
    #[error("transient failure: {0}")]
    Transient(Transient),
    /// Any other 4xx (400 payload validation, 409, ...): the request itself is
    /// wrong; retrying it unchanged will not help.
    #[error("rejected: {0}")]
    Rejected(Problem),
    /// A 2xx answer whose body is not the JSON expected (not even leniently).
    #[error("cannot decode the {what} response: {reason}")]
    Decode {
        /// Which call's response it was.
        what: &'static str,
        /// The parser's complaint (never the body itself).
        reason: String,
    },
    /// The client-credentials token needed for an admin call could not be had.
    #[error("cannot get a client token")]
    ClientToken(#[source] AuthError),
    /// The client could not be built or a URL could not be formed from the config.
    #[error("enode client setup: {0}")]
    Setup(String),
}

impl Error {
    /// Whether retrying the same request later can succeed on its own
    /// (as opposed to needing a new token, a relink or a code/config change).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Transient(_) => true,
            Error::ClientToken(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// A short name of the kind of failure, for grouping failures into
    /// episodes in the log (see [`crate::outage`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not found",
            Error::RateLimited { .. } => "rate limited",
            Error::Transient(Transient::Server(_)) => "server error",
            Error::Transient(Transient::Timeout) => "timeout",
            Error::Transient(Transient::Network(_)) => "network",
            Error::Rejected(_) => "rejected",
            Error::Decode { .. } => "malformed response",
            Error::ClientToken(_) => "client token",
            Error::Setup(_) => "setup",
        }
    }

    /// The server's Retry-After, when it sent one.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            Error::ClientToken(AuthError::RateLimited { retry_after }) => *retry_after,
            _ => None,
        }
    }

    /// The RFC 7807 problem the server sent, for logging.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Unauthorized(p)
            | Error::Forbidden(p)
            | Error::NotFound(p)
            | Error::Rejected(p)
            | Error::RateLimited { problem: p, .. }
            | Error::Transient(Transient::Server(p)) => Some(p),
            _ => None,
        }
    }

    /// Classifies a non-2xx answer. `now` is the clock's time when the
    /// answer arrived, the reference for a Retry-After given as an HTTP date.
    pub fn from_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Error {
        let problem = Problem::parse(status, body);
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| RetryAfter::parse(v, now));
        match status.as_u16() {
            401 => Error::Unauthorized(problem),
            403 => Error::Forbidden(problem),
            404 => Error::NotFound(problem),
            429 => Error::RateLimited {
                retry_after,
                problem,
            },
            503 if retry_after.is_some() => Error::RateLimited {
                retry_after,
                problem,
            },
            500..=599 => Error::Transient(Transient::Server(problem)),
            _ => Error::Rejected(problem),
        }
    }

    /// Classifies a failure to get any answer at all.
    pub fn from_reqwest(e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Transient(Transient::Timeout)
        } else if e.is_builder() {
            Error::Setup(e.without_url().to_string())
        } else {
            Error::Transient(Transient::Network(e))
        }
    }
}

/// Why a request is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// A 5xx answer (without Retry-After).
    #[error("server error: {0}")]
    Server(Problem),
    /// No complete answer within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// Connecting, sending or reading failed.
    #[error("network error")]
    Network(#[source] reqwest::Error),
}

/// An RFC 7807 problem (`application/problem+json`), or as much of one as
/// the server sent. Every field is optional on the wire; `status` falls back
/// to the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problem {
    /// HTTP status code.
    pub status: u16,
    /// URI naming the kind of problem, e.g.
    /// `https://docs.enode.io/problems/payload-validation-error`.
    pub problem_type: Option<String>,
    /// Short human-readable summary.
    pub title: Option<String>,
    /// Explanation specific to this occurrence.
    pub detail: Option<String>,
}

impl Problem {
    /// Reads a problem body leniently: anything that is not a JSON object
    /// yields a problem with only the status.
    pub fn parse(status: StatusCode, body: &[u8]) -> Problem {
        let mut p = Problem {
            status: status.as_u16(),
            ..Problem::default()
        };
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            let text = |k: &str| match map.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Some(crate::limits::clip(s)),
                _ => None,
            };
            p.problem_type = text("type");
            p.title = text("title");
            p.detail = text("detail");
        }
        p
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(t) = &self.title {
            write!(f, " {t}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        if let Some(t) = &self.problem_type {
            write!(f, " [{t}]")?;
        }
        Ok(())
    }
}

/// A parsed Retry-After: how long to wait, and the clock instant that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// Wait at least this long from when the answer arrived.
    pub delay: Duration,
    /// No request before this instant (answer time + `delay`).
    pub not_before: DateTime<Utc>,
}

impl RetryAfter {
    /// Parses a Retry-After value: delay-seconds or an HTTP date (IMF-fixdate,
    /// RFC 850 or asctime). A date in the past means "now"; either form is
    /// capped at [`RETRY_AFTER_MAX`](crate::limits::RETRY_AFTER_MAX). `now`
    /// is the clock's time when the answer arrived. Garbage yields `None`.
    pub fn parse(value: &str, now: DateTime<Utc>) -> Option<RetryAfter> {
        let v = value.trim();
        if v.len() > 64 {
            return None;
        }
        let delay = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            Duration::from_secs(v.parse().unwrap_or(u64::MAX))
        } else {
            let at = parse_http_date(v)?;
            (at - now).to_std().unwrap_or(Duration::ZERO)
        };
        let delay = delay.min(crate::limits::RETRY_AFTER_MAX);
        Some(RetryAfter {
            delay,
            not_before: now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::zero()),
        })
    }

    /// `" (retry after 30s)"`, for error messages.
    #[cfg(test)]
    fn message_suffix(self) -> String {
        Self::suffix(&Some(self))
    }

    /// `" (retry after 30s)"` for error messages, or nothing.
    fn suffix(r: &Option<RetryAfter>) -> String {
        match r {
            Some(r) => format!(" (retry after {}s)", r.delay.as_secs()),
            None => String::new(),
        }
    }
}

/// Parses the three HTTP-date forms of RFC 9110 section 5.6.7.
fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    const FORMATS: [&str; 3] = [
        "%a, %d %b %Y %H:%M:%S GMT", // IMF-fixdate (when rfc2822 was picky)
        "%A, %d-%b-%y %H:%M:%S GMT", // RFC 850
        "%a %b %e %H:%M:%S %Y",      // asctime
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 10, 21, 7, 0, 0).unwrap()
    }

    #[test]
    fn retry_after_seconds() {
        let r = RetryAfter::parse("30", now()).unwrap();
        assert_eq!(r.delay, Duration::from_secs(30));
        assert_eq!(r.not_before, now() + TimeDelta::seconds(30));
        assert_eq!(
            RetryAfter::parse(" 0 ", now()).unwrap().delay,
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_http_dates_in_all_three_forms() {
        let want = Duration::from_secs(28 * 60);
        for v in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            let r = RetryAfter::parse(v, now()).unwrap_or_else(|| panic!("{v}"));
            assert_eq!(r.delay, want, "{v}");
            assert_eq!(r.not_before, now() + TimeDelta::minutes(28), "{v}");
        }
    }

    #[test]
    fn retry_after_in_the_past_means_now() {
        let r = RetryAfter::parse("Wed, 21 Oct 2015 06:00:00 GMT", now()).unwrap();
        assert_eq!(r.delay, Duration::ZERO);
        assert_eq!(r.not_before, now());
    }

    #[test]
    fn retry_after_is_capped_alike_in_both_forms() {
        let cap = crate::limits::RETRY_AFTER_MAX;
        for v in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "99999999999999999999999",
            "86400",
        ] {
            let r = RetryAfter::parse(v, now()).unwrap_or_else(|| panic!("{v}"));
            assert_eq!(r.delay, cap, "{v}");
            assert_eq!(
                r.not_before,
                now() + TimeDelta::from_std(cap).unwrap(),
                "{v}"
            );
        }
        assert_eq!(
            RetryAfter::parse("Fri, 31 Dec 9999 23:59:59 GMT", now())
                .unwrap()
                .message_suffix(),
            " (retry after 3600s)"
        );
    }

    #[test]
    fn problem_strings_are_clipped() {
        let title = "t".repeat(10 << 20);
        let body = serde_json::json!({ "title": title, "detail": "a\nforged line" }).to_string();
        let p = Problem::parse(StatusCode::INTERNAL_SERVER_ERROR, body.as_bytes());
        assert!(p.title.as_ref().unwrap().len() <= crate::limits::TEXT_MAX + 3);
        assert!(!p.detail.as_ref().unwrap().contains('\n'));
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        for v in ["", "soon", "-5", "1.5", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(RetryAfter::parse(v, now()), None, "{v}");
        }
    }

    #[test]
    fn problem_json_is_parsed_into_rejected() {
        let body = br#"{"type":"https://docs.enode.io/problems/payload-validation-error",
            "title":"Payload validation failed","detail":"\"action\" is required","extra":1}"#;
        let e = Error::from_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), body, now());
        let Error::Rejected(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.status, 400);
        assert_eq!(p.title.as_deref(), Some("Payload validation failed"));
        assert_eq!(p.detail.as_deref(), Some("\"action\" is required"));
        assert_eq!(
            p.problem_type.as_deref(),
            Some("https://docs.enode.io/problems/payload-validation-error")
        );
        assert_eq!(
            e.to_string(),
            "rejected: status 400 Payload validation failed (\"action\" is required) \
             [https://docs.enode.io/problems/payload-validation-error]"
        );
    }

    #[test]
    fn statuses_map_to_decisions() {
        let h = HeaderMap::new();
        let e = |s: u16, h: &HeaderMap| {
            Error::from_response(StatusCode::from_u16(s).unwrap(), h, b"<html>", now())
        };
        assert!(matches!(e(401, &h), Error::Unauthorized(_)));
        assert!(matches!(e(403, &h), Error::Forbidden(_)));
        assert!(matches!(e(404, &h), Error::NotFound(_)));
        assert!(matches!(e(409, &h), Error::Rejected(_)));
        assert!(matches!(
            e(429, &h),
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(e(503, &h), Error::Transient(Transient::Server(_))));
        assert!(matches!(e(500, &h), Error::Transient(Transient::Server(_))));
        let mut with = HeaderMap::new();
        with.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let r = e(503, &with);
        assert_eq!(r.retry_after().unwrap().delay, Duration::from_secs(7));
        assert!(r.is_retryable());
        assert!(!e(400, &h).is_retryable());
        assert_eq!(e(502, &h).problem().unwrap().title, None);
    }
}
