//! Typed calls to the Enode API.
//!
//! One [`Client`] is built at start-up and shared (it is a cheap clone): one
//! connection pool, one cached client token. Every request has the configured
//! timeout. User calls take the user's access token as an argument because
//! the token keeper, not the client, owns user tokens; admin calls (link,
//! unlink, deauthorize) use the client-credentials token, renewed here.
//!
//! Requests are logged at debug level with method, path, status and latency.
//! Paths hold user and vehicle ids, never tokens (those travel in headers).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::debug;
use url::Url;

use super::auth::Auth;
use super::dto;
use super::error::Error;
use crate::config::EnodeConfig;
use crate::limits;
use crate::metrics::Metrics;
use crate::model::{
    ChargeAction, ChargeState, ChargingLocation, SmartChargingPolicy, UserInfo, Vehicle,
    VehicleField, VendorHealth, WatchProperty,
};
use crate::secret::Secret;
use clock::Clock;

/// A response body.
type Bytes = Vec<u8>;

/// Client for the Enode API and its authorization server.
#[derive(Clone)]
pub struct Client {
    /// Shared state; clones share the pool and the client-token cache.
    inner: Arc<Inner>,
}

/// What clones of a [`Client`] share.
struct Inner {
    /// The HTTP client: request timeout set, redirects not followed.
    http: Http,
    /// Base URL of the API; paths are appended as segments.
    api_url: Url,
    /// OAuth2: client token cache, link URLs, code exchange, refresh.
    auth: Auth,
    /// Reference time for Retry-After dates.
    clock: Clock,
    /// Where requests are counted.
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.inner.api_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client from validated config. `clock` is the daemon's one
    /// time source (tokio paused time in tests).
    pub fn new(config: &EnodeConfig, clock: Clock) -> Result<Client, Error> {
        Client::with_metrics(config, clock, Arc::default())
    }

