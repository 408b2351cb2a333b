//! Error answers: RFC 7807 problem details for the API and RFC 6749 5.2
//! error objects for the token endpoint.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An RFC 7807 `application/problem+json` answer.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// `type` URI.
    pub kind: &'static str,
    /// `title`.
    pub title: &'static str,
    /// `detail`.
    pub detail: String,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` value, for 401 and 403.
    pub challenge: Option<&'static str>,
}

/// The JSON body of a [`Problem`].
#[derive(Serialize)]
struct ProblemBody<'a> {
    /// Problem type URI.
    #[serde(rename = "type")]
    kind: &'a str,
    /// Short summary.
    title: &'a str,
    /// What went wrong this time.
    detail: &'a str,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        Problem {
            status,
            kind,
            title,
            detail,
            retry_after: None,
            challenge: None,
        }
    }

    /// 400: the payload or query failed validation.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "https://docs.enode.io/problems/payload-validation-error",
            "Payload validation failed",
            detail.into(),
        )
    }

    /// 400: the vehicle cannot do what was asked in its current state.
    pub fn not_plugged_in(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "https://docs.enode.io/problems/bad-request",
            "Vehicle not plugged in",
            detail.into(),
        )
    }

    /// 401: no valid token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "https://docs.enode.io/problems/unauthorized",
            "Unauthorized",
            detail.into(),
        );
        p.challenge = Some("Bearer error=\"invalid_token\"");
        p
    }

    /// 403: valid token, but not for this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(
            StatusCode::FORBIDDEN,
            "https://docs.enode.io/problems/forbidden",
            "Forbidden",
            detail.into(),
        );
        p.challenge = Some("Bearer error=\"insufficient_scope\"");
        p
    }

    /// 404: no such resource for this caller.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "https://docs.enode.io/problems/not-found",
            "Not Found",
            detail.into(),
        )
    }

    /// 429, with Retry-After if given.
    pub fn rate_limited(retry_after: Option<u64>) -> Self {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "https://docs.enode.io/problems/too-many-requests",
            "Too Many Requests",
            "rate limiting by the vendor prevented completing the request".into(),
        );
        p.retry_after = retry_after;
        p
    }

    /// A 5xx.
    pub fn server(status: u16, retry_after: Option<u64>) -> Self {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut p = Problem::new(
            status,
            "https://docs.enode.io/problems/server-error",
            "Server Error",
            format!("simulated {}", status.as_u16()),
        );
        p.retry_after = retry_after;
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ProblemBody {
            kind: self.kind,
            title: self.title,
            detail: &self.detail,
        })
        .expect("serializable");
        let mut r = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body,
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        if let Some(c) = self.challenge {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        r
    }
}

/// An RFC 6749 5.2 error answer of the token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    /// HTTP status (400, 401 for invalid_client, or a fault's 429/5xx).
    pub status: StatusCode,
    /// `error` code.
    pub error: &'static str,
    /// `error_description`.
    pub description: String,
    /// Answer with `WWW-Authenticate: Basic` (client used Basic auth).
    pub basic_challenge: bool,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
}

/// The JSON body of an [`OAuthError`].
#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    /// Error code.
    error: &'a str,
    /// Human-readable explanation.
    error_description: &'a str,
}

impl OAuthError {
    /// A 400 with `error`.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }

    /// `invalid_client` (401).
    pub fn invalid_client(basic: bool) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: basic,
            ..Self::new("invalid_client", "client authentication failed")
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&OAuthErrorBody {
            error: self.error,
            error_description: &self.description,
        })
        .expect("serializable");
        let mut r = (
            self.status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
        if self.basic_challenge {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"enode-sim\""),
            );
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}
