//! The authorization server: `POST /oauth2/token` (client credentials,
//! authorization code with PKCE, refresh with rotation and replay
//! detection) and `GET /oauth2/auth` (non-interactive consent).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::faults::{Broken, Injected, Target};
use crate::handle::SimHandle;
use crate::problem::OAuthError;
use crate::state::{AuthCode, State as World, TokenSet};
use crate::tokens::{self, Scopes};

/// Form or query parameters, refusing any given twice (RFC 6749 3.1, 3.2).
fn params(raw: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} is given more than once"
            )));
        }
    }
    Ok(out)
}

/// Decodes one `application/x-www-form-urlencoded` component (RFC 6749
/// 2.3.1 encodes client id and secret that way inside Basic auth).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client credentials of a token request: `(id, secret, via_basic)`.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, String, bool), OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(h) => {
            let h = h.to_str().map_err(|_| OAuthError::invalid_client(true))?;
            let b64 = h
                .strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| OAuthError::invalid_client(true))?;
            let raw = String::from_utf8(raw).map_err(|_| OAuthError::invalid_client(true))?;
            let (id, secret) = raw
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            Some((form_decode(id), form_decode(secret)))
        }
        None => None,
    };
    let body = form.get("client_id").map(|id| {
        (
            id.clone(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    match (basic, body) {
        (Some((id, secret)), Some((body_id, _))) => {
            if id != body_id {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok((id, secret, true))
        }
        (Some((id, secret)), None) => Ok((id, secret, true)),
        (None, Some((id, secret))) => Ok((id, secret, false)),
        (None, None) => Err(OAuthError::invalid_client(false)),
    }
}

/// The user a token request acts for, if it can be told (for per-user faults).
fn subject(st: &World, form: &HashMap<String, String>) -> Option<String> {
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => form
            .get("code")
            .and_then(|c| st.codes.get(c))
            .map(|c| c.user.clone()),
        Some("refresh_token") => form
            .get("refresh_token")
            .and_then(|t| st.refresh_subject(t))
            .map(String::from),
        _ => None,
    }
}

/// `POST /oauth2/token`. An injected latency delays the answer after the
/// request has taken effect, as a slow network back to the client would:
/// a refresh is already rotated when a client that gives up stops waiting.
/// An injected error or broken answer replaces the grant (nothing rotates).
pub(crate) async fn token(State(h): State<SimHandle>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&h);
    let (result, latency) = token_inner(&h, &headers, &body).await;
    if !latency.is_zero() {
        h.clock().sleep(latency).await;
    }
    match result {
        Ok(t) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(t),
        )
            .into_response(),
        Err(TokenFail::OAuth(e)) => e.into_response(),
        Err(TokenFail::Broken(b)) => b.into_response(),
    }
}

/// Counts a token request in progress for [`TokenCounts::max_in_flight`]
/// (crate::TokenCounts); leaves on drop, so a request whose client went
/// away is counted out too.
struct InFlight(SimHandle);

impl InFlight {
    fn enter(h: &SimHandle) -> InFlight {
        let mut st = h.lock();
        st.stats.token_in_flight += 1;
        st.stats.tokens.max_in_flight = st.stats.tokens.max_in_flight.max(st.stats.token_in_flight);
        drop(st);
        InFlight(h.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.stats.token_in_flight = st.stats.token_in_flight.saturating_sub(1);
    }
}

/// Why the token endpoint gave no tokens.
enum TokenFail {
    /// An RFC 6749 error answer.
    OAuth(OAuthError),
    /// A broken answer from a fault rule.
    Broken(Broken),
}

impl From<OAuthError> for TokenFail {
    fn from(e: OAuthError) -> Self {
        TokenFail::OAuth(e)
    }
}

async fn token_inner(
    h: &SimHandle,
    headers: &HeaderMap,
    body: &[u8],
) -> (Result<TokenSet, TokenFail>, std::time::Duration) {
    let form = match params(body) {
        Ok(f) => f,
        Err(e) => return (Err(e.into()), std::time::Duration::ZERO),
    };
    let decision = {
        let mut st = h.lock();
        let user = subject(&st, &form);
        let st = &mut *st;
        st.faults
            .decide(Target::Token, user.as_deref(), &mut st.rng)
    };
    let latency = decision.latency;
    (grant(h, headers, &form, decision.error).await, latency)
}

/// Checks the client, then answers the grant (or the injected error).
async fn grant(
    h: &SimHandle,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    injected: Option<Injected>,
) -> Result<TokenSet, TokenFail> {
    let (client_id, secret, basic) = client_credentials(headers, form)?;
    if let Some(e) = injected {
        h.lock().stats.injected(e.name());
        return Err(match e {
            Injected::RateLimited { retry_after_secs } => OAuthError {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: retry_after_secs,
                ..OAuthError::new("temporarily_unavailable", "rate limited")
            }
            .into(),
            Injected::Server {
                status,
                retry_after_secs,
            } => OAuthError {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                retry_after: retry_after_secs,
                ..OAuthError::new(
                    if status == 503 {
                        "temporarily_unavailable"
                    } else {
                        "server_error"
                    },
                    format!("simulated {status}"),
                )
            }
            .into(),
            Injected::Broken(b) => TokenFail::Broken(b),
        });
    }
    let now = h.now();
    let mut st = h.lock();
    let client = st
        .client_index(&client_id)
        .filter(|c| st.clients[*c].secret == secret)
        .ok_or_else(|| OAuthError::invalid_client(basic))?;
    let get = |k: &str| form.get(k).map(String::as_str);
    let answer = match get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => Ok(st.client_token(client, now)),
        Some("refresh_token") => {
            let rt = get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            st.refresh(client, rt, get("scope"), now)
        }
        Some("authorization_code") => {
            let code =
                get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            exchange_code(
                &mut st,
                client,
                code,
                get("redirect_uri"),
                get("code_verifier"),
                now,
            )
        }
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {other} is not supported"),
        )),
    };
    answer.map_err(TokenFail::OAuth)
}