    /// [`Client::new`], counting requests in `metrics` (the daemon's).
    pub fn with_metrics(
        config: &EnodeConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Client, Error> {
        let http = build_http(config.request_timeout)?;
        if config.api_url.cannot_be_a_base() {
            return Err(Error::Setup(format!(
                "api_url `{}` cannot be a base url",
                config.api_url
            )));
        }
        let auth = Auth::new(config, http.clone(), clock.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                api_url: config.api_url.clone(),
                auth,
                clock,
                metrics,
            }),
        })
    }

    /// Where this client's requests are counted; the daemon's other parts
    /// count their events there too.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The OAuth2 side: authorization URLs, code exchange, refresh.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Creates the user if needed and starts a link session (`POST
    /// /users/{userId}/link`); returns the `linkState` to use as OAuth state.
    pub async fn link_user(
        &self,
        user_id: &str,
        vendor: Option<&str>,
        language: Option<&str>,
    ) -> Result<String, Error> {
        let body = dto::LinkUserOptions {
            vendor,
            force_language: language,
        };
        let url = self.url(&["users", user_id, "link"]);
        let v = self
            .admin_json(Method::POST, url, Some(&body), "link")
            .await?;
        dto::link_state(&v).ok_or_else(|| decode("link", "no linkState"))
    }

    /// Deletes the user and all its data at Enode (`DELETE /users/{userId}`);
    /// its tokens stop working.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), Error> {
        let url = self.url(&["users", user_id]);
        self.admin(Method::DELETE, url, None::<&()>).await.map(drop)
    }

    /// Drops the user's vendor credentials and tokens, keeping other data
    /// (`DELETE /users/{userId}/authorization`).
    pub async fn deauthorize_user(&self, user_id: &str) -> Result<(), Error> {
        let url = self.url(&["users", user_id, "authorization"]);
        self.admin(Method::DELETE, url, None::<&()>).await.map(drop)
    }

    /// The user behind `token` and their linked vendors (`GET /me`).
    pub async fn me(&self, token: &Secret) -> Result<UserInfo, Error> {
        let v = self
            .user_json(Method::GET, self.url(&["me"]), token, "me")
            .await?;
        dto::user_info(&v).ok_or_else(|| decode("me", "not a user object"))
    }

    /// The user's vehicles with the given parts (`GET /vehicles?field[]=..`).
    /// Without fields Enode returns ids only; the poller asks for
    /// [`VehicleField::POLL`] in one call per user per round.
    pub async fn list_vehicles(
        &self,
        token: &Secret,
        fields: &[VehicleField],
    ) -> Result<Vec<Vehicle>, Error> {
        let mut url = self.url(&["vehicles"]);
        add_fields(&mut url, fields);
        let v = self.user_json(Method::GET, url, token, "vehicles").await?;
        dto::vehicles(&v).ok_or_else(|| decode("vehicles", "not an array"))
    }

    /// One vehicle with the given parts (`GET /vehicles/{id}?field[]=..`).
    pub async fn get_vehicle(
        &self,
        token: &Secret,
        vehicle_id: &str,
        fields: &[VehicleField],
    ) -> Result<Vehicle, Error> {
        let mut url = self.url(&["vehicles", vehicle_id]);
        add_fields(&mut url, fields);
        let v = self.user_json(Method::GET, url, token, "vehicle").await?;
        dto::vehicle(&v).ok_or_else(|| decode("vehicle", "not a vehicle with an id"))
    }

    /// The vehicle's charge state (`GET /vehicles/{id}/charge-state`).
    pub async fn charge_state(
        &self,
        token: &Secret,
        vehicle_id: &str,
    ) -> Result<ChargeState, Error> {
        let url = self.url(&["vehicles", vehicle_id, "charge-state"]);
        let v = self
            .user_json(Method::GET, url, token, "charge state")
            .await?;
        v.as_object()
            .map(dto::charge_state)
            .ok_or_else(|| decode("charge state", "not an object"))
    }

    /// Starts or stops charging (`POST /vehicles/{id}/charging`). Idempotent
    /// on Enode's side: sending the current state again does no harm.
    pub async fn set_charging(
        &self,
        token: &Secret,
        vehicle_id: &str,
        action: ChargeAction,
    ) -> Result<(), Error> {
        let url = self.url(&["vehicles", vehicle_id, "charging"]);
        let body = dto::ChargingAction::from(action);
        self.user(Method::POST, url, token, Some(&body))
            .await
            .map(drop)
    }

    /// Enode's own smart-charging policy for the vehicle.
    pub async fn get_smart_charging_policy(
        &self,
        token: &Secret,
        vehicle_id: &str,
    ) -> Result<SmartChargingPolicy, Error> {
        let url = self.url(&["vehicles", vehicle_id, "smart-charging-policy"]);
        let v = self
            .user_json(Method::GET, url, token, "smart charging policy")
            .await?;
        v.as_object()
            .map(dto::smart_charging_policy)
            .ok_or_else(|| decode("smart charging policy", "not an object"))
    }

    /// Replaces Enode's smart-charging policy (the daemon disables it when
    /// configured to take a vehicle over); returns the policy as stored.
    pub async fn put_smart_charging_policy(
        &self,
        token: &Secret,
        vehicle_id: &str,
        policy: &SmartChargingPolicy,
    ) -> Result<SmartChargingPolicy, Error> {
        let url = self.url(&["vehicles", vehicle_id, "smart-charging-policy"]);
        let body = dto::SmartChargingPolicyBody::from(policy);
        let bytes = self.user(Method::PUT, url, token, Some(&body)).await?;
        // Some servers answer 204; the policy sent is then the policy stored.
        if bytes.is_empty() {
            return Ok(policy.clone());
        }
        parse(&bytes, "smart charging policy")?
            .as_object()
            .map(dto::smart_charging_policy)
            .ok_or_else(|| decode("smart charging policy", "not an object"))
    }

    /// Asks Enode to watch the vehicle closely for a while (`POST
    /// /vehicles/{id}/watch`), so a command's effect shows up sooner.
    pub async fn watch_vehicle(
        &self,
        token: &Secret,
        vehicle_id: &str,
        properties: &[WatchProperty],
    ) -> Result<(), Error> {
        let url = self.url(&["vehicles", vehicle_id, "watch"]);
        let body = dto::WatchBody::new(properties);
        self.user(Method::POST, url, token, Some(&body))
            .await
            .map(drop)
    }

    /// The user's charging locations (`GET /charging-locations`).
    pub async fn charging_locations(&self, token: &Secret) -> Result<Vec<ChargingLocation>, Error> {
        let url = self.url(&["charging-locations"]);
        let v = self
            .user_json(Method::GET, url, token, "charging locations")
            .await?;
        dto::charging_locations(&v).ok_or_else(|| decode("charging locations", "not an array"))
    }

    /// Whether Enode reports itself ready (`GET /health/ready`: 204 yes,
    /// 503 no). Other answers are errors.
    pub async fn health_ready(&self) -> Result<bool, Error> {
        let url = self.url(&["health", "ready"]);
        match self.send(Method::GET, url, None, None::<&()>).await {
            Ok(_) => Ok(true),
            Err(Error::RateLimited { problem, .. }) if problem.status == 503 => Ok(false),
            Err(Error::Transient(super::Transient::Server(p))) if p.status == 503 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every vendor's status (`GET /health/vendors`, no token: the spec
    /// gives it no security requirement).
    pub async fn health_vendors(&self) -> Result<Vec<VendorHealth>, Error> {
        let url = self.url(&["health", "vendors"]);
        let body = self.send(Method::GET, url, None, None::<&()>).await?;
        let v = parse(&body, "vendor health")?;
        dto::vendor_health(&v).ok_or_else(|| decode("vendor health", "not an array"))
    }

    /// Points the Firehose webhook at `url`, signed with `secret`
    /// (`PUT /webhooks/firehose`, client token).
    pub async fn put_firehose(&self, url: &Url, secret: &Secret) -> Result<(), Error> {
        let body = dto::FirehoseBody {
            url: url.as_str(),
            secret: secret.expose(),
        };
        self.admin(
            Method::PUT,
            self.url(&["webhooks", "firehose"]),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// Asks Enode to send a test event to the Firehose webhook (`POST
    /// /webhooks/firehose/test`, client token); it arrives as a delivery.
    pub async fn test_firehose(&self) -> Result<(), Error> {
        self.admin(
            Method::POST,
            self.url(&["webhooks", "firehose", "test"]),
            None::<&()>,
        )
        .await
        .map(|_| ())
    }

    /// The API URL for a path given as segments (each percent-encoded, so
    /// an id cannot change the path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// An admin call with the client token; a 401 drops the cached token and
    /// retries once with a fresh one (it may have been revoked early).
    async fn admin<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Bytes, Error> {
        let auth = &self.inner.auth;
        let token = auth.client_token().await.map_err(Error::ClientToken)?;
        match self
            .send(method.clone(), url.clone(), Some(&token), body)
            .await
        {
            Err(Error::Unauthorized(_)) => {
                debug!(
                    path = url.path(),
                    "client token rejected, fetching a new one"
                );
                auth.invalidate_client_token(&token).await;
                let token = auth.client_token().await.map_err(Error::ClientToken)?;
                self.send(method, url, Some(&token), body).await
            }
            r => r,
        }
    }

    /// An admin call whose answer is JSON.
    async fn admin_json<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        what: &'static str,
    ) -> Result<Value, Error> {
        parse(&self.admin(method, url, body).await?, what)
    }

    /// A user call with the user's access token.
    async fn user<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        token: &Secret,
        body: Option<&B>,
    ) -> Result<Bytes, Error> {
        self.send(method, url, Some(token), body).await
    }

    /// A user call without a body whose answer is JSON.
    async fn user_json(
        &self,
        method: Method,
        url: Url,
        token: &Secret,
        what: &'static str,
    ) -> Result<Value, Error> {
        parse(&self.user(method, url, token, None::<&()>).await?, what)
    }

    /// Sends one request; a 2xx answer yields its body, anything else the
    /// classified [`Error`].
    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        token: Option<&Secret>,
        body: Option<&B>,
    ) -> Result<Bytes, Error> {
        let path = url.path().to_string();
        let endpoint = endpoint(&method, &self.inner.api_url, &url);
        let mut req = self
            .inner
            .http
            .client
            .request(method.clone(), url)
            .header(ACCEPT, "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            let json = serde_json::to_vec(b).map_err(|e| Error::Setup(e.to_string()))?;
            req = req.header(CONTENT_TYPE, "application/json").body(json);
        }
        // Held until the body is read: the connection is busy until then.
        let _slot = self.inner.http.slot().await;
        let started = tokio::time::Instant::now();
        let result = async {
            let resp = req.send().await.map_err(Error::from_reqwest)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = if status.is_success() {
                limits::read_capped(resp, limits::ENODE_BODY_MAX)
                    .await
                    .map_err(|e| match e {
                        limits::BodyError::TooLarge { limit } => Error::Decode {
                            what: "response",
                            reason: format!("body larger than {limit} bytes"),
                        },
                        limits::BodyError::Transport(e) => Error::from_reqwest(e),
                    })?
            } else {
                limits::read_prefix(resp, limits::ERROR_BODY_MAX).await
            };
            Ok::<_, Error>((status, headers, body))
        }
        .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, headers, bytes) = match result {
            Ok(r) => r,
            Err(err) => {
                self.inner.metrics.enode_request(endpoint, None);
                debug!(method = %method, path = %path, latency_ms, error = %err, "enode request failed");
                return Err(err);
            }
        };
        self.inner
            .metrics
            .enode_request(endpoint, Some(status.as_u16()));
        debug!(
            method = %method,
            path = %path,
            status = status.as_u16(),
            latency_ms,
            "enode request"
        );
        if status.is_success() {
            return Ok(bytes);
        }
        let err = Error::from_response(status, &headers, &bytes, self.inner.clock.now());
        if status != StatusCode::NOT_FOUND {
            debug!(method = %method, path = %path, error = %err, "enode request refused");
        }
        Err(err)
    }
}

