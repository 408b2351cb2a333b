//! The one HTTP client setup all providers share: a timeout on every
//! request, no redirects to surprise hosts, and errors mapped to
//! [`SourceError`] without the URL, because some providers (ENTSO-E) carry
//! the token in the query string and an error message must never leak it.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};

use super::SourceError;
use crate::limits;

/// Builds the client used for price requests.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("smartcharged/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A response body with its status, when the status was a success.
pub struct Body {
    /// HTTP status (2xx).
    pub status: StatusCode,
    /// The body text.
    pub text: String,
}

/// Sends a request and returns the body of a 2xx answer; every other
/// outcome becomes the [`SourceError`] variant that decides the retry.
pub async fn send(request: RequestBuilder, timeout: Duration) -> Result<Body, SourceError> {
    let response = request.send().await.map_err(|e| map_reqwest(e, timeout))?;
    let status = response.status();
    if status.is_success() {
        let bytes = limits::read_capped(response, limits::PRICE_BODY_MAX)
            .await
            .map_err(|e| match e {
                limits::BodyError::Transport(e) => map_reqwest(e, timeout),
                too_large => SourceError::Unavailable(too_large.to_string()),
            })?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return Ok(Body { status, text });
    }
    let bytes = limits::read_prefix(response, limits::ERROR_BODY_MAX).await;
    let detail = limits::clip_to(String::from_utf8_lossy(&bytes).trim(), 200);
    Err(match status.as_u16() {
        401 | 403 => SourceError::Unauthorized(status.as_u16()),
        429 | 500..=599 => SourceError::Unavailable(format!("http {}: {detail}", status.as_u16())),
        s => SourceError::Rejected { status: s, detail },
    })
}

/// Maps a transport error, dropping the URL (it may hold a token).
fn map_reqwest(e: reqwest::Error, timeout: Duration) -> SourceError {
    if e.is_timeout() {
        return SourceError::Timeout(timeout);
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    SourceError::Unavailable(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_endless_body_is_cut_off() {
        let base = limits::test_support::endless_body_server().await;
        let timeout = Duration::from_secs(30);
        let r = send(client(timeout).get(format!("{base}/prices")), timeout).await;
        let Err(SourceError::Unavailable(m)) = r else {
            panic!("not refused")
        };
        assert!(m.contains("larger than"), "{m}");
    }
}