/// The authorization code grant, with PKCE S256 when the code has a challenge.
fn exchange_code(
    st: &mut World,
    client: usize,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TokenSet, OAuthError> {
    let Some(c) = st.codes.get(code) else {
        return Err(st.invalid_grant(now, None, "unknown authorization code"));
    };
    let user = c.user.clone();
    let fail = |st: &mut World, why: &str| Err(st.invalid_grant(now, Some(&user), why));
    if let Some(g) = c.grant {
        // RFC 6749 4.1.2: a code used twice revokes what it was exchanged for.
        st.revoke_grant(g);
        return fail(st, "authorization code already used: grant revoked");
    }
    if c.client != client {
        return fail(st, "authorization code of another client");
    }
    if c.expires <= now {
        return fail(st, "authorization code expired");
    }
    if redirect_uri != Some(c.redirect_uri.as_str()) {
        return fail(st, "redirect_uri does not match the authorization request");
    }
    match (&c.challenge, verifier) {
        (Some(_), None) => return fail(st, "code_verifier is required"),
        (None, Some(_)) => {
            return fail(
                st,
                "code_verifier given but the authorization request had no code_challenge",
            )
        }
        (Some(ch), Some(v)) => {
            if !(43..=128).contains(&v.len()) {
                return fail(st, "code_verifier must have 43 to 128 characters");
            }
            let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            if &digest != ch {
                return fail(st, "code_verifier does not match the code_challenge");
            }
        }
        (None, None) => {}
    }
    let scopes = c.scopes;
    let g = st.new_grant(&user, client, scopes);
    st.codes.get_mut(code).expect("checked").grant = Some(g);
    st.stats.tokens.authorization_code += 1;
    Ok(st.grant_tokens(g, now))
}

/// Whether `given` is allowed by the registered `uri`: equal, or both
/// loopback http URIs that differ only in port (RFC 8252 7.3).
fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback = matches!(r.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    loopback
        && r.scheme() == "http"
        && g.scheme() == "http"
        && r.host_str() == g.host_str()
        && r.path() == g.path()
        && r.query() == g.query()
}

/// A 302 to `redirect_uri` with `pairs` added to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut u = url::Url::parse(redirect_uri).expect("validated");
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, u.to_string())]).into_response()
}

