//! The Enode API client: the only code that knows Enode's wire format
//! (invariant 2).
//!
//! - [`dto`]: the lenient JSON reading and the request bodies.
//! - [`client`]: [`Client`], one typed method per endpoint the daemon uses.
//! - [`auth`]: [`Auth`], OAuth2 through the `oauth2` crate (client token,
//!   authorization URL with PKCE, code exchange, refresh).
//! - [`error`]: [`Error`] and [`AuthError`], whose variants say what to do
//!   next, and the RFC 7807 [`Problem`].
//! - [`webhook`]: the Firehose webhook's events, read into
//!   [`crate::model::WebhookEvent`]s.
//!
//! Everything else in the daemon speaks [`crate::model`] types.

pub mod auth;
pub mod client;
pub mod dto;
pub mod error;
pub mod webhook;

pub use auth::{Auth, AuthError};
pub use client::{build_http, Client};
pub use error::{Error, Problem, RetryAfter, Transient};

/// The vendors Enode Link can preselect (the spec's `Vendor` enum).
pub const VENDORS: [&str; 7] = [
    "TESLA",
    "BMW",
    "AUDI",
    "VOLKSWAGEN",
    "HYUNDAI",
    "PEUGEOT",
    "NISSAN",
];

/// The spec's spelling of a vendor given in any case, or an error that
/// lists the known ones (sending an unknown one is a spec violation).
pub fn vendor(given: &str) -> Result<&'static str, String> {
    let t = given.trim_matches(' ');
    VENDORS
        .iter()
        .find(|v| v.eq_ignore_ascii_case(t))
        .copied()
        .ok_or_else(|| {
            format!(
                "unknown vendor `{}`; Enode knows {}",
                crate::limits::clip_to(t, 64),
                VENDORS.join(", ")
            )
        })
}

/// Checks a BCP 47 language tag's shape (`nb-NO`, `de`): 2 to 35 letters,
/// digits and hyphens, starting with letters.
pub fn language(given: &str) -> Result<&str, String> {
    let t = given.trim_matches(' ');
    let ok = (2..=35).contains(&t.len())
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && t.bytes().take(2).all(|b| b.is_ascii_alphabetic());
    if ok {
        Ok(t)
    } else {
        Err(format!(
            "`{}` is not a language tag; write e.g. nb-NO or de",
            crate::limits::clip_to(t, 64)
        ))
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn vendors_are_checked_case_insensitively() {
        assert_eq!(super::vendor("tesla"), Ok("TESLA"));
        assert_eq!(super::vendor(" Volkswagen "), Ok("VOLKSWAGEN"));
        let e = super::vendor("FORD").unwrap_err();
        assert!(
            e.contains("unknown vendor `FORD`") && e.contains("TESLA, BMW"),
            "{e}"
        );
        assert!(super::language("nb-NO").is_ok());
        assert!(super::language("x").is_err());
        assert!(super::language("de\nX").is_err());
    }
}
