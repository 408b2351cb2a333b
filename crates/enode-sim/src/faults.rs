//! Faults on demand: rate limiting, server errors, slow answers, broken
//! answers (a connection closed without an answer, a body that is not
//! JSON, a body too large to read) and a refusing consent screen, set per
//! test through `SimHandle` or `POST /_sim/faults`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One fault rule. Rules are checked in the order they were added; every
/// matching latency rule adds its delay, the first matching error wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Only requests on behalf of this user (`None`: every request, client
    /// tokens included).
    #[serde(default)]
    pub user: Option<String>,
    /// Which endpoints it hits.
    #[serde(default)]
    pub target: Target,
    /// When it fires.
    #[serde(default)]
    pub trigger: Trigger,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// `429 Too Many Requests`, with `Retry-After: retry_after_secs` if
    /// given (`{"type":"rate_limit"}` alone is a 429 without one, which a
    /// client must meet with its own backoff).
    RateLimit {
        /// Seconds the client must wait.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// A 5xx answer (500, 502, 503, 504), with `Retry-After` if given.
    ServerError {
        /// The HTTP status.
        status: u16,
        /// Optional `Retry-After` seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// The answer comes this much later (clock time, so paused time applies).
    Latency {
        /// Delay in milliseconds.
        millis: u64,
    },
    /// The connection is closed without an HTTP answer, as a proxy or a
    /// crashing server does. The request has no effect.
    ConnectionReset,
    /// `200` with `Content-Type: application/json` and a body that is not
    /// what the endpoint answers: `body` if given, else an HTML error page
    /// (what a misconfigured proxy sends). The request has no effect.
    MalformedBody {
        /// The body to send.
        #[serde(default)]
        body: Option<String>,
    },
    /// `200` with a JSON body of `bytes` bytes (an empty array padded with
    /// whitespace: valid JSON that means "nothing" to a client that reads it
    /// all), streamed so the simulator never holds it. The request has no
    /// effect.
    OversizedBody {
        /// Body length in bytes.
        bytes: u64,
    },
}

/// The endpoints a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The Enode API (users, vehicles, charging locations, me).
    #[default]
    Api,
    /// `POST /oauth2/token`.
    Token,
    /// Both.
    Any,
}

/// When a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// On every matching request until removed.
    #[default]
    Always,
    /// On the next `n` matching requests, then the rule is gone.
    Next {
        /// How many requests are left.
        n: u32,
    },
    /// On each matching request with probability `p` (seeded RNG).
    Rate {
        /// Probability in 0..=1.
        p: f64,
    },
}

/// Identifies a rule so a test can remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

/// An error the fault layer answers instead of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Injected {
    /// 429, with Retry-After if given.
    RateLimited { retry_after_secs: Option<u64> },
    /// A 5xx.
    Server {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// An answer that is not an HTTP error: see [`Broken`].
    Broken(Broken),
}

impl Injected {
    /// The Retry-After it carries, in seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Injected::RateLimited { retry_after_secs }
            | Injected::Server {
                retry_after_secs, ..
            } => *retry_after_secs,
            Injected::Broken(_) => None,
        }
    }

    /// A short name, for [`Stats::injected`](crate::Stats::injected).
    pub fn name(&self) -> &'static str {
        match self {
            Injected::RateLimited { .. } => "rate_limit",
            Injected::Server { .. } => "server_error",
            Injected::Broken(Broken::Reset) => "connection_reset",
            Injected::Broken(Broken::Malformed(_)) => "malformed_body",
            Injected::Broken(Broken::Oversized(_)) => "oversized_body",
        }
    }
}

/// A broken answer: the connection closes, or a 200 whose body is useless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Broken {
    /// No answer: the connection is closed.
    Reset,
    /// 200 with this body.
    Malformed(String),
    /// 200 with a body of this many bytes.
    Oversized(u64),
}

/// Marks a response whose connection is closed before anything is sent,
/// so the request counters record it under status 0 ("no answer").
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoAnswer;

/// The default [`FaultKind::MalformedBody`] body.
const PROXY_PAGE: &str = "<html><head><title>502 Bad Gateway</title></head>\
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n";

/// One chunk of [`Broken::Oversized`] padding.
static PADDING: [u8; 64 << 10] = [b' '; 64 << 10];

/// A body that fails at its first frame: hyper then drops the connection
/// with the response head still unsent (it is buffered, not flushed, until
/// the body yields), so the client sees the connection close without an
/// answer.
fn failing_body() -> Body {
    Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    }))
}

/// `[`, `bytes - 2` spaces in 64 KiB chunks, `]`, produced as it is sent.
fn padded_body(bytes: u64) -> Body {
    let inner = bytes.saturating_sub(2);
    let full = inner / PADDING.len() as u64;
    let rest = (inner % PADDING.len() as u64) as usize;
    let chunks = std::iter::once(Bytes::from_static(b"["))
        .chain((0..full).map(|_| Bytes::from_static(&PADDING)))
        .chain(std::iter::once(Bytes::from_static(&PADDING[..rest])))
        .chain(std::iter::once(Bytes::from_static(b"]")))
        .map(Ok::<_, std::io::Error>);
    Body::from_stream(futures_util::stream::iter(chunks))
}

