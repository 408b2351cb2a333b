//! The Enode API endpoints: user management (client token), me, vehicles,
//! charging commands, smart-charging policy, watch, charging locations and
//! health. Each handler admits the request (token, scopes, Retry-After
//! bookkeeping, faults), then does its work under the state lock.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;

use crate::faults::{Broken, Injected};
use crate::handle::SimHandle;
use crate::problem::Problem;
use crate::scenario::{valid_deadline, VENDORS};
use crate::state::{Caller, Need, State as World};
use crate::stats::{CommandRecord, ViolationKind};
use crate::tokens::Scopes;
use crate::vehicle::{Action, Vehicle};
use crate::wire;

/// Scopes that may read vehicles (`GET /vehicles`, `GET /vehicles/{id}`).
const VEHICLE_READ: Scopes = Scopes::LOCATION
    .or(Scopes::ODOMETER)
    .or(Scopes::INFORMATION)
    .or(Scopes::CHARGE_STATE)
    .or(Scopes::SMART_CHARGING_POLICY);

/// Estimated range per kWh in the battery, for `range`.
const KM_PER_KWH: f64 = 6.0;

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Why an endpoint did not do its work: a problem answer, or a broken
/// answer from a fault rule.
#[derive(Debug)]
pub(crate) enum Refused {
    /// An RFC 7807 answer.
    Problem(Problem),
    /// A reset connection or a useless 200.
    Broken(Broken),
}

impl From<Problem> for Refused {
    fn from(p: Problem) -> Self {
        Refused::Problem(p)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Problem(p) => p.into_response(),
            Refused::Broken(b) => b.into_response(),
        }
    }
}

/// Admits a request: authenticates, checks scopes, notes Retry-After
/// violations, and applies fault rules (waiting out injected latency on the
/// clock).
pub(crate) async fn gate(
    h: &SimHandle,
    headers: &HeaderMap,
    need: Need,
    route: &'static str,
) -> Result<Caller, Refused> {
    let now = h.now();
    let adm = h.lock().admit(bearer(headers), need, now, route)?;
    if !adm.latency.is_zero() {
        h.clock().sleep(adm.latency).await;
    }
    if let Some(e) = adm.error {
        let now = h.now();
        h.lock().note_injected(Some(&adm.caller), &e, now);
        return Err(match e {
            Injected::RateLimited { retry_after_secs } => {
                Problem::rate_limited(retry_after_secs).into()
            }
            Injected::Server {
                status,
                retry_after_secs,
            } => Problem::server(status, retry_after_secs).into(),
            Injected::Broken(b) => Refused::Broken(b),
        });
    }
    Ok(adm.caller)
}

/// Like [`gate`] for user endpoints: the user id.
async fn gate_user(
    h: &SimHandle,
    headers: &HeaderMap,
    scopes: Scopes,
    route: &'static str,
) -> Result<String, Refused> {
    match gate(h, headers, Need::User(scopes), route).await? {
        Caller::User { user } => Ok(user),
        Caller::Client(_) => Err(Problem::forbidden("a user access token is required").into()),
    }
}

/// Parses a JSON body into `T` (an empty body as `default`), answering 400
/// problem+json otherwise.
pub(crate) fn json_body<T: DeserializeOwned>(
    body: &[u8],
    default: Option<T>,
) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if let Some(d) = default {
            return Ok(d);
        }
        return Err(Problem::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("invalid body: {e}")))
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `field[]` values of a query, as a bit set over [`FIELDS`].
const FIELDS: [&str; 5] = [
    "chargeState",
    "smartChargingPolicy",
    "location",
    "information",
    "odometer",
];

fn fields(query: Option<&str>) -> Result<u8, Problem> {
    let mut bits = 0;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != "field[]" {
            continue;
        }
        match FIELDS.iter().position(|f| *f == v) {
            Some(i) => bits |= 1 << i,
            None => {
                return Err(Problem::bad_request(format!(
                    "\"field[]\" value {v:?} must be one of {FIELDS:?}"
                )))
            }
        }
    }
    Ok(bits)
}

