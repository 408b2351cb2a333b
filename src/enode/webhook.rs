//! The Firehose webhook's wire format: a JSON array of events `{event,
//! createdAt, user, vehicle}` (a single object is accepted too), read as
//! leniently as the API's answers (see [`super::dto`]). Only the signature
//! check in `crate::webhooks` runs before this; nothing here is reached by
//! an unsigned body.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dto::{self, Object};
use crate::limits;
use crate::model::{
    FieldSet, VehicleEvent, VehicleEventKind, VehiclePart, VehicleUpdate, WebhookEvent,
};

/// Events in one delivery at most (Enode batches up to 100).
pub const MAX_EVENTS: usize = 100;

/// Why a delivery's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON, or neither an event object nor an array of them.
    #[error("webhook body is not a JSON event or array of events")]
    NotEvents,
    /// More events than [`MAX_EVENTS`].
    #[error("webhook body holds {0} events, more than {MAX_EVENTS}")]
    TooMany(usize),
}

/// Reads a delivery's (already verified) body. Events that cannot be read
/// (no name, no user, a vehicle without a usable id) become
/// [`WebhookEvent::Ignored`], never an error: one odd event must not cost
/// the others.
pub fn events(body: &[u8]) -> Result<Vec<WebhookEvent>, WebhookError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| WebhookError::NotEvents)?;
    let list = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err(WebhookError::NotEvents),
    };
    if list.len() > MAX_EVENTS {
        return Err(WebhookError::TooMany(list.len()));
    }
    Ok(list.iter().map(event).collect())
}

/// Reads one event.
fn event(v: &Value) -> WebhookEvent {
    let Some(o) = v.as_object() else {
        return WebhookEvent::Ignored("(not an object)".into());
    };
    let name = dto::string(o, "event").unwrap_or_default();
    if name == "enode:firehose:test" {
        return WebhookEvent::Test;
    }
    let kind = match name.as_str() {
        "user:vehicle:updated" | "user:vehicle:discovered" | "user:vehicle:deleted" => name.clone(),
        _ => return WebhookEvent::Ignored(limits::clip(&name)),
    };
    let (Some(user), Some(at), Some(vehicle)) =
        (user_id(o), created_at(o), dto::object(o, "vehicle"))
    else {
        return WebhookEvent::Ignored(format!("{kind} (no user, createdAt or vehicle)"));
    };
    let Some(update) = update(vehicle) else {
        return WebhookEvent::Ignored(format!("{kind} (no usable vehicle id)"));
    };
    let kind = match kind.as_str() {
        "user:vehicle:updated" => VehicleEventKind::Updated(update),
        "user:vehicle:discovered" => VehicleEventKind::Discovered(VehicleUpdate {
            present: FieldSet::ALL,
            ..update
        }),
        _ => VehicleEventKind::Deleted(update.vehicle.id),
    };
    WebhookEvent::Vehicle(Box::new(VehicleEvent { user, at, kind }))
}

/// `user` is an object with an `id` (a bare string is accepted too).
fn user_id(o: &Object) -> Option<String> {
    match o.get("user")? {
        Value::Object(u) => dto::id(u, "id"),
        Value::String(s) if limits::enode_id_ok(s) => Some(s.clone()),
        _ => None,
    }
}

/// `createdAt`, an RFC 3339 instant.
fn created_at(o: &Object) -> Option<DateTime<Utc>> {
    dto::date_time(o, "createdAt")
}

/// The vehicle's own keys an update may carry, and the part each names.
const VEHICLE_KEYS: [(&str, VehiclePart); 7] = [
    ("chargingLocationId", VehiclePart::ChargingLocationId),
    ("isReachable", VehiclePart::IsReachable),
    ("lastSeen", VehiclePart::LastSeen),
    ("smartChargingPolicy", VehiclePart::SmartChargingPolicy),
    ("information", VehiclePart::Information),
    ("location", VehiclePart::Location),
    ("odometer", VehiclePart::Odometer),
];

/// The keys of its `chargeState` object, and the part each names.
const CHARGE_STATE_KEYS: [(&str, VehiclePart); 9] = [
    ("batteryLevel", VehiclePart::BatteryLevel),
    ("batteryCapacity", VehiclePart::BatteryCapacity),
    ("chargeLimit", VehiclePart::ChargeLimit),
    ("chargeRate", VehiclePart::ChargeRate),
    ("chargeTimeRemaining", VehiclePart::ChargeTimeRemaining),
    ("isCharging", VehiclePart::IsCharging),
    ("isPluggedIn", VehiclePart::IsPluggedIn),
    ("isChargingReasons", VehiclePart::Reasons),
    ("range", VehiclePart::Range),
];

