//! Configuration: TOML -> `RawConfig` (serde) -> validated [`Config`].
//!
//! (Being written: parsing and validation land with the linked-users work.)

use std::time::Duration;

use url::Url;

use crate::secret::Secret;

/// Everything the daemon needs to talk to Enode, validated.
#[derive(Debug, Clone)]
pub struct EnodeConfig {
    /// Base URL of the Enode API (e.g. `https://api.test.enode.io/`).
    pub api_url: Url,
    /// OAuth2 authorization endpoint (where users give consent).
    pub auth_url: Url,
    /// OAuth2 token endpoint.
    pub token_url: Url,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Secret,
    /// Where the authorization server sends the user back after consent.
    pub redirect_uri: Url,
    /// Scopes requested for user tokens (`offline_access` brings a refresh token).
    pub scopes: Vec<String>,
    /// Whether the link flow sends a PKCE S256 challenge.
    pub pkce: bool,
    /// Upper bound on every HTTP request to Enode, connect to last byte.
    pub request_timeout: Duration,
}

/// A validation error in one field of a config file. `span` is the byte
/// range of the offending value in the file (from `toml::Spanned`), which the
/// loader turns into `file:line:column`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Byte range of the value in the TOML text, when known.
    pub span: Option<std::ops::Range<usize>>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl FieldError {
    /// An error at a spanned value.
    pub fn at(
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        FieldError {
            span: Some(span),
            message: message.into(),
            help: help.into(),
        }
    }
}

/// Parses a duration such as `90s`, `5m`, `2h`, `1h30m`, `250ms` or `1d`.
/// A bare number is rejected so that a unit is never guessed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` is not a duration"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "" => return Err(format!("`{s}` has no unit (use ms, s, m, h or d)")),
            other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s, m, h or d)")),
        };
        total = total.saturating_add(d);
    }
    Ok(total)
}