/// The vehicle `id` of `user`, advanced to `now`; 404 for anyone else's.
fn owned<'a>(
    st: &'a mut World,
    user: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<&'a mut Vehicle, Problem> {
    match st.vehicles.get_mut(id) {
        Some(v) if v.user == user => {
            v.advance(now);
            Ok(v)
        }
        _ => Err(Problem::not_found(format!("vehicle {id} not found"))),
    }
}

fn charge_state(v: &Vehicle, now: DateTime<Utc>) -> wire::ChargeState {
    let soc = v.soc_at(now);
    let charging = v.charging_at(now);
    wire::ChargeState {
        battery_capacity: v.capacity_kwh,
        battery_level: wire::Numeric::new(soc, v.numeric_strings),
        charge_limit: v.charge_limit,
        charge_rate: charging.then_some(v.charge_kw),
        charge_time_remaining: v.seconds_to_limit(now).map(|s| (s / 60.0).ceil() as i64),
        is_charging: charging,
        is_charging_reasons: vec![v.reasons_at(now)],
        is_plugged_in: v.plugged_in,
        range: wire::Numeric::new(soc / 100.0 * v.capacity_kwh * KM_PER_KWH, v.numeric_strings),
        power_delivery_state: match (v.plugged_in, charging) {
            (false, _) => "UNPLUGGED",
            (true, true) => "PLUGGED_IN:CHARGING",
            (true, false) => "PLUGGED_IN:STOPPED",
        },
        last_updated: iso(now),
    }
}

fn policy(v: &Vehicle) -> wire::SmartChargingPolicy {
    wire::SmartChargingPolicy {
        deadline: v.policy_deadline.clone(),
        is_enabled: v.policy_enabled,
    }
}

fn vehicle_json(st: &World, v: &Vehicle, fields: u8, now: DateTime<Utc>) -> wire::Vehicle {
    let has = |i: usize| fields & (1 << i) != 0;
    let locations = &st.users[v.user.as_str()].locations;
    wire::Vehicle {
        id: v.id.clone(),
        base: (fields != 0).then(|| wire::VehicleBase {
            is_reachable: v.reachable,
            last_seen: iso(now),
            charging_location_id: v.location.clone(),
            vendor: v.vendor.clone(),
        }),
        charge_state: has(0).then(|| charge_state(v, now)),
        smart_charging_policy: has(1).then(|| policy(v)),
        location: has(2).then(|| {
            let at = v
                .location
                .as_deref()
                .and_then(|l| locations.iter().find(|x| x.id == l));
            let (latitude, longitude) = match (at, locations.first()) {
                (Some(l), _) => (l.latitude, l.longitude),
                (None, Some(home)) => (home.latitude + 0.05, home.longitude - 0.05),
                (None, None) => (59.95, 10.70),
            };
            wire::VehicleLocation {
                last_updated: iso(now),
                latitude,
                longitude,
            }
        }),
        information: has(3).then(|| wire::VehicleInformation {
            id: v.id.clone(),
            brand: v.brand.clone(),
            model: v.model.clone(),
            year: v.year,
        }),
        odometer: has(4).then(|| wire::VehicleOdometer {
            distance: v.odometer_km,
            last_updated: iso(now),
        }),
    }
}

