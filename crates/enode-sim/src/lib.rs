//! An Enode API 1.3.10 and OAuth2 authorization server simulator, for
//! smartcharged's tests, demo and benchmarks.
//!
//! It serves, from its own reading of the spec (it shares no types with the
//! daemon's client), the endpoints the daemon uses: the token and authorize
//! endpoints, user management, `/me`, vehicles with `field[]` semantics,
//! charge state, START/STOP, smart-charging policy, watch, charging
//! locations and health. Vehicles charge at their power until their limit,
//! computed from the shared [`clock::Clock`], so a test under
//! `tokio::time::pause()` sees exact battery levels.
//!
//! A test starts it with [`spawn`] and steers it through the [`SimHandle`]:
//! faults (429 with or without Retry-After, 5xx, latency, connections
//! closed without an answer, malformed and oversized bodies), token lifetime and
//! refresh-token behaviour (rotation, replay detection, an optional
//! rotation grace period as Ory Hydra offers it), a refusing consent screen, driver actions, and
//! [`Stats`] with violation counters (expired tokens, requests before a
//! Retry-After elapsed, refresh-token replays, commands to unplugged or
//! away vehicles).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use enode_sim::{spawn, Scenario};
//! let clock = clock::Clock::starting_at("2024-03-01T16:00:00Z".parse().unwrap());
//! let sim = spawn(Scenario::builtin(), clock).await?;
//! println!("api and token endpoint at {}", sim.base_url());
//! let tokens = sim.handle.grant_tokens("alice", "offline_access all").unwrap();
//! # let _ = tokens;
//! assert_eq!(sim.handle.stats().violations.total(), 0);
//! # Ok(()) }
//! ```
//!
//! # Scenario format
//! TOML, documented key by key in `scenarios/default.toml` (the built-in
//! scenario): `start`, `seed`, `access_token_lifetime_secs`, `[refresh]`,
//! `[[clients]]`, `[[users]]` with `[[users.locations]]` and
//! `[[users.vehicles]]`, each vehicle with `[[users.vehicles.events]]`
//! (`plug_in`, `unplug`, `start`, `stop`, `arrive`, `leave`, `set_soc` at an
//! RFC 3339 instant or an offset such as `"+1h30m"`).
//!
//! # Faults
//! [`Fault`] rules (a [`FaultKind`], optional user, [`Target`], [`Trigger`])
//! through [`SimHandle::add_fault`] and its shortcuts, or as JSON through
//! `POST /_sim/faults` (`DELETE /_sim/faults` clears them):
//! `{"kind":{"type":"rate_limit","retry_after_secs":30},"trigger":{"type":"next","n":3}}`.
//! Kinds: `rate_limit` (`retry_after_secs` optional), `server_error`
//! (`status`, optional `retry_after_secs`), `latency` (`millis`),
//! `connection_reset`, `malformed_body` (optional `body`) and
//! `oversized_body` (`bytes`). Error and broken answers replace the
//! endpoint's work (nothing is rotated, no command applied); latency
//! delays an API answer before its work and a token answer after it.
//! `GET /_sim/stats` returns [`Stats`] as JSON.
//!
//! # Vendor health
//! `GET /health/vendors` lists every vendor of the spec's enum as `READY`
//! unless [`SimHandle::set_vendor_status`] (or `PUT /_sim/vendor-health`
//! `{"vendor": "TESLA", "status": "OUTAGE"}`) set another status.
//!
//! # Webhooks
//! `PUT /webhooks/firehose` `{"url", "secret"}` points the Firehose at a
//! receiver; from then on every change of a vehicle's plug, charging,
//! battery level (whole percent), limit, reasons, location, reachability
//! or smart-charging policy is delivered as a signed `user:vehicle:updated`
//! event with only the changed fields, and `POST /webhooks/firehose/test`
//! sends `enode:firehose:test`. [`WebhookFaults`] (`PUT
//! /_sim/webhook-faults`) drop, duplicate, delay, re-order or mis-sign
//! deliveries; `GET /_sim/webhooks` gives [`WebhookStats`]; `PUT
//! /_sim/firehose` sets the firehose without a client token.
//!
//! # Benchmark endpoints
//! `GET /_sim/commands` lists every accepted command with its arrival time
//! ([`CommandRecord`]), `GET /_sim/rotations` every refresh-token rotation
//! ([`RotationRecord`]), `GET /_sim/vehicles` every vehicle's exact state
//! and charging segments ([`VehicleSnapshot`]), and `POST
//! /_sim/grant-tokens` `{"users": [..] | absent for all, "scopes": ".."}`
//! issues tokens to many users at once ([`UserTokens`]); `GET
//! /_sim/request-seconds` counts requests per clock second.

