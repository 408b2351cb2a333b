//! OAuth2 against Enode's authorization server, through the `oauth2` crate.
//!
//! Three grants: client credentials (the client's own token for admin calls,
//! cached and renewed before it expires, one fetch shared by concurrent
//! callers), authorization code with PKCE (linking a user) and refresh token
//! (the token keeper). Token calls go through [`TokenHttp`], a thin adapter
//! over the shared `reqwest::Client` (which follows no redirects) that turns
//! 429/5xx answers into errors carrying Retry-After before `oauth2` tries to
//! read them as OAuth error bodies.
//!
//! Expiry instants come from the [`Clock`] (invariant 4), read when the
//! request is sent so that `expires_at` errs early, never late.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use tokio::sync::Mutex;
use tracing::debug;
use url::Url;

use super::client::Http;
use super::error::RetryAfter;
use crate::config::EnodeConfig;
use crate::limits;
use crate::model::TokenSet;
use crate::secret::Secret;
use clock::Clock;

/// The configured `oauth2` client: authorization and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Lifetime assumed when a token answer has no `expires_in` (RFC 6749 leaves
/// it optional); short enough that a wrong guess heals within the hour.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The client token is renewed this long before it expires, or after three
/// quarters of its lifetime for short-lived tokens, so that no admin call
/// carries a token that expires in flight.
const CLIENT_TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Why a token request failed, sorted by what the caller does next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The refresh token or code is invalid, expired, replayed or revoked:
    /// the user must link again.
    #[error("invalid grant{}", describe(description))]
    InvalidGrant {
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// The token endpoint answered 429 (or 503 with Retry-After): wait.
    #[error("token endpoint rate limited the request")]
    RateLimited {
        /// When the server allows the next request, if it said.
        retry_after: Option<RetryAfter>,
    },
    /// 5xx, timeout or network failure: retry with backoff.
    #[error("token endpoint unavailable: {0}")]
    Transient(String),
    /// The client id or secret was rejected: a configuration problem.
    #[error("client authentication failed{}", describe(description))]
    InvalidClient {
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// Any other OAuth error (`invalid_request`, `invalid_scope`, ...).
    #[error("token request refused: {error}{}", describe(description))]
    Refused {
        /// The OAuth `error` code.
        error: String,
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// The answer was not a token response. Its body is not kept: a
    /// half-readable success body would contain tokens.
    #[error("malformed token response: {0}")]
    Protocol(String),
    /// A code exchange answered without a refresh token: the grant lacks
    /// `offline_access`, and the user would have to link again within the hour.
    #[error(
        "the authorization server returned no refresh token (is offline_access among the scopes?)"
    )]
    NoRefreshToken,
}

impl AuthError {
    /// A short name of the kind of failure, for grouping failures into
    /// episodes in the log (see [`crate::outage`]).
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::InvalidGrant { .. } => "invalid grant",
            AuthError::RateLimited { .. } => "rate limited",
            AuthError::Transient(_) => "unavailable",
            AuthError::InvalidClient { .. } => "invalid client",
            AuthError::Refused { .. } => "refused",
            AuthError::Protocol(_) => "malformed response",
            AuthError::NoRefreshToken => "no refresh token",
        }
    }

    /// Whether the same request can succeed later without user or operator action.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AuthError::RateLimited { .. } | AuthError::Transient(_)
        )
    }
}