/// A partial vehicle: each part the object names (even as `null`) is in
/// `present`, with its value read as the API's answers are.
fn update(o: &Object) -> Option<VehicleUpdate> {
    let full = dto::vehicle(&Value::Object(o.clone()))?;
    let mut present = FieldSet::default();
    let mut mark = |obj: &Object, keys: &[(&str, VehiclePart)]| {
        for (key, part) in keys {
            if obj.contains_key(*key) {
                present.insert(*part);
            }
        }
    };
    mark(o, &VEHICLE_KEYS);
    if let Some(cs) = dto::object(o, "chargeState") {
        mark(cs, &CHARGE_STATE_KEYS);
    }
    Some(VehicleUpdate {
        vehicle: full,
        present,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrackedVehicle;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 4, 18, 0, s).unwrap()
    }

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn an_update_names_only_its_fields() {
        let ev = events(&body(json!([{
            "event": "user:vehicle:updated",
            "createdAt": "2024-03-04T18:00:05Z",
            "user": {"id": "alice"},
            "vehicle": {"id": "v1", "chargeState": {"isPluggedIn": true, "chargeRate": null}}
        }])))
        .unwrap();
        let [WebhookEvent::Vehicle(e)] = &ev[..] else {
            panic!("{ev:?}")
        };
        assert_eq!(e.user, "alice");
        assert_eq!(e.at, t(5));
        let VehicleEventKind::Updated(u) = &e.kind else {
            panic!("{e:?}")
        };
        assert!(u.present.contains(VehiclePart::IsPluggedIn));
        assert!(u.present.contains(VehiclePart::ChargeRate));
        assert!(!u.present.contains(VehiclePart::BatteryLevel));
        assert!(!u.present.contains(VehiclePart::ChargingLocationId));

        // Merged into a known vehicle: absent parts keep their values, a
        // null part becomes unknown.
        let mut known = TrackedVehicle::new("v1");
        let mut full = u.clone();
        full.present = FieldSet::ALL;
        let cs = full
            .vehicle
            .charge_state
            .get_or_insert_with(Default::default);
        cs.battery_level = Some(40.0);
        cs.charge_rate_kw = Some(7.0);
        cs.is_plugged_in = Some(false);
        full.vehicle.charging_location_id = Some("home".into());
        known.merge(&full, t(0));
        assert!(known.merge(u, t(5)));
        let cs = known.vehicle.charge_state.as_ref().unwrap();
        assert_eq!(cs.battery_level, Some(40.0));
        assert_eq!(cs.is_plugged_in, Some(true));
        assert_eq!(cs.charge_rate_kw, None);
        assert_eq!(known.vehicle.charging_location_id.as_deref(), Some("home"));
    }

    #[test]
    fn an_older_report_never_overwrites_a_newer_one() {
        let upd = |plugged: bool, soc: Option<f64>| {
            let mut v = TrackedVehicle::new("v1").vehicle;
            let mut present = FieldSet::default();
            let cs = v.charge_state.get_or_insert_with(Default::default);
            cs.is_plugged_in = Some(plugged);
            present.insert(VehiclePart::IsPluggedIn);
            if let Some(s) = soc {
                cs.battery_level = Some(s);
                present.insert(VehiclePart::BatteryLevel);
            }
            VehicleUpdate {
                vehicle: v,
                present,
            }
        };
        let mut in_order = TrackedVehicle::new("v1");
        in_order.merge(&upd(true, Some(30.0)), t(1));
        in_order.merge(&upd(false, None), t(2));
        let mut reordered = TrackedVehicle::new("v1");
        reordered.merge(&upd(false, None), t(2));
        reordered.merge(&upd(true, Some(30.0)), t(1));
        assert_eq!(in_order.vehicle, reordered.vehicle);
        let cs = reordered.vehicle.charge_state.unwrap();
        assert_eq!(cs.is_plugged_in, Some(false), "the newer unplug stays");
        assert_eq!(cs.battery_level, Some(30.0), "the older SoC still fills in");
    }

    #[test]
    fn single_objects_unknown_events_and_limits() {
        let one = events(&body(json!({
            "event": "user:vehicle:deleted", "createdAt": "2024-03-04T18:00:00Z",
            "user": {"id": "u"}, "vehicle": {"id": "v9"}
        })))
        .unwrap();
        assert!(
            matches!(&one[..], [WebhookEvent::Vehicle(e)] if e.kind == VehicleEventKind::Deleted("v9".into()))
        );
        let other = events(&body(json!([
            {"event": "user:charger:updated", "createdAt": "2024-03-04T18:00:00Z"},
            {"event": "enode:firehose:test"},
            {"event": "user:vehicle:updated", "user": {"id": "u"}, "vehicle": {"id": "v"}},
            7
        ])))
        .unwrap();
        assert_eq!(
            other[0],
            WebhookEvent::Ignored("user:charger:updated".into())
        );
        assert_eq!(other[1], WebhookEvent::Test);
        assert!(matches!(&other[2], WebhookEvent::Ignored(s) if s.contains("createdAt")));
        assert!(matches!(&other[3], WebhookEvent::Ignored(_)));
        let many = Value::Array(vec![json!({"event": "x"}); MAX_EVENTS + 1]);
        assert_eq!(
            events(&body(many)),
            Err(WebhookError::TooMany(MAX_EVENTS + 1))
        );
        assert_eq!(events(b"not json"), Err(WebhookError::NotEvents));
        assert_eq!(events(b"42"), Err(WebhookError::NotEvents));
    }
}