/// `GET /oauth2/auth`: consents at once (or refuses, when told to) and
/// redirects to the client's redirect_uri with `code` and `state`.
pub(crate) async fn authorize(State(h): State<SimHandle>, RawQuery(q): RawQuery) -> Response {
    let q = match params(q.unwrap_or_default().as_bytes()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let get = |k: &str| q.get(k).map(String::as_str);
    let now = h.now();
    let mut st = h.lock();
    // Errors about the client or redirect_uri must not redirect (4.1.2.1).
    let Some(client) = get("client_id").and_then(|c| st.client_index(c)) else {
        return OAuthError::new("invalid_client", "unknown client_id").into_response();
    };
    let registered = &st.clients[client].redirect_uris;
    let redirect_uri = match get("redirect_uri") {
        Some(r) if registered.iter().any(|x| redirect_matches(x, r)) => r.to_string(),
        Some(_) => {
            return OAuthError::invalid_request("redirect_uri is not registered for this client")
                .into_response()
        }
        None => return OAuthError::invalid_request("redirect_uri is required").into_response(),
    };
    let state = get("state").unwrap_or_default();
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            pairs.push(("state", state));
        }
        redirect(&redirect_uri, &pairs)
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let user = match st.link_states.get_mut(state) {
        None => {
            return fail(
                "invalid_request",
                "state is not a linkState issued by Link User",
            )
        }
        Some(s) if s.used => return fail("invalid_request", "linkState was used already"),
        Some(s) if s.expires <= now => return fail("invalid_request", "linkState expired"),
        Some(s) => s.user.clone(),
    };
    let scopes = match get("scope").map(Scopes::parse) {
        None => return fail("invalid_scope", "scope is required"),
        Some(Err(unknown)) => return fail("invalid_scope", &format!("unknown scope {unknown}")),
        Some(Ok(s)) if s == Scopes::default() => return fail("invalid_scope", "scope is empty"),
        Some(Ok(s)) => s,
    };
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) if c.len() == 43 => Some(c.to_string()),
        (Some(_), Some("S256")) => {
            return fail("invalid_request", "code_challenge must be 43 characters")
        }
        (Some(_), None | Some("plain")) => {
            return fail("invalid_request", "code_challenge_method must be S256")
        }
        (Some(_), Some(_)) => return fail("invalid_request", "unknown code_challenge_method"),
        (None, Some(_)) => return fail("invalid_request", "code_challenge is missing"),
    };
    if let Some(e) = st.authorize_error.clone() {
        return fail(&e.error, &e.description);
    }
    if let Some(s) = st.link_states.get_mut(state) {
        s.used = true;
    }
    let code = st.issue_code(AuthCode {
        user,
        client,
        redirect_uri: redirect_uri.clone(),
        scopes,
        challenge,
        expires: World::code_expiry(now),
        grant: None,
    });
    redirect(&redirect_uri, &[("code", &code), ("state", state)])
}

impl World {
    /// The user behind a refresh token, if it is one of ours.
    pub(crate) fn refresh_subject(&self, token: &str) -> Option<&str> {
        let c = self
            .decode(token)
            .filter(|c| c.kind == tokens::Kind::Refresh)?;
        self.grants.get(c.id as usize).map(|g| g.user.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_any_port() {
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8787/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8787/other"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        let (id, secret, basic) = client_credentials(&h, &HashMap::new()).unwrap();
        assert_eq!(
            (id.as_str(), secret.as_str(), basic),
            ("my id", "s:cret", true)
        );
    }
}