/// `": description"` or nothing, for error messages.
fn describe(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// The OAuth2 side of the Enode client. Cheap to share behind the [`Client`](super::Client).
pub struct Auth {
    /// The `oauth2` client with id, secret and endpoints.
    oauth: OAuthClient,
    /// HTTP adapter for token calls.
    http: TokenHttp,
    /// Scopes asked for when linking a user.
    scopes: Vec<String>,
    /// Source of "now" for expiry instants.
    clock: Clock,
    /// The cached client-credentials token. A tokio mutex held across the
    /// fetch, so concurrent callers wait for one request instead of each
    /// sending their own.
    client_token: Mutex<Option<CachedToken>>,
}

/// A client token and when to stop using it.
struct CachedToken {
    /// The bearer token.
    token: Secret,
    /// When to fetch a new one (ahead of the real expiry).
    renew_at: DateTime<Utc>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("client_id", self.oauth.client_id())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the OAuth2 side from the config. `http` must not follow
    /// redirects (a token endpoint that redirects is misconfigured or hostile).
    pub fn new(config: &EnodeConfig, http: Http, clock: Clock) -> Auth {
        let oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.expose().to_string()))
            .set_auth_uri(AuthUrl::from_url(config.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(config.redirect_uri.clone()));
        let scopes = config
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_string)
            .collect();
        Auth {
            oauth,
            http: TokenHttp {
                http,
                clock: clock.clone(),
                timeout: config.token_timeout,
            },
            scopes,
            clock,
            client_token: Mutex::new(None),
        }
    }

    /// The client-credentials token for admin calls: the cached one while it
    /// is fresh, else a new one. Concurrent callers share one fetch.
    pub async fn client_token(&self) -> Result<Secret, AuthError> {
        let mut cache = self.client_token.lock().await;
        let now = self.clock.now();
        if let Some(c) = cache.as_ref() {
            if now < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let r = self
            .oauth
            .exchange_client_credentials()
            .request_async(&self.http)
            .await
            .map_err(auth_error)?;
        let lifetime = lifetime(&r);
        let margin = CLIENT_TOKEN_MARGIN.min(lifetime / 4);
        let renew_at = now + delta(lifetime.saturating_sub(margin));
        debug!(renew_at = %renew_at, "client token fetched");
        let token = Secret::new(r.access_token().secret().clone());
        *cache = Some(CachedToken {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// Forgets the cached client token after the API rejected it (401), so
    /// the next call fetches a new one. A token other than `rejected` is
    /// kept: another caller has already replaced it.
    pub async fn invalidate_client_token(&self, rejected: &Secret) {
        let mut cache = self.client_token.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == rejected) {
            *cache = None;
        }
    }

    /// The URL to send a user to for consent: `state` is the `linkState` from
    /// `POST /users/{id}/link`, scopes are the configured ones. With `pkce`,
    /// an S256 challenge is added and its verifier returned; it must be kept
    /// with the link session until the code is exchanged.
    pub fn authorize_url(&self, link_state: &str, pkce: bool) -> (Url, Option<Secret>) {
        let state = link_state.to_string();
        let mut req = self
            .oauth
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        let mut verifier = None;
        if pkce {
            let (challenge, v) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            verifier = Some(Secret::new(v.secret().clone()));
        }
        let (url, _state) = req.url();
        (url, verifier)
    }

    /// Exchanges the code from the consent redirect for the user's tokens.
    /// `verifier` is the PKCE verifier from [`Auth::authorize_url`], if any.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&Secret>,
    ) -> Result<TokenSet, AuthError> {
        let now = self.clock.now();
        let mut req = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose().to_string()));
        }
        let r = req.request_async(&self.http).await.map_err(auth_error)?;
        let tokens = self.token_set(&r, now, None);
        if tokens.refresh_token.is_none() {
            return Err(AuthError::NoRefreshToken);
        }
        Ok(tokens)
    }

    /// Trades a refresh token for new tokens. The answer's refresh token is
    /// the rotated one: it must be stored (and flushed) before the access
    /// token is used, because replaying the old one revokes the whole grant.
    /// When the server does not rotate, the old refresh token is returned, so
    /// `refresh_token` is always `Some`.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, AuthError> {
        let now = self.clock.now();
        let rt = RefreshToken::new(refresh_token.expose().to_string());
        let r = self
            .oauth
            .exchange_refresh_token(&rt)
            .request_async(&self.http)
            .await
            .map_err(auth_error)?;
        Ok(self.token_set(&r, now, Some(refresh_token)))
    }

    /// Converts a token answer (see [`token_set`]), with the configured
    /// scopes as the fallback.
    fn token_set(
        &self,
        r: &BasicTokenResponse,
        sent_at: DateTime<Utc>,
        old_refresh: Option<&Secret>,
    ) -> TokenSet {
        token_set(r, sent_at, old_refresh, &self.scopes)
    }
}