/// `POST /users/{userId}/link`.
pub(crate) async fn link_user(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Response, Refused> {
    gate(&h, &headers, Need::Client, "POST /users/{userId}/link").await?;
    let opts: wire::LinkUserOptions = json_body(&body, Some(Default::default()))?;
    if let Some(v) = opts.vendor.as_deref().filter(|v| !VENDORS.contains(v)) {
        return Err(
            Problem::bad_request(format!("\"vendor\" {v:?} must be one of {VENDORS:?}")).into(),
        );
    }
    let now = h.now();
    let link_state = h.lock().link(&user, opts.vendor, now);
    Ok(Json(wire::LinkUserResponse { link_state }).into_response())
}

/// `DELETE /users/{userId}`: revokes every token and forgets the link. The
/// user's vehicles stay with the simulator (they stand for the vendor
/// account) and come back when the user links again.
pub(crate) async fn delete_user(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<StatusCode, Refused> {
    gate(&h, &headers, Need::Client, "DELETE /users/{userId}").await?;
    let mut st = h.lock();
    st.revoke_user(&user);
    if let Some(u) = st.users.get_mut(&user) {
        u.linked = false;
        u.vendor = None;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /users/{userId}/authorization`: revokes every token of the user.
pub(crate) async fn deauthorize_user(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<StatusCode, Refused> {
    gate(
        &h,
        &headers,
        Need::Client,
        "DELETE /users/{userId}/authorization",
    )
    .await?;
    h.lock().revoke_user(&user);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`.
pub(crate) async fn me(
    State(h): State<SimHandle>,
    headers: HeaderMap,
) -> Result<Json<wire::Me>, Refused> {
    let user = gate_user(&h, &headers, Scopes::default(), "GET /me").await?;
    let st = h.lock();
    let u = &st.users[user.as_str()];
    let mut vendors: Vec<String> = u
        .vehicles
        .iter()
        .filter_map(|id| st.vehicles.get(id))
        .map(|v| v.vendor.clone())
        .chain(u.vendor.clone())
        .collect();
    vendors.sort();
    vendors.dedup();
    Ok(Json(wire::Me {
        id: user,
        linked_vendors: vendors
            .into_iter()
            .map(|vendor| wire::LinkedVendor {
                vendor,
                is_valid: true,
            })
            .collect(),
    }))
}

/// `GET /vehicles`.
pub(crate) async fn list_vehicles(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<wire::Vehicle>>, Refused> {
    let user = gate_user(&h, &headers, VEHICLE_READ, "GET /vehicles").await?;
    let fields = fields(q.as_deref())?;
    let now = h.now();
    let mut st = h.lock();
    let ids = st.users[user.as_str()].vehicles.clone();
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(v) = st.vehicles.get_mut(id) {
            v.advance(now);
        }
        let v = &st.vehicles[id];
        out.push(vehicle_json(&st, v, fields, now));
    }
    Ok(Json(out))
}

/// `GET /vehicles/{vehicleId}`.
pub(crate) async fn get_vehicle(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<wire::Vehicle>, Refused> {
    let user = gate_user(&h, &headers, VEHICLE_READ, "GET /vehicles/{vehicleId}").await?;
    let fields = fields(q.as_deref())?;
    let now = h.now();
    let mut st = h.lock();
    owned(&mut st, &user, &id, now)?;
    let v = &st.vehicles[&id];
    Ok(Json(vehicle_json(&st, v, fields, now)))
}

/// `GET /vehicles/{vehicleId}/charge-state`.
pub(crate) async fn get_charge_state(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<wire::ChargeState>, Refused> {
    let route = "GET /vehicles/{vehicleId}/charge-state";
    let user = gate_user(&h, &headers, Scopes::CHARGE_STATE, route).await?;
    let now = h.now();
    let mut st = h.lock();
    let v = owned(&mut st, &user, &id, now)?;
    Ok(Json(charge_state(v, now)))
}

/// `POST /vehicles/{vehicleId}/charging`: START or STOP, 204. Rejected
/// (and counted) for an unplugged vehicle; accepted but counted for a
/// vehicle away from its user's charging locations.
pub(crate) async fn post_charging(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Refused> {
    let route = "POST /vehicles/{vehicleId}/charging";
    let user = gate_user(&h, &headers, Scopes::CONTROL_CHARGING, route).await?;
    let cmd: wire::ChargingAction = json_body(&body, None)?;
    let (action, start) = match cmd.action.as_str() {
        "START" => (Action::ApiStart, true),
        "STOP" => (Action::ApiStop, false),
        other => {
            return Err(Problem::bad_request(format!(
                "\"action\" {other:?} must be one of [\"START\", \"STOP\"]"
            ))
            .into())
        }
    };
    let now = h.now();
    let mut guard = h.lock();
    let st = &mut *guard;
    let v = owned(st, &user, &id, now)?;
    if !v.plugged_in {
        st.stats.commands(&id).rejected_unplugged += 1;
        st.stats.violation(
            now,
            ViolationKind::CommandUnplugged,
            Some(&user),
            format!("{} to unplugged vehicle {id}", cmd.action),
        );
        return Err(Problem::not_plugged_in(format!("vehicle {id} is not plugged in")).into());
    }
    let away = v.location.is_none();
    v.apply(now, action);
    st.stats.command_log.push(CommandRecord {
        at: now,
        vehicle: id.clone(),
        action: cmd.action.clone(),
    });
    let c = st.stats.commands(&id);
    if start {
        c.start += 1;
    } else {
        c.stop += 1;
    }
    if away {
        c.away += 1;
        st.stats.violation(
            now,
            ViolationKind::CommandAway,
            Some(&user),
            format!(
                "{} to vehicle {id} away from its charging locations",
                cmd.action
            ),
        );
    }
    drop(guard);
    h.wake_deliverer();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /vehicles/{vehicleId}/smart-charging-policy`.
pub(crate) async fn get_policy(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<wire::SmartChargingPolicy>, Refused> {
    let route = "GET /vehicles/{vehicleId}/smart-charging-policy";
    let user = gate_user(&h, &headers, Scopes::SMART_CHARGING_POLICY, route).await?;
    let now = h.now();
    let mut st = h.lock();
    let v = owned(&mut st, &user, &id, now)?;
    Ok(Json(policy(v)))
}

/// `PUT /vehicles/{vehicleId}/smart-charging-policy`.
pub(crate) async fn put_policy(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<wire::SmartChargingPolicy>, Refused> {
    let route = "PUT /vehicles/{vehicleId}/smart-charging-policy";
    let user = gate_user(&h, &headers, Scopes::SMART_CHARGING_POLICY, route).await?;
    let update: wire::SmartChargingPolicyUpdate = json_body(&body, None)?;
    if let Some(d) = update.deadline.as_deref().filter(|d| !valid_deadline(d)) {
        return Err(Problem::bad_request(format!(
            "\"deadline\" {d:?} must match ^\\d{{2}}:\\d{{2}}$ (HH:MM, UTC)"
        ))
        .into());
    }
    let now = h.now();
    let mut st = h.lock();
    let v = owned(&mut st, &user, &id, now)?;
    if let Some(d) = update.deadline {
        v.policy_deadline = d;
    }
    if let Some(e) = update.is_enabled {
        v.policy_enabled = e;
    }
    let answer = policy(v);
    drop(st);
    h.wake_deliverer();
    Ok(Json(answer))
}

/// `POST /vehicles/{vehicleId}/watch`.
pub(crate) async fn watch(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<wire::WatchPayload>, Refused> {
    let route = "POST /vehicles/{vehicleId}/watch";
    let scopes = Scopes::LOCATION.or(Scopes::CHARGE_STATE);
    let user = gate_user(&h, &headers, scopes, route).await?;
    let payload: wire::WatchPayload = json_body(&body, Some(Default::default()))?;
    let now = h.now();
    let mut guard = h.lock();
    let st = &mut *guard;
    owned(st, &user, &id, now)?;
    st.stats.commands(&id).watch += 1;
    Ok(Json(payload))
}

/// `GET /charging-locations`.
pub(crate) async fn charging_locations(
    State(h): State<SimHandle>,
    headers: HeaderMap,
) -> Result<Json<Vec<wire::ChargingLocation>>, Refused> {
    let route = "GET /charging-locations";
    let user = gate_user(&h, &headers, Scopes::CHARGING_LOCATION, route).await?;
    let st = h.lock();
    Ok(Json(
        st.users[user.as_str()]
            .locations
            .iter()
            .map(|l| wire::ChargingLocation {
                id: l.id.clone(),
                name: l.name.clone(),
                latitude: l.latitude,
                longitude: l.longitude,
            })
            .collect(),
    ))
}

/// `GET /health/ready`: 204, all functionality nominal.
pub(crate) async fn health_ready() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /health/vendors`: every vendor of the spec's enum, `READY` unless
/// a test set another status.
pub(crate) async fn health_vendors(State(h): State<SimHandle>) -> Json<Vec<wire::VendorHealth>> {
    let st = h.lock();
    Json(
        VENDORS
            .iter()
            .map(|v| wire::VendorHealth {
                display_name: v.to_owned().into(),
                status: st
                    .vendor_status
                    .get(*v)
                    .cloned()
                    .unwrap_or_else(|| "READY".into()),
                vendor: (*v).into(),
            })
            .collect(),
    )
}

/// Any other path: 404 problem+json.
pub(crate) async fn fallback() -> Problem {
    Problem::not_found("no such resource")
}