mod api;
mod faults;
mod generate;
mod grants;
mod handle;
mod oauth;
mod problem;
mod scenario;
mod state;
mod stats;
mod tokens;
mod vehicle;
mod webhooks;
mod wire;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use clock::Clock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{AuthorizeError, Fault, FaultId, FaultKind, Target, Trigger};
pub use generate::Commute;
pub use handle::{RefreshTokenInfo, SimError, SimHandle, UserTokens, VehicleSnapshot};
pub use scenario::{
    ClientSpec, EventAction, EventSpec, LocationSpec, RefreshPolicy, Scenario, ScenarioError,
    SmartChargingSpec, UserSpec, VehicleSpec, When, AWAY, BUILTIN_TOML, GRACE_MAX_SECS, VENDORS,
};
pub use state::TokenSet;
pub use stats::{
    CommandCounts, CommandRecord, RotationRecord, Stats, TokenCounts, ViolationEvent,
    ViolationKind, Violations,
};
pub use vehicle::ChargeSegment;
pub use webhooks::{sign as sign_webhook, WebhookFaults, WebhookStats};

/// A simulator serving on a local port. Dropping it shuts the server down.
#[derive(Debug)]
pub struct Sim {
    /// The bound address.
    pub addr: SocketAddr,
    /// Steering and counters.
    pub handle: SimHandle,
    /// Dropped (or fired) to stop serving.
    shutdown: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Sim {
    /// `http://127.0.0.1:PORT`: the API base URL, and the authorization
    /// server's (`/oauth2/auth`, `/oauth2/token`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The authorization endpoint URL.
    pub fn auth_url(&self) -> String {
        format!("{}/oauth2/auth", self.base_url())
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// Stops serving and waits for the server to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        drop(self.shutdown.take());
        match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        drop(self.shutdown.take());
    }
}

/// Starts a simulator for `scenario` on `127.0.0.1:0`, reading time from
/// `clock` (share the daemon's clock in tests). An invalid scenario is an
/// `InvalidInput` error.
pub async fn spawn(scenario: Scenario, clock: Clock) -> io::Result<Sim> {
    let handle = SimHandle::new(scenario, clock)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    spawn_handle(handle).await
}

/// Starts serving an existing world on `127.0.0.1:0` (e.g. one prepared
/// before the server is needed).
pub async fn spawn_handle(handle: SimHandle) -> io::Result<Sim> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, handle.clone(), async move {
        let _ = rx.await;
    }));
    Ok(Sim {
        addr,
        handle,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handle: SimHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The firehose deliverer runs while the server does.
    let deliverer = tokio::spawn(webhooks::run(handle.clone()));
    let r = axum::serve(listener, router(handle))
        .with_graceful_shutdown(shutdown)
        .await;
    deliverer.abort();
    r
}

/// The simulator's routes, for embedding in another server.
pub fn router(handle: SimHandle) -> Router {
    let api = Router::new()
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/auth", get(oauth::authorize))
        .route("/users/{userId}/link", post(api::link_user))
        .route("/users/{userId}", axum::routing::delete(api::delete_user))
        .route(
            "/users/{userId}/authorization",
            axum::routing::delete(api::deauthorize_user),
        )
        .route("/me", get(api::me))
        .route("/vehicles", get(api::list_vehicles))
        .route("/vehicles/{vehicleId}", get(api::get_vehicle))
        .route(
            "/vehicles/{vehicleId}/charge-state",
            get(api::get_charge_state),
        )
        .route("/vehicles/{vehicleId}/charging", post(api::post_charging))
        .route(
            "/vehicles/{vehicleId}/smart-charging-policy",
            get(api::get_policy).put(api::put_policy),
        )
        .route("/vehicles/{vehicleId}/watch", post(api::watch))
        .route("/charging-locations", get(api::charging_locations))
        .route("/health/ready", get(api::health_ready))
        .route("/health/vendors", get(api::health_vendors))
        .route(
            "/webhooks/firehose",
            axum::routing::put(webhooks::put_firehose),
        )
        .route("/webhooks/firehose/test", post(webhooks::test_firehose))
        .fallback(api::fallback)
        .layer(middleware::from_fn_with_state(handle.clone(), count));
    let sim = Router::new()
        .route("/_sim/stats", get(sim_stats))
        .route("/_sim/commands", get(sim_commands))
        .route("/_sim/rotations", get(sim_rotations))
        .route("/_sim/vehicles", get(sim_vehicles))
        .route("/_sim/grant-tokens", post(sim_grant_tokens))
        .route("/_sim/faults", post(sim_add_fault).delete(sim_clear_faults))
        .route(
            "/_sim/webhook-faults",
            axum::routing::put(webhooks::sim_webhook_faults),
        )
        .route("/_sim/webhooks", get(webhooks::sim_webhook_stats))
        .route("/_sim/firehose", axum::routing::put(webhooks::sim_firehose))
        .route("/_sim/request-seconds", get(webhooks::sim_request_seconds))
        .route("/_sim/vendor-health", axum::routing::put(sim_vendor_health))
        .route(
            "/_sim/authorize-error",
            axum::routing::put(sim_authorize_error),
        );
    api.merge(sim).with_state(handle)
}

/// Counts every request by route and status (0: closed without an answer).
async fn count(State(h): State<SimHandle>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => format!("{} {}", req.method(), p.as_str()),
        None => "unmatched".to_string(),
    };
    let resp = next.run(req).await;
    let status = match resp.extensions().get::<faults::NoAnswer>() {
        Some(_) => 0,
        None => resp.status().as_u16(),
    };
    h.lock().stats.request(&route, status);
    let second = h.now().timestamp();
    let mut per = h
        .shared
        .per_second
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if per.len() < webhooks::SECONDS_KEPT || per.contains_key(&second) {
        *per.entry(second).or_default() += 1;
    }
    drop(per);
    resp
}