/// Converts a token answer. `sent_at` is when the request left, so the
/// expiry errs on the early side by the round-trip time; `old_refresh` is
/// kept when the server did not rotate; `scopes` stand in when the answer
/// names none. An answer whose access token is empty (or only blanks) is
/// still kept, since its refresh token may be a rotated one that must not
/// be dropped, but its access token expires after the shortest lifetime
/// ([`TOKEN_LIFETIME_MIN`](limits::TOKEN_LIFETIME_MIN)), so the keeper
/// asks for a usable one at once.
fn token_set(
    r: &BasicTokenResponse,
    sent_at: DateTime<Utc>,
    old_refresh: Option<&Secret>,
    scopes: &[String],
) -> TokenSet {
    let lifetime = if r.access_token().secret().trim().is_empty() {
        limits::TOKEN_LIFETIME_MIN
    } else {
        lifetime(r)
    };
    let scopes = match r.scopes() {
        Some(s) => s.iter().map(|s| s.to_string()).collect(),
        None => scopes.to_vec(),
    };
    TokenSet {
        access_token: Secret::new(r.access_token().secret().clone()),
        refresh_token: r
            .refresh_token()
            .map(|t| Secret::new(t.secret().clone()))
            .or_else(|| old_refresh.cloned()),
        expires_at: sent_at + delta(lifetime),
        scopes,
    }
}

/// Reads a 2xx token answer the way the code exchange and the refresh read
/// it: normalised (an odd but usable answer is kept), parsed as `oauth2`
/// parses a token response, the lifetime clamped. Pure, so the fuzz target
/// (`fuzz/`, `enode_token`) drives exactly the path a hostile token
/// endpoint reaches; `sent_at`, `old_refresh` and `scopes` as in a refresh.
pub fn token_answer(
    body: &[u8],
    sent_at: DateTime<Utc>,
    old_refresh: Option<&Secret>,
    scopes: &[String],
) -> Result<TokenSet, AuthError> {
    let r: BasicTokenResponse = serde_json::from_slice(&normalize_token_body(body))
        .map_err(|_| AuthError::Protocol("not a token response".into()))?;
    Ok(token_set(&r, sent_at, old_refresh, scopes))
}

/// Reads a token endpoint's OAuth error answer (a 4xx JSON body) into the
/// decision the keeper acts on, as a failed refresh is read. Pure, for the
/// fuzz target `enode_token`.
pub fn token_error_answer(body: &[u8]) -> AuthError {
    match serde_json::from_slice::<BasicErrorResponse>(body) {
        Ok(r) => auth_error(RequestTokenError::ServerResponse(r)),
        Err(_) => AuthError::Protocol("not a token response".into()),
    }
}

/// A std duration as a chrono one (lifetimes are clamped, so this never saturates).
fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::zero())
}

/// The lifetime a token answer claims, clamped to
/// [`TOKEN_LIFETIME_MIN`](limits::TOKEN_LIFETIME_MIN)..[`TOKEN_LIFETIME_MAX`](limits::TOKEN_LIFETIME_MAX):
/// `expires_in: 0` must not cause a refresh storm, nor `10^13` an overflow.
fn lifetime(r: &BasicTokenResponse) -> Duration {
    r.expires_in()
        .unwrap_or(DEFAULT_LIFETIME)
        .clamp(limits::TOKEN_LIFETIME_MIN, limits::TOKEN_LIFETIME_MAX)
}

