//! The admin API's routes. Reads are views of the read model; changes go
//! to the vehicle's user loop through `Fleet::steer`. Every input is
//! bounded: the body ([`super::MAX_BODY`]), ids (the Enode id and user id
//! grammars), numbers (percentages), times (local text, at most 14 days
//! ahead) and journal queries ([`super::MAX_JOURNAL`] entries).

use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::peer::Peer;
use super::{Admin, MAX_BODY, MAX_JOURNAL};
use crate::daemon::control::{Override, OverrideMode, Trip};
use crate::daemon::fleet::{Change, SteerError};
use crate::link::{self, LinkError};
use crate::localtime;
use crate::store::JournalEntry;
use crate::users::UserId;

/// The routes, with the peer check in front of all of them.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/webhooks", get(webhooks))
        .route("/v1/vehicles", get(vehicles))
        .route("/v1/vehicles/{id}", get(vehicle))
        .route("/v1/vehicles/{id}/plan", get(plan))
        .route("/v1/vehicles/{id}/override", post(set_override))
        .route("/v1/vehicles/{id}/trip", post(set_trip))
        .route("/v1/vehicles/{id}/replan", post(replan))
        .route("/v1/users", get(users))
        .route("/v1/journal", get(journal))
        .route("/v1/report", get(report))
        .route("/v1/link/{user}", post(start_link))
        .route("/v1/unlink/{user}", post(unlink))
        .fallback(|| async { Failed::new(StatusCode::NOT_FOUND, "no such path") })
        .layer(middleware::from_fn_with_state(admin.clone(), check_peer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(admin)
}

/// An error answer: `{"error": "..."}` with its status.
pub struct Failed(StatusCode, String);

impl Failed {
    fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Failed(status, msg.into())
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Refuses anyone but root, the daemon's user and the group's members.
async fn check_peer(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
    next: Next,
) -> Response {
    if !admin.allowed.admits(&peer) {
        warn!(peer.uid = ?peer.uid, peer.gid = ?peer.gid, peer.pid = ?peer.pid, path = %crate::limits::clip(req.uri().path()), "admin socket: peer refused");
        return Failed::new(
            StatusCode::FORBIDDEN,
            "not allowed: use root, the daemon's user, or a member of the [admin] group",
        )
        .into_response();
    }
    req.extensions_mut().insert(peer);
    next.run(req).await
}

/// Who asked, for the journal.
fn who(peer: &Peer) -> String {
    peer.to_string()
}

/// A vehicle id from the path: Enode's id grammar.
fn vehicle_id(id: &str) -> Result<&str, Failed> {
    if crate::limits::enode_id_ok(id) {
        Ok(id)
    } else {
        Err(Failed::new(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a vehicle id", crate::limits::clip(id)),
        ))
    }
}

/// `GET /v1/status?page=N`: as `GET /status` on the TCP listener.
async fn status(State(admin): State<Arc<Admin>>, RawQuery(q): RawQuery) -> impl IntoResponse {
    Json(crate::daemon::readmodel::StatusPage::new(
        admin.api.read.snapshot(),
        crate::daemon::http::page_number(q.as_deref()),
    ))
}

/// The webhook receiver's counters (`smartcharged webhook status`).
async fn webhooks(State(admin): State<Arc<Admin>>) -> Result<impl IntoResponse, Failed> {
    crate::daemon::webhook_http::status_json(&admin.api)
        .map(Json)
        .ok_or_else(|| Failed::new(StatusCode::NOT_FOUND, "the daemon runs without [webhooks]"))
}

/// `GET /v1/vehicles?page=N`: page N (from 1) of the vehicles, at most
/// [`crate::daemon::readmodel::JSON_PAGE`], as a JSON array; the header
/// `X-Next-Page` names the next page while there is one. A page past the
/// last is an empty array.
async fn vehicles(State(admin): State<Arc<Admin>>, RawQuery(q): RawQuery) -> Response {
    let page = crate::daemon::http::page_number(q.as_deref());
    let (list, info) = crate::daemon::readmodel::page_of(admin.api.read.snapshot().vehicles, page);
    let mut resp = Json(list).into_response();
    if let Some(next) = info.next {
        resp.headers_mut().insert("x-next-page", next.into());
    }
    resp
}

async fn vehicle(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Failed> {
    let id = vehicle_id(&id)?;
    admin
        .api
        .read
        .vehicle(id)
        .map(Json)
        .ok_or_else(|| Failed::new(StatusCode::NOT_FOUND, format!("no vehicle {id}")))
}

/// The answer of `GET /v1/vehicles/{id}/plan`: what the chart needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanAnswer {
    /// The instant of the answer.
    pub now: DateTime<Utc>,
    /// The zone people read the chart in.
    pub time_zone: chrono_tz::Tz,
    /// The explanation's sentence.
    pub explanation: String,
    /// The plan's deadline.
    pub deadline: DateTime<Utc>,
    /// The plan in force.
    pub plan: planner::Plan,
    /// The prices from now to the deadline.
    pub prices: Vec<planner::PriceSlot>,
}

async fn plan(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Failed> {
    let id = vehicle_id(&id)?;
    let detail = admin
        .api
        .read
        .vehicle(id)
        .ok_or_else(|| Failed::new(StatusCode::NOT_FOUND, format!("no vehicle {id}")))?;
    let plan = admin
        .api
        .fleet
        .view
        .lock()
        .expect("view lock")
        .get(id)
        .and_then(|l| l.state.plan.clone())
        .ok_or_else(|| {
            Failed::new(
                StatusCode::CONFLICT,
                format!(
                    "vehicle {id} has no plan: {}",
                    detail.vehicle.explanation.text
                ),
            )
        })?;
    let now = admin.api.clock.now();
    let curve = admin.api.fleet.prices.borrow().clone();
    let prices = curve
        .map(|c| {
            c.slots()
                .iter()
                .filter(|s| s.end > now && s.start < plan.deadline)
                .map(|s| planner::PriceSlot {
                    start: s.start,
                    end: s.end,
                    price_per_kwh: s.price,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(PlanAnswer {
        now,
        time_zone: detail.time_zone,
        explanation: detail.vehicle.explanation.text,
        deadline: plan.deadline,
        plan: plan.plan,
        prices,
    }))
}

async fn users(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    Json(admin.api.read.snapshot().users)
}

/// The body of `POST /v1/vehicles/{id}/override`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// "charge-now", "stop" or "auto".
    pub mode: String,
    /// Until when: local time text or RFC 3339.
    pub until: Option<String>,
    /// Charge-now until this state of charge, percent.
    pub soc: Option<f64>,
}

/// The body of `POST /v1/vehicles/{id}/trip`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TripBody {
    /// The departure: local time text or RFC 3339 (none with `cancel`).
    pub depart: Option<String>,
    /// The state of charge wanted then, percent.
    pub target: Option<f64>,
    /// Drop the trip instead.
    #[serde(default)]
    pub cancel: bool,
}

/// A percentage from outside: finite, 1-100.
fn percent(v: f64, what: &str) -> Result<f64, Failed> {
    if v.is_finite() && (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(Failed::new(
            StatusCode::BAD_REQUEST,
            format!("{what} must be between 1 and 100"),
        ))
    }
}

/// The zone people mean, for a vehicle: its policy's.
fn zone(admin: &Admin, id: &str) -> chrono_tz::Tz {
    let user = admin
        .api
        .fleet
        .view
        .lock()
        .expect("view lock")
        .get(id)
        .map(|l| l.user.to_string())
        .unwrap_or_default();
    admin
        .api
        .fleet
        .policy
        .borrow()
        .for_vehicle(&user, id)
        .time_zone
}

fn time(admin: &Admin, id: &str, text: &str) -> Result<DateTime<Utc>, Failed> {
    localtime::parse(text, zone(admin, id), admin.api.clock.now())
        .map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Applies a change and answers the vehicle as it is afterwards.
async fn steer(admin: &Admin, id: &str, change: Change, peer: &Peer) -> Result<Response, Failed> {
    match admin.api.fleet.steer(id, change, who(peer)).await {
        Ok(()) => Ok(Json(admin.api.read.vehicle(id)).into_response()),
        Err(e) => {
            let status = match e {
                SteerError::NotSeen(_) => StatusCode::NOT_FOUND,
                SteerError::NotPluggedIn(_) | SteerError::Inactive => StatusCode::CONFLICT,
                SteerError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                SteerError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            };
            Err(Failed::new(status, e.to_string()))
        }
    }
}

async fn set_override(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    axum::Extension(peer): axum::Extension<Peer>,
    Json(body): Json<OverrideBody>,
) -> Result<Response, Failed> {
    let id = vehicle_id(&id)?;
    let mode = match body.mode.as_str() {
        "auto" => {
            if body.until.is_some() || body.soc.is_some() {
                return Err(Failed::new(
                    StatusCode::BAD_REQUEST,
                    "auto takes no --until or --soc",
                ));
            }
            return steer(&admin, id, Change::Override(None), &peer).await;
        }
        "charge-now" => OverrideMode::ChargeNow,
        "stop" => OverrideMode::Stop,
        other => {
            return Err(Failed::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown override {:?}: use charge-now, stop or auto",
                    crate::limits::clip(other)
                ),
            ))
        }
    };
    if body.until.is_some() && body.soc.is_some() {
        return Err(Failed::new(
            StatusCode::BAD_REQUEST,
            "give --until or --soc, not both",
        ));
    }
    if mode == OverrideMode::Stop && body.soc.is_some() {
        return Err(Failed::new(StatusCode::BAD_REQUEST, "stop takes no --soc"));
    }
    let until = body
        .until
        .as_deref()
        .map(|t| time(&admin, id, t))
        .transpose()?;
    let soc = body.soc.map(|s| percent(s, "--soc")).transpose()?;
    let o = Override {
        mode,
        until,
        soc,
        set_at: admin.api.clock.now(),
        by: who(&peer),
    };
    steer(&admin, id, Change::Override(Some(o)), &peer).await
}

async fn set_trip(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    axum::Extension(peer): axum::Extension<Peer>,
    Json(body): Json<TripBody>,
) -> Result<Response, Failed> {
    let id = vehicle_id(&id)?;
    if body.cancel {
        return steer(&admin, id, Change::Trip(None), &peer).await;
    }
    let Some(depart) = body.depart.as_deref() else {
        return Err(Failed::new(StatusCode::BAD_REQUEST, "--depart is needed"));
    };
    let depart = time(&admin, id, depart)?;
    let target = body.target.map(|t| percent(t, "--target")).transpose()?;
    let t = Trip {
        depart,
        target_percent: target,
        set_at: admin.api.clock.now(),
        by: who(&peer),
        in_session: false,
    };
    steer(&admin, id, Change::Trip(Some(t)), &peer).await
}

async fn replan(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    axum::Extension(peer): axum::Extension<Peer>,
) -> Result<Response, Failed> {
    let id = vehicle_id(&id)?;
    steer(&admin, id, Change::Replan, &peer).await
}

/// The query of `GET /v1/journal`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    /// Only this vehicle.
    pub vehicle: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// From this instant (RFC 3339 or YYYY-MM-DD, UTC).
    pub since: Option<String>,
    /// Before this instant.
    pub until: Option<String>,
    /// At most this many, the newest (default and cap [`MAX_JOURNAL`]).
    pub limit: Option<usize>,
}

/// Reads a journal bound: RFC 3339, or a date (its midnight UTC).
pub fn journal_bound(text: &str) -> Result<DateTime<Utc>, String> {
    if text.len() > localtime::MAX_TIME_TEXT {
        return Err("time too long".into());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        })
        .map_err(|_| {
            format!(
                "{:?} is not RFC 3339 or YYYY-MM-DD",
                crate::limits::clip(text)
            )
        })
}

/// The journal entries a query selects, oldest first, at most `limit`
/// (the newest). Shared with the CLI when no daemon runs.
pub fn select_journal(
    store: &crate::store::Store,
    q: &JournalQuery,
) -> Result<Vec<JournalEntry>, String> {
    let since = q.since.as_deref().map(journal_bound).transpose()?;
    let until = q.until.as_deref().map(journal_bound).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err("--since is after --until".into());
        }
    }
    if let Some(v) = &q.vehicle {
        vehicle_id(v).map_err(|e| e.1)?;
    }
    if let Some(u) = &q.user {
        UserId::new(u.clone()).map_err(|e| e.to_string())?;
    }
    let limit = q.limit.unwrap_or(MAX_JOURNAL).clamp(1, MAX_JOURNAL);
    let mut out = store
        .journal_between(
            since,
            until,
            |e| {
                q.vehicle.as_ref().is_none_or(|v| &e.vehicle == v)
                    && q.user.as_ref().is_none_or(|u| &e.user == u)
            },
            limit,
        )
        .map_err(|e| e.to_string())?;
    out.reverse();
    Ok(out)
}