impl IntoResponse for Broken {
    fn into_response(self) -> Response {
        let json = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        match self {
            Broken::Reset => {
                let mut r = (StatusCode::OK, failing_body()).into_response();
                r.extensions_mut().insert(NoAnswer);
                r
            }
            Broken::Malformed(body) => (StatusCode::OK, json, body).into_response(),
            Broken::Oversized(bytes) => {
                let mut r = (StatusCode::OK, json, padded_body(bytes)).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.max(2)));
                r
            }
        }
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Delay before answering.
    pub latency: Duration,
    /// Error to answer instead, if any.
    pub error: Option<Injected>,
}

/// The authorize endpoint's answer when told to refuse (RFC 6749 4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeError {
    /// `error`: access_denied, invalid_request, unauthorized_client,
    /// unsupported_response_type, invalid_scope, server_error or
    /// temporarily_unavailable.
    pub error: String,
    /// `error_description`.
    pub description: String,
}

impl AuthorizeError {
    /// The user said no in the Link UI.
    pub fn access_denied() -> Self {
        AuthorizeError {
            error: "access_denied".into(),
            description: "The resource owner or authorization server denied the request.".into(),
        }
    }
}

/// The active rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Rules in insertion order.
    rules: Vec<(FaultId, Fault)>,
    /// Next id to hand out.
    next_id: u64,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&mut self, f: Fault) -> FaultId {
        self.next_id += 1;
        let id = FaultId(self.next_id);
        self.rules.push((id, f));
        id
    }

    /// Removes a rule; false if it was gone already.
    pub fn remove(&mut self, id: FaultId) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        before != self.rules.len()
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Decides for one request to `target` on behalf of `user`.
    pub fn decide(&mut self, target: Target, user: Option<&str>, rng: &mut impl Rng) -> Decision {
        let mut d = Decision::default();
        if self.rules.is_empty() {
            return d;
        }
        let mut spent = false;
        for (_, f) in self.rules.iter_mut() {
            let hits_target =
                f.target == Target::Any || target == Target::Any || f.target == target;
            let hits_user = f.user.is_none() || f.user.as_deref() == user;
            let is_error = !matches!(f.kind, FaultKind::Latency { .. });
            if !hits_target || !hits_user || (is_error && d.error.is_some()) {
                continue;
            }
            let fires = match &mut f.trigger {
                Trigger::Always => true,
                Trigger::Next { n } => {
                    if *n > 0 {
                        *n -= 1;
                        spent |= *n == 0;
                        true
                    } else {
                        false
                    }
                }
                Trigger::Rate { p } => rng.gen::<f64>() < *p,
            };
            if !fires {
                continue;
            }
            match f.kind {
                FaultKind::Latency { millis } => d.latency += Duration::from_millis(millis),
                FaultKind::RateLimit { retry_after_secs } => {
                    d.error = Some(Injected::RateLimited { retry_after_secs })
                }
                FaultKind::ServerError {
                    status,
                    retry_after_secs,
                } => {
                    d.error = Some(Injected::Server {
                        status,
                        retry_after_secs,
                    })
                }
                FaultKind::ConnectionReset => d.error = Some(Injected::Broken(Broken::Reset)),
                FaultKind::MalformedBody { ref body } => {
                    d.error = Some(Injected::Broken(Broken::Malformed(
                        body.clone().unwrap_or_else(|| PROXY_PAGE.to_owned()),
                    )))
                }
                FaultKind::OversizedBody { bytes } => {
                    d.error = Some(Injected::Broken(Broken::Oversized(bytes)))
                }
            }
        }
        if spent {
            self.rules
                .retain(|(_, f)| !matches!(f.trigger, Trigger::Next { n: 0 }));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rl(user: Option<&str>, trigger: Trigger) -> Fault {
        Fault {
            kind: FaultKind::RateLimit {
                retry_after_secs: Some(30),
            },
            user: user.map(String::from),
            target: Target::Api,
            trigger,
        }
    }

    #[test]
    fn next_n_fires_n_times_for_its_user_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut f = Faults::default();
        f.add(rl(Some("a"), Trigger::Next { n: 2 }));
        assert!(f.decide(Target::Api, Some("b"), &mut rng).error.is_none());
        assert!(f.decide(Target::Token, Some("a"), &mut rng).error.is_none());
        assert!(f.decide(Target::Api, Some("a"), &mut rng).error.is_some());
        assert!(f.decide(Target::Api, Some("a"), &mut rng).error.is_some());
        assert!(f.decide(Target::Api, Some("a"), &mut rng).error.is_none());
        assert!(f.rules.is_empty());
    }

    #[test]
    fn rate_fires_about_that_often() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut f = Faults::default();
        f.add(rl(None, Trigger::Rate { p: 0.1 }));
        let hits = (0..10_000)
            .filter(|_| f.decide(Target::Api, Some("x"), &mut rng).error.is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