/// Rewrites a 2xx token answer into the strict shape `oauth2` parses, so a
/// server's odd but usable answer (`expires_in` as a string or a float,
/// a numeric `token_type`, an empty `refresh_token`) is not refused after
/// it has already rotated the refresh token: refusing it would drop the
/// new refresh token and lose the user at the next refresh. A body without
/// a string `access_token` is left as it is, for `oauth2` to reject.
fn normalize_token_body(body: &[u8]) -> Vec<u8> {
    use serde_json::{Map, Value};
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let text = |k: &str| match o.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let Some(access) = text("access_token") else {
        return body.to_vec();
    };
    let mut out = Map::new();
    out.insert("access_token".into(), access.into());
    out.insert("token_type".into(), "bearer".into());
    let expires = match o.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let Some(e) = expires.filter(|e| e.is_finite()) {
        // Saturating float-to-int: negative -> 0, huge -> u64::MAX; clamped later.
        out.insert("expires_in".into(), (e as u64).into());
    }
    if let Some(rt) = text("refresh_token") {
        out.insert("refresh_token".into(), rt.into());
    }
    if let Some(scope) = text("scope") {
        out.insert("scope".into(), scope.into());
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_else(|_| body.to_vec())
}

/// Maps `oauth2`'s error into a decision. The raw body `oauth2` keeps for
/// parse errors is dropped on purpose (it may hold tokens).
fn auth_error(e: RequestTokenError<TokenHttpError, BasicErrorResponse>) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.error_description().map(|d| limits::clip(d));
            match r.error() {
                BasicErrorResponseType::InvalidGrant => AuthError::InvalidGrant { description },
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    AuthError::InvalidClient { description }
                }
                BasicErrorResponseType::Extension(x)
                    if x == "temporarily_unavailable" || x == "server_error" =>
                {
                    AuthError::Transient(x.clone())
                }
                other => AuthError::Refused {
                    error: limits::clip(other.as_ref()),
                    description,
                },
            }
        }
        RequestTokenError::Request(TokenHttpError::Status {
            status,
            retry_after,
        }) => {
            if status == 429 || (status == 503 && retry_after.is_some()) {
                AuthError::RateLimited { retry_after }
            } else {
                AuthError::Transient(format!("status {status}"))
            }
        }
        RequestTokenError::Request(TokenHttpError::Timeout) => {
            AuthError::Transient("request timed out".into())
        }
        RequestTokenError::Request(TokenHttpError::Network(m)) => AuthError::Transient(m),
        RequestTokenError::Request(TokenHttpError::Build(m)) => AuthError::Protocol(m),
        RequestTokenError::Parse(_, _) => AuthError::Protocol("not a token response".into()),
        RequestTokenError::Other(m) => AuthError::Protocol(m),
    }
}

/// What the token HTTP adapter reports instead of a response.
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    /// 429 or 5xx: not an OAuth answer but a reason to wait.
    #[error("status {status}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Parsed Retry-After.
        retry_after: Option<RetryAfter>,
    },
    /// No answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// Connecting, sending or reading failed (the message, with its causes).
    #[error("{0}")]
    Network(String),
    /// The request could not be built.
    #[error("{0}")]
    Build(String),
}

/// `oauth2`'s HTTP client trait over the shared `reqwest::Client`, so token
/// calls get the same no-redirect policy and connect timeout as API calls,
/// and 429/5xx keep their Retry-After. Their overall deadline is the longer
/// `token_timeout`: giving up on a refresh the server has already rotated
/// would lose the user (see ARCHITECTURE.md, "Token rotation and crashes").
struct TokenHttp {
    /// The shared client (built with `redirect::Policy::none()`) and its
    /// bound on requests in flight.
    http: Http,
    /// Reference for Retry-After HTTP dates.
    clock: Clock,
    /// Deadline of one token call, connect to last byte.
    timeout: Duration,
}

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TokenHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut req = reqwest::Request::try_from(request)
                .map_err(|e| TokenHttpError::Build(e.without_url().to_string()))?;
            *req.timeout_mut() = Some(self.timeout);
            let path = req.url().path().to_string();
            // Held until the body is read. Waiting for it does not count
            // against the deadline, which starts when the request goes out.
            let _slot = self.http.slot().await;
            let started = tokio::time::Instant::now();
            let resp = self.http.client.execute(req).await.map_err(network_error)?;
            let status = resp.status();
            debug!(
                method = "POST",
                path = %path,
                status = status.as_u16(),
                latency_ms = started.elapsed().as_millis() as u64,
                "enode token request"
            );
            if status.as_u16() == 429 || status.is_server_error() {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| RetryAfter::parse(v, self.clock.now()));
                return Err(TokenHttpError::Status {
                    status: status.as_u16(),
                    retry_after,
                });
            }
            let mut builder = oauth2::http::Response::builder().status(status);
            for (name, value) in resp.headers() {
                builder = builder.header(name, value);
            }
            let body = limits::read_capped(resp, limits::TOKEN_BODY_MAX)
                .await
                .map_err(|e| match e {
                    limits::BodyError::Transport(e) => network_error(e),
                    too_large => TokenHttpError::Network(too_large.to_string()),
                })?;
            let body = if status.is_success() {
                normalize_token_body(&body)
            } else {
                body
            };
            builder
                .body(body)
                .map_err(|e| TokenHttpError::Build(e.to_string()))
        })
    }
}