async fn journal(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<JournalQuery>,
) -> Result<impl IntoResponse, Failed> {
    select_journal(&admin.api.fleet.store, &q)
        .map(Json)
        .map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e))
}

/// The query of `GET /v1/report`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// "YYYY-MM" (default: this month, local).
    pub month: Option<String>,
    /// Only this vehicle.
    pub vehicle: Option<String>,
}

/// The report a query asks for, from `store`. Shared with the CLI when no
/// daemon runs.
pub fn select_report(
    store: &crate::store::Store,
    q: &ReportQuery,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<crate::report::Report, String> {
    let month = match &q.month {
        Some(m) => crate::report::parse_month(m)?,
        None => crate::report::this_month(now, tz),
    };
    if let Some(v) = &q.vehicle {
        vehicle_id(v).map_err(|e| e.1)?;
    }
    crate::report::build(store, month, tz, q.vehicle.as_deref()).map_err(|e| e.to_string())
}

async fn report(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<ReportQuery>,
) -> Result<impl IntoResponse, Failed> {
    let tz = admin.api.fleet.policy.borrow().global().time_zone;
    select_report(&admin.api.fleet.store, &q, admin.api.clock.now(), tz)
        .map(Json)
        .map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e))
}

/// Query of `POST /v1/link/{user}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkQuery {
    /// Vendor to preselect.
    vendor: Option<String>,
    /// Language to force.
    language: Option<String>,
}

