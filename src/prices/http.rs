//! The one HTTP client setup all providers share: a timeout on every
//! request, no redirects to surprise hosts, and errors mapped to
//! [`SourceError`] without the URL, because some providers (ENTSO-E) carry
//! the token in the query string and an error message must never leak it.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};

use super::SourceError;

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
    let text = response.text().await.map_err(|e| map_reqwest(e, timeout))?;
    if status.is_success() {
        return Ok(Body { status, text });
    }
    let detail: String = text.trim().chars().take(200).collect();
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