/// A reqwest failure as a token HTTP error, with its cause chain (which
/// never holds the request body, where the secrets are).
fn network_error(e: reqwest::Error) -> TokenHttpError {
    if e.is_timeout() {
        return TokenHttpError::Timeout;
    }
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    TokenHttpError::Network(format!("{}{causes}", e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::StandardErrorResponse;

    fn server(code: BasicErrorResponseType) -> AuthError {
        auth_error(RequestTokenError::ServerResponse(
            StandardErrorResponse::new(code, Some("because".into()), None),
        ))
    }

    #[test]
    fn oauth_errors_map_to_decisions() {
        assert!(matches!(
            server(BasicErrorResponseType::InvalidGrant),
            AuthError::InvalidGrant { description: Some(d) } if d == "because"
        ));
        assert!(matches!(
            server(BasicErrorResponseType::InvalidClient),
            AuthError::InvalidClient { .. }
        ));
        assert!(matches!(
            server(BasicErrorResponseType::InvalidScope),
            AuthError::Refused { error, .. } if error == "invalid_scope"
        ));
        assert!(server(BasicErrorResponseType::Extension(
            "temporarily_unavailable".into()
        ))
        .is_retryable());
        let limited = auth_error(RequestTokenError::Request(TokenHttpError::Status {
            status: 429,
            retry_after: None,
        }));
        assert!(matches!(limited, AuthError::RateLimited { .. }));
        let down = auth_error(RequestTokenError::Request(TokenHttpError::Status {
            status: 502,
            retry_after: None,
        }));
        assert!(matches!(down, AuthError::Transient(_)));
        assert_eq!(
            server(BasicErrorResponseType::InvalidGrant).to_string(),
            "invalid grant: because"
        );
    }

    /// A token endpoint on 127.0.0.1:0 that answers every request with
    /// `status`, `headers` and `body`, and an [`Auth`] pointed at it.
    async fn fake_token_endpoint(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> Auth {
        use axum::http::{HeaderName, HeaderValue, StatusCode};
        let app = axum::Router::new().fallback(move || async move {
            let mut r = axum::response::IntoResponse::into_response((
                StatusCode::from_u16(status).unwrap(),
                body,
            ));
            for (k, v) in headers {
                r.headers_mut()
                    .insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            r
        });
        let config = EnodeConfig {
            scopes: vec!["offline_access all".into()],
            ..super::super::mock_server(app, "client-sekrit").await
        };
        let http = super::super::client::build_http(config.request_timeout).unwrap();
        let clock = Clock::starting_at(
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 3, 1, 0, 0, 0).unwrap(),
        );
        Auth::new(&config, http, clock)
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_token_answer_does_not_leak_the_token() {
        let auth = fake_token_endpoint(
            200,
            &[("content-type", "application/json")],
            r#"{"refresh_token":"sekrit-token","token_type":"bearer"}"#,
        )
        .await;
        let e = auth.refresh(&Secret::new("rt")).await.unwrap_err();
        assert!(matches!(e, AuthError::Protocol(_)), "{e:?}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    /// An odd but usable answer keeps its rotated refresh token: refusing it
    /// would replay the old one at the next refresh and revoke the grant.
    #[tokio::test(start_paused = true)]
    async fn an_odd_token_answer_keeps_the_rotated_refresh_token() {
        let auth = fake_token_endpoint(
            200,
            &[("content-type", "application/json")],
            r#"{"access_token":"at","token_type":42,"expires_in":"3600.5","refresh_token":"rt-2"}"#,
        )
        .await;
        let t = auth.refresh(&Secret::new("rt")).await.unwrap();
        assert_eq!(t.refresh_token.unwrap().expose(), "rt-2");
        assert_eq!(t.expires_at - auth.clock.now(), TimeDelta::seconds(3600));
    }

    /// Absurd lifetimes are clamped: no overflow panic (which dropped the
    /// rotated token), no refresh storm.
    #[tokio::test(start_paused = true)]
    async fn token_lifetimes_are_clamped() {
        for (body, want) in [
            (
                r#"{"access_token":"a","token_type":"bearer","expires_in":10000000000000,"refresh_token":"r2"}"#,
                limits::TOKEN_LIFETIME_MAX,
            ),
            (
                r#"{"access_token":"a","token_type":"bearer","expires_in":1e300,"refresh_token":"r2"}"#,
                limits::TOKEN_LIFETIME_MAX,
            ),
            (
                r#"{"access_token":"a","token_type":"bearer","expires_in":0,"refresh_token":"r2"}"#,
                limits::TOKEN_LIFETIME_MIN,
            ),
            (
                r#"{"access_token":"a","token_type":"bearer","expires_in":-5,"refresh_token":"r2"}"#,
                limits::TOKEN_LIFETIME_MIN,
            ),
        ] {
            let auth =
                fake_token_endpoint(200, &[("content-type", "application/json")], body).await;
            let t = auth.refresh(&Secret::new("rt")).await.unwrap();
            assert_eq!(
                (t.expires_at - auth.clock.now()).to_std().unwrap(),
                want,
                "{body}"
            );
            let t = auth.exchange_code("code", None).await.unwrap();
            assert_eq!((t.expires_at - auth.clock.now()).to_std().unwrap(), want);
            assert!(auth.client_token().await.is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_exchange_without_refresh_token_fails_clearly() {
        let auth = fake_token_endpoint(
            200,
            &[("content-type", "application/json")],
            r#"{"access_token":"a","token_type":"bearer","expires_in":3600}"#,
        )
        .await;
        let e = auth.exchange_code("code", None).await.unwrap_err();
        assert!(matches!(e, AuthError::NoRefreshToken), "{e:?}");
        assert!(e.to_string().contains("offline_access"), "{e}");
    }

    #[tokio::test]
    async fn an_endless_token_body_is_cut_off() {
        let base = crate::limits::test_support::endless_body_server().await;
        let config = EnodeConfig {
            token_url: Url::parse(&format!("{base}/oauth2/token")).unwrap(),
            ..super::super::mock_server(axum::Router::new(), "s").await
        };
        let http = super::super::client::build_http(config.request_timeout).unwrap();
        let auth = Auth::new(&config, http, Clock::system());
        let e = auth.refresh(&Secret::new("rt")).await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_redirecting_token_endpoint_is_not_followed() {
        let auth = fake_token_endpoint(302, &[("location", "http://203.0.113.1/steal")], "").await;
        let e = auth.client_token().await.unwrap_err();
        assert!(matches!(e, AuthError::Protocol(_)), "{e:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_as_http_date_on_the_token_endpoint() {
        let auth =
            fake_token_endpoint(503, &[("retry-after", "Fri, 01 Mar 2024 00:02:00 GMT")], "").await;
        let e = auth.client_token().await.unwrap_err();
        let AuthError::RateLimited {
            retry_after: Some(r),
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(r.delay, Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn authorize_url_carries_state_scopes_and_s256() {
        let auth = fake_token_endpoint(200, &[], "{}").await;
        let (url, verifier) = auth.authorize_url("the-state", true);
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "the-state");
        assert_eq!(q["scope"], "offline_access all");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        assert!(q["redirect_uri"].ends_with("/callback"));
        let v = verifier.unwrap();
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert!(!url.as_str().contains(v.expose()));
        let (url, none) = auth.authorize_url("s2", false);
        assert!(none.is_none());
        assert!(!url.as_str().contains("code_challenge"));
    }
}