async fn start_link(
    State(admin): State<Arc<Admin>>,
    Path(user): Path<String>,
    Query(q): Query<LinkQuery>,
    axum::Extension(peer): axum::Extension<Peer>,
) -> Result<impl IntoResponse, Failed> {
    let user =
        UserId::new(user).map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let vendor = q
        .vendor
        .as_deref()
        .map(crate::enode::vendor)
        .transpose()
        .map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let language = q
        .language
        .as_deref()
        .map(crate::enode::language)
        .transpose()
        .map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let api = &admin.api;
    let r = link::start(
        &api.fleet.client,
        &api.fleet.store,
        &api.clock,
        link::Request {
            user: &user,
            vendor,
            language,
            pkce: api.pkce,
            timeout: api.link_timeout,
        },
    )
    .await;
    match r {
        Ok(s) => {
            info!(user.id = %user, by = %who(&peer), "link flow started");
            api.fleet
                .journal(JournalEntry {
                    at: api.clock.now(),
                    user: user.to_string(),
                    vehicle: String::new(),
                    action: "LINK".into(),
                    reason: format!("link flow started (by {})", who(&peer)),
                    price: None,
                    result: "ok".into(),
                })
                .await;
            Ok(Json(serde_json::json!({
                "authorize_url": s.authorize_url.as_str(),
                "link_state": s.link_state,
            })))
        }
        Err(e @ LinkError::BadRequest(_)) => {
            Err(Failed::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e @ LinkError::Unlinking(_)) => Err(Failed::new(StatusCode::CONFLICT, e.to_string())),
        Err(e) => Err(Failed::new(StatusCode::BAD_GATEWAY, e.to_string())),
    }
}

/// The answer of `POST /v1/unlink/{user}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UnlinkAnswer {
    /// The user.
    pub user: String,
    /// Enode knew the user (and deleted it); false: it was already unknown.
    pub at_enode: bool,
    /// The store had the user (and deleted it with its tokens).
    pub in_store: bool,
    /// The user's vehicles the daemon stopped controlling.
    pub vehicles: Vec<String>,
}