/// The HTTP side that API and token calls share: one connection pool and
/// one bound on requests in flight ([`limits::ENODE_CONNECTIONS_MAX`]).
/// Cloning shares both.
#[derive(Clone)]
pub struct Http {
    /// The client: request timeout set, redirects not followed, at most
    /// [`limits::ENODE_CONNECTIONS_MAX`] idle connections kept.
    pub(crate) client: reqwest::Client,
    /// One permit per request in flight.
    gate: Arc<Semaphore>,
}

impl Http {
    /// Waits for a free slot; the request may go out while it is held.
    pub(crate) async fn slot(&self) -> SemaphorePermit<'_> {
        self.gate.acquire().await.expect("the gate is never closed")
    }
}

/// The endpoint a request goes to, as a fixed label for metrics: the
/// method and the path below the API base with ids replaced by `:id`.
/// Only paths this client builds are named; anything else is `other`, so
/// the set of labels is bounded whatever the ids are.
fn endpoint(method: &Method, base: &Url, url: &Url) -> &'static str {
    let skip = base
        .path_segments()
        .map_or(0, |s| s.filter(|p| !p.is_empty()).count());
    let segs: Vec<&str> = url
        .path_segments()
        .map(|s| s.skip(skip).collect())
        .unwrap_or_default();
    let templ = match segs.as_slice() {
        [a, _, rest @ ..] if *a == "users" || *a == "vehicles" => (*a, true, rest.join("/")),
        [a, rest @ ..] => (*a, false, rest.join("/")),
        [] => ("", false, String::new()),
    };
    match (method.as_str(), templ.0, templ.1, templ.2.as_str()) {
        ("GET", "me", false, "") => "GET /me",
        ("GET", "vehicles", false, "") => "GET /vehicles",
        ("GET", "vehicles", true, "") => "GET /vehicles/:id",
        ("GET", "vehicles", true, "charge-state") => "GET /vehicles/:id/charge-state",
        ("POST", "vehicles", true, "charging") => "POST /vehicles/:id/charging",
        ("GET", "vehicles", true, "smart-charging-policy") => {
            "GET /vehicles/:id/smart-charging-policy"
        }
        ("PUT", "vehicles", true, "smart-charging-policy") => {
            "PUT /vehicles/:id/smart-charging-policy"
        }
        ("POST", "vehicles", true, "watch") => "POST /vehicles/:id/watch",
        ("GET", "charging-locations", false, "") => "GET /charging-locations",
        ("GET", "health", false, "ready") => "GET /health/ready",
        ("GET", "health", false, "vendors") => "GET /health/vendors",
        ("POST", "users", true, "link") => "POST /users/:id/link",
        ("DELETE", "users", true, "") => "DELETE /users/:id",
        ("DELETE", "users", true, "authorization") => "DELETE /users/:id/authorization",
        _ => "other",
    }
}

