//! The Enode API client: the only code that knows Enode's wire format
//! (invariant 2).
//!
//! - [`dto`]: the lenient JSON reading and the request bodies.
//! - [`client`]: [`Client`], one typed method per endpoint the daemon uses.
//! - [`auth`]: [`Auth`], OAuth2 through the `oauth2` crate (client token,
//!   authorization URL with PKCE, code exchange, refresh).
//! - [`error`]: [`Error`] and [`AuthError`], whose variants say what to do
//!   next, and the RFC 7807 [`Problem`].
//!
//! Everything else in the daemon speaks [`crate::model`] types.

pub mod auth;
pub mod client;
pub mod dto;
pub mod error;

pub use auth::{Auth, AuthError};
pub use client::{build_http, Client};
pub use error::{Error, Problem, RetryAfter, Transient};

/// Unit-test support: serves `app` on 127.0.0.1:0 and returns a client
/// config for it (client "id" with `secret`, scopes "all", PKCE on, 5 s
/// timeout); tests change what they need.
#[cfg(test)]
pub(crate) async fn mock_server(app: axum::Router, secret: &str) -> crate::config::EnodeConfig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = |p: &str| url::Url::parse(&format!("{base}{p}")).unwrap();
    crate::config::EnodeConfig {
        api_url: url("/"),
        auth_url: url("/oauth2/auth"),
        token_url: url("/oauth2/token"),
        client_id: "id".into(),
        client_secret: crate::secret::Secret::new(secret),
        redirect_uri: url("/callback"),
        scopes: vec!["all".into()],
        pkce: true,
        request_timeout: std::time::Duration::from_secs(5),
        token_timeout: std::time::Duration::from_secs(30),
    }
}