/// Query of `POST /v1/unlink/{user}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnlinkQuery {
    /// Delete the user at Enode even if the store does not know it (an
    /// orphan left at Enode).
    #[serde(default)]
    pub force: bool,
}

/// Unlinks a user (see [`crate::daemon::unlink::unlink`]) in a task of its
/// own, so a client that goes away cannot cut it between its steps: 404 when the
/// store does not know it (unless `?force=true`), 409 while another
/// unlink of it runs, 502 when Enode refuses (the user stays linked).
async fn unlink(
    State(admin): State<Arc<Admin>>,
    Path(user): Path<String>,
    Query(q): Query<UnlinkQuery>,
    axum::Extension(peer): axum::Extension<Peer>,
) -> Result<Json<UnlinkAnswer>, Failed> {
    use crate::unlink::UnlinkError;
    let user =
        UserId::new(user).map_err(|e| Failed::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Its own task: a client that goes away (or times out) mid-unlink must
    // not cancel it between its steps.
    let api = admin.api.clone();
    let by = who(&peer);
    let task = admin
        .api
        .tracker
        .spawn(async move { crate::daemon::unlink::unlink(&api, &user, q.force, &by).await });
    task.await
        .map_err(|e| Failed::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(Json)
        .map_err(|e| {
            let status = match e {
                UnlinkError::NotLinked(_) => StatusCode::NOT_FOUND,
                UnlinkError::InProgress(_) => StatusCode::CONFLICT,
                UnlinkError::Refused { .. } => StatusCode::BAD_GATEWAY,
                UnlinkError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Failed::new(status, e.to_string())
        })
}