/// Builds the shared HTTP client: every request bounded by `timeout`, no
/// redirects followed (a redirected token call could leak the client secret
/// or a code to another host), and at most
/// [`limits::ENODE_CONNECTIONS_MAX`] requests in flight and connections kept.
pub fn build_http(timeout: Duration) -> Result<Http, Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(limits::ENODE_CONNECTIONS_MAX)
        .user_agent(concat!("smartcharged/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Setup(e.without_url().to_string()))?;
    Ok(Http {
        client,
        gate: Arc::new(Semaphore::new(limits::ENODE_CONNECTIONS_MAX)),
    })
}

/// Appends one `field[]=name` query pair per field (the key is `field[]`,
/// repeated, as the API expects).
fn add_fields(url: &mut Url, fields: &[VehicleField]) {
    if fields.is_empty() {
        return;
    }
    let mut q = url.query_pairs_mut();
    for f in fields {
        q.append_pair("field[]", f.as_str());
    }
}

/// Parses a 2xx body as JSON.
fn parse(bytes: &[u8], what: &'static str) -> Result<Value, Error> {
    serde_json::from_slice(bytes).map_err(|e| decode(what, &e.to_string()))
}

/// A decode error for `what`.
fn decode(what: &'static str, reason: &str) -> Error {
    Error::Decode {
        what,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_repeated_field_brackets() {
        let mut url = Url::parse("https://api.test.enode.io/vehicles").unwrap();
        add_fields(&mut url, &VehicleField::POLL);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("field[]".into(), "chargeState".into()),
                ("field[]".into(), "smartChargingPolicy".into()),
                ("field[]".into(), "location".into()),
                ("field[]".into(), "information".into()),
            ]
        );
        let mut bare = Url::parse("https://api.test.enode.io/vehicles").unwrap();
        add_fields(&mut bare, &[]);
        assert_eq!(bare.query(), None);
    }

    #[test]
    fn endpoints_are_templates_whatever_the_ids() {
        let base = Url::parse("http://127.0.0.1:9/api/").unwrap();
        let at = |p: &str| base.join(p).unwrap();
        assert_eq!(
            endpoint(&Method::GET, &base, &at("vehicles")),
            "GET /vehicles"
        );
        assert_eq!(
            endpoint(&Method::POST, &base, &at("vehicles/v%2F1/charging")),
            "POST /vehicles/:id/charging"
        );
        assert_eq!(
            endpoint(&Method::DELETE, &base, &at("users/u-1/authorization")),
            "DELETE /users/:id/authorization"
        );
        assert_eq!(endpoint(&Method::GET, &base, &at("users/u/x/y")), "other");
        let bare = Url::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(
            endpoint(&Method::GET, &bare, &bare.join("health/ready").unwrap()),
            "GET /health/ready"
        );
    }

    /// A server whose token endpoint hands out `ct-1`, `ct-2`, ... and whose
    /// link endpoint accepts only the latest one, as after an early
    /// revocation; returns the client and the number of tokens issued.
    async fn revoking_server() -> (Client, Arc<std::sync::atomic::AtomicU32>) {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        use std::sync::atomic::{AtomicU32, Ordering};
        let issued = Arc::new(AtomicU32::new(0));
        let (i1, i2) = (issued.clone(), issued.clone());
        let app = axum::Router::new()
            .route(
                "/oauth2/token",
                axum::routing::post(move || async move {
                    let n = i1.fetch_add(1, Ordering::SeqCst) + 1;
                    axum::Json(serde_json::json!({
                        "access_token": format!("ct-{n}"),
                        "token_type": "bearer",
                        "expires_in": 3600
                    }))
                }),
            )
            .route(
                "/users/{id}/link",
                axum::routing::post(move |h: HeaderMap| async move {
                    let latest = format!("Bearer ct-{}", i2.load(Ordering::SeqCst));
                    if h["authorization"].to_str().unwrap() == latest && latest != "Bearer ct-1" {
                        axum::Json(serde_json::json!({"linkState": "ls"})).into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                }),
            );
        let config = EnodeConfig {
            pkce: false,
            ..super::super::mock_server(app, "s").await
        };
        let start = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z").unwrap();
        let client = Client::new(&config, Clock::starting_at(start.to_utc())).unwrap();
        (client, issued)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_client_token_is_replaced_once() {
        use std::sync::atomic::Ordering;
        let (client, issued) = revoking_server().await;
        // ct-1 is refused: the client fetches ct-2 and succeeds.
        assert_eq!(client.link_user("u", None, None).await.unwrap(), "ls");
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        // ct-2 stays cached.
        assert_eq!(client.link_user("u", None, None).await.unwrap(), "ls");
        assert_eq!(issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_off() {
        let base = crate::limits::test_support::endless_body_server().await;
        let config = EnodeConfig {
            api_url: Url::parse(&base).unwrap(),
            ..super::super::mock_server(axum::Router::new(), "s").await
        };
        let client = Client::new(&config, Clock::system()).unwrap();
        let e = client
            .list_vehicles(&Secret::new("t"), &VehicleField::POLL)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Decode { reason, .. } if reason.contains("larger than")),
            "{e:?}"
        );
    }

    /// A burst of requests (a shared block edge, a wave of refreshes)
    /// queues at the gate: at most [`limits::ENODE_CONNECTIONS_MAX`] are in
    /// flight at once, API and token calls together, and every one of
    /// them is answered.
    #[tokio::test]
    async fn requests_in_flight_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        #[derive(Default)]
        struct Count {
            now: AtomicUsize,
            max: AtomicUsize,
        }
        async fn slow(count: Arc<Count>, body: serde_json::Value) -> axum::Json<serde_json::Value> {
            let n = count.now.fetch_add(1, Ordering::SeqCst) + 1;
            count.max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            count.now.fetch_sub(1, Ordering::SeqCst);
            axum::Json(body)
        }
        let count = Arc::new(Count::default());
        let (c1, c2) = (count.clone(), count.clone());
        let app = axum::Router::new()
            .route(
                "/vehicles",
                axum::routing::get(move || slow(c1.clone(), serde_json::json!([]))),
            )
            .route(
                "/oauth2/token",
                axum::routing::post(move || {
                    slow(
                        c2.clone(),
                        serde_json::json!({
                            "access_token": "at", "refresh_token": "rt",
                            "token_type": "bearer", "expires_in": 3600
                        }),
                    )
                }),
            );
        let config = super::super::mock_server(app, "s").await;
        let client = Client::new(&config, Clock::system()).unwrap();
        let burst = limits::ENODE_CONNECTIONS_MAX * 3;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..burst {
            let c = client.clone();
            tasks.spawn(async move {
                if i % 2 == 0 {
                    c.list_vehicles(&Secret::new("t"), &VehicleField::POLL)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                } else {
                    c.auth()
                        .refresh(&Secret::new("rt"))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
            ok += 1;
        }
        assert_eq!(ok, burst);
        let max = count.max.load(Ordering::SeqCst);
        assert!(
            max <= limits::ENODE_CONNECTIONS_MAX && max > 1,
            "{max} requests in flight at once"
        );
    }

    #[test]
    fn ids_cannot_change_the_path() {
        let config = EnodeConfig {
            api_url: Url::parse("https://api.example/v1").unwrap(),
            auth_url: Url::parse("https://link.example/oauth2/auth").unwrap(),
            token_url: Url::parse("https://link.example/oauth2/token").unwrap(),
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            redirect_uri: Url::parse("http://127.0.0.1/callback").unwrap(),
            scopes: vec![],
            pkce: true,
            request_timeout: Duration::from_secs(5),
            token_timeout: Duration::from_secs(30),
        };
        let client = Client::new(&config, Clock::system()).unwrap();
        assert_eq!(
            client.url(&["users", "../me?x=1", "link"]).as_str(),
            "https://api.example/v1/users/..%2Fme%3Fx=1/link"
        );
        assert_eq!(
            client.url(&["vehicles"]).as_str(),
            "https://api.example/v1/vehicles"
        );
    }
}