/// `GET /_sim/stats`.
async fn sim_stats(State(h): State<SimHandle>) -> Json<Stats> {
    Json(h.stats())
}

/// `GET /_sim/commands`: every accepted command with its arrival time.
async fn sim_commands(State(h): State<SimHandle>) -> Json<Vec<CommandRecord>> {
    Json(h.command_log())
}

/// `GET /_sim/rotations`: every refresh-token rotation with its time.
async fn sim_rotations(State(h): State<SimHandle>) -> Json<Vec<RotationRecord>> {
    Json(h.rotations())
}

/// `GET /_sim/vehicles`: exact snapshots of every vehicle (with the
/// charging segments a benchmark prices).
async fn sim_vehicles(State(h): State<SimHandle>) -> Json<Vec<VehicleSnapshot>> {
    Json(h.vehicles())
}

/// Body of `POST /_sim/grant-tokens`.
#[derive(Debug, serde::Deserialize)]
struct GrantRequest {
    /// Users to link; every user when absent.
    #[serde(default)]
    users: Option<Vec<String>>,
    /// Space-separated scopes.
    scopes: String,
}

/// `POST /_sim/grant-tokens`: tokens for many users at once, as if each
/// had linked (for benchmarks that seed a store in another process).
async fn sim_grant_tokens(
    State(h): State<SimHandle>,
    Json(r): Json<GrantRequest>,
) -> Result<Json<Vec<UserTokens>>, (StatusCode, String)> {
    h.grant_tokens_many(r.users.as_deref(), &r.scopes)
        .map(Json)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// `POST /_sim/faults`: adds a rule, answers its id.
async fn sim_add_fault(State(h): State<SimHandle>, Json(f): Json<Fault>) -> Json<FaultId> {
    Json(h.add_fault(f))
}

/// `DELETE /_sim/faults`: removes every rule and the authorize error.
async fn sim_clear_faults(State(h): State<SimHandle>) -> StatusCode {
    h.clear_faults();
    StatusCode::NO_CONTENT
}

/// Body of `PUT /_sim/vendor-health`.
#[derive(Debug, serde::Deserialize)]
struct VendorHealthLever {
    /// Vendor enum value.
    vendor: String,
    /// The status `GET /health/vendors` reports for it.
    status: String,
}

/// `PUT /_sim/vendor-health`: `{"vendor": "TESLA", "status": "OUTAGE"}`.
async fn sim_vendor_health(
    State(h): State<SimHandle>,
    Json(l): Json<VendorHealthLever>,
) -> StatusCode {
    h.set_vendor_status(&l.vendor, &l.status);
    StatusCode::NO_CONTENT
}

/// `PUT /_sim/authorize-error`: `{"error":..,"description":..}` or `null`.
async fn sim_authorize_error(
    State(h): State<SimHandle>,
    Json(e): Json<Option<AuthorizeError>>,
) -> StatusCode {
    h.set_authorize_error(e);
    StatusCode::NO_CONTENT
}
