//! Enode's wire JSON: the only code that knows its shape (invariant 2).
//!
//! Reading is lenient by design. Vendors feed Enode inconsistent data and the
//! spec itself has quirks (numeric strings in number fields, `format: date`
//! fields that carry date-times, a malformed enum), and a daemon that stops
//! controlling a fleet because one field changed type is worse than one that
//! treats that field as unknown. So every scalar is read through
//! [`serde_json::Value`] and converted by hand: a wrong type, an unknown enum
//! value or an unknown field becomes `None` (or is kept verbatim), never an
//! error. Only a body that is not the expected object or array at all is a
//! decode error.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Serialize;

use crate::limits;
use serde_json::{Map, Value};

use crate::model::{
    ChargeAction, ChargeState, ChargingLocation, ChargingReason, LinkedVendor, Location, Odometer,
    SmartChargingPolicy, UserInfo, Vehicle, VehicleInformation, VendorHealth, VendorStatus,
    WatchProperty,
};

/// A JSON object, read field by field.
pub(super) type Object = Map<String, Value>;

/// Of a string array (e.g. `isChargingReasons`), at most this many are kept.
const MAX_STRINGS: usize = 32;

/// Reads one vehicle object. `None` when it is not an object or has no
/// usable id (see [`limits::enode_id_ok`]): a vehicle without one cannot be
/// addressed, so it is skipped.
pub fn vehicle(v: &Value) -> Option<Vehicle> {
    let o = v.as_object()?;
    Some(Vehicle {
        id: id(o, "id")?,
        information: object(o, "information").map(information),
        charge_state: object(o, "chargeState").map(charge_state),
        smart_charging_policy: object(o, "smartChargingPolicy").map(smart_charging_policy),
        location: object(o, "location").map(location),
        odometer: object(o, "odometer").map(odometer),
        charging_location_id: id(o, "chargingLocationId"),
        is_reachable: boolean(o, "isReachable"),
        last_seen: date_time(o, "lastSeen"),
    })
}

/// Reads `GET /vehicles`: an array of vehicles; elements that are not
/// vehicles are skipped (and counted by the caller through the length).
pub fn vehicles(v: &Value) -> Option<Vec<Vehicle>> {
    Some(v.as_array()?.iter().filter_map(vehicle).collect())
}

/// Reads a `Charge_State` object.
pub fn charge_state(o: &Object) -> ChargeState {
    ChargeState {
        battery_level: number(o, "batteryLevel"),
        battery_capacity_kwh: number(o, "batteryCapacity"),
        charge_limit: number(o, "chargeLimit"),
        charge_rate_kw: number(o, "chargeRate"),
        charge_time_remaining_min: number(o, "chargeTimeRemaining"),
        is_charging: boolean(o, "isCharging"),
        is_plugged_in: boolean(o, "isPluggedIn"),
        reasons: strings(o, "isChargingReasons")
            .iter()
            .map(|s| ChargingReason::parse(s))
            .collect(),
        range_km: number(o, "range"),
    }
}

/// Reads a `Vehicle_Smart_Charging_Policy` object.
pub fn smart_charging_policy(o: &Object) -> SmartChargingPolicy {
    SmartChargingPolicy {
        is_enabled: boolean(o, "isEnabled").unwrap_or(false),
        deadline_utc: string(o, "deadline").and_then(|s| parse_deadline(&s)),
    }
}

/// Reads a `Vehicle_Information` object.
pub fn information(o: &Object) -> VehicleInformation {
    VehicleInformation {
        id: string(o, "id"),
        brand: string(o, "brand"),
        model: string(o, "model"),
        year: number(o, "year")
            .filter(|y| y.fract() == 0.0 && y.abs() < 10_000.0)
            .map(|y| y as i32),
    }
}

/// Reads a `Vehicle_Location` object.
pub fn location(o: &Object) -> Location {
    Location {
        latitude: number(o, "latitude"),
        longitude: number(o, "longitude"),
        last_updated: date_time(o, "lastUpdated"),
    }
}

/// Reads a `Vehicle_Odometer` object.
pub fn odometer(o: &Object) -> Odometer {
    Odometer {
        distance_km: number(o, "distance"),
        last_updated: date_time(o, "lastUpdated"),
    }
}

/// Reads `GET /charging-locations`: locations without an id are skipped.
pub fn charging_locations(v: &Value) -> Option<Vec<ChargingLocation>> {
    Some(v.as_array()?.iter().filter_map(charging_location).collect())
}

/// Reads one `Charging_Location`.
pub fn charging_location(v: &Value) -> Option<ChargingLocation> {
    let o = v.as_object()?;
    Some(ChargingLocation {
        id: id(o, "id")?,
        name: string(o, "name"),
        latitude: number(o, "latitude"),
        longitude: number(o, "longitude"),
    })
}

/// Reads `GET /me`.
pub fn user_info(v: &Value) -> Option<UserInfo> {
    let o = v.as_object()?;
    let linked_vendors = o
        .get("linkedVendors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .filter_map(|lv| {
                    Some(LinkedVendor {
                        vendor: string(lv, "vendor")?,
                        is_valid: boolean(lv, "isValid").unwrap_or(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(UserInfo {
        id: string(o, "id")?,
        linked_vendors,
    })
}

/// Reads `GET /health/vendors` (`Model3`: an array of `Model2`);
/// entries without a vendor or status are skipped.
pub fn vendor_health(v: &Value) -> Option<Vec<VendorHealth>> {
    Some(
        v.as_array()?
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|o| {
                Some(VendorHealth {
                    vendor: string(o, "vendor")?,
                    status: VendorStatus::parse(&string(o, "status")?),
                })
            })
            .collect(),
    )
}

/// Reads `POST /users/{id}/link`: the `linkState`.
pub fn link_state(v: &Value) -> Option<String> {
    string(v.as_object()?, "linkState")
        .filter(|s| s.len() < limits::TEXT_MAX && !s.chars().any(char::is_control))
}

/// Body of `PUT /webhooks/firehose` (`Update_Firehose_Webhook`). Never
/// logged: it carries the secret.
#[derive(Serialize)]
pub struct FirehoseBody<'a> {
    /// Where Enode delivers.
    pub url: &'a str,
    /// The shared secret deliveries are signed with.
    pub secret: &'a str,
}

/// Body of `POST /users/{userId}/link` (`Link_User_Options`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkUserOptions<'a> {
    /// Vendor to preselect, e.g. `TESLA`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<&'a str>,
    /// BCP47 language the Link UI should use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_language: Option<&'a str>,
}

/// Body of `POST /vehicles/{id}/charging` (`Vehicle_Charging_Action`).
#[derive(Debug, Serialize)]
pub struct ChargingAction {
    /// `START` or `STOP`.
    pub action: &'static str,
}

impl From<ChargeAction> for ChargingAction {
    fn from(a: ChargeAction) -> Self {
        ChargingAction { action: a.as_str() }
    }
}

/// Body of `PUT /vehicles/{id}/smart-charging-policy`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmartChargingPolicyBody {
    /// Whether Enode's smart charging is on.
    pub is_enabled: bool,
    /// `HH:MM` in UTC; omitted when the policy has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

impl From<&SmartChargingPolicy> for SmartChargingPolicyBody {
    fn from(p: &SmartChargingPolicy) -> Self {
        SmartChargingPolicyBody {
            is_enabled: p.is_enabled,
            deadline: p.deadline_utc.map(|t| t.format("%H:%M").to_string()),
        }
    }
}

/// Body of `POST /vehicles/{id}/watch` (`Start_Vehicle_Watch_Payload`). The
/// spec declares `properties` a string but documents an array; the array is
/// what servers accept.
#[derive(Debug, Serialize)]
pub struct WatchBody {
    /// Properties to watch, e.g. `["IS_CHARGING"]`.
    pub properties: Vec<&'static str>,
}

impl WatchBody {
    /// The body for a set of properties.
    pub fn new(props: &[WatchProperty]) -> Self {
        WatchBody {
            properties: props.iter().map(|p| p.as_str()).collect(),
        }
    }
}

/// Parses a `deadline` of `HH:MM` (24h, UTC); `HH:MM:SS` is tolerated.
pub fn parse_deadline(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .ok()
}

/// A field as a string; numbers are accepted and printed (ids sometimes
/// are). Clipped to [`limits::TEXT_MAX`] bytes.
pub(super) fn string(o: &Object, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if !s.is_empty() => Some(limits::clip(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field as an id: as [`string`], but an id that is too long or holds
/// control characters reads as absent rather than clipped (a clipped id
/// would name another object).
pub(super) fn id(o: &Object, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if limits::enode_id_ok(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field as a number: a JSON number or a numeric string (`"38"`, `" 38.5 "`).
/// Non-finite values and anything else read as unknown.
pub(super) fn number(o: &Object, key: &str) -> Option<f64> {
    let n = match o.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// A field as a boolean: `true`/`false`, or the strings `"true"`/`"false"`.
pub(super) fn boolean(o: &Object, key: &str) -> Option<bool> {
    match o.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A nested object; anything else reads as absent.
pub(super) fn object<'a>(o: &'a Object, key: &str) -> Option<&'a Object> {
    o.get(key)?.as_object()
}

/// An array of strings; non-string elements are skipped, a lone string is
/// read as a one-element array.
pub(super) fn strings(o: &Object, key: &str) -> Vec<String> {
    match o.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .take(MAX_STRINGS)
            .map(limits::clip)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![limits::clip(s)],
        _ => Vec::new(),
    }
}

/// A timestamp. The spec says `format: date` but servers send RFC 3339
/// date-times; both are accepted (a bare date is midnight UTC, a date-time
/// without an offset is UTC).
pub(super) fn date_time(o: &Object, key: &str) -> Option<DateTime<Utc>> {
    let s = o.get(key)?.as_str()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn full_vehicle() -> Value {
        json!({
            "id": "veh-1",
            "chargingLocationId": "8d90101b-3f2f-462a-bbb4-1ed320d33bbe",
            "isReachable": true,
            "lastSeen": "2020-04-07T17:04:26Z",
            "information": {"brand": "Tesla", "id": "vin-1", "model": "Model S P85", "year": 2020},
            "chargeState": {
                "batteryCapacity": 73.21, "batteryLevel": 38, "chargeLimit": 80,
                "chargeRate": 40.1, "chargeTimeRemaining": 319, "isCharging": true,
                "isChargingReasons": ["SMART_CHARGING_ACTIVE"], "isPluggedIn": true, "range": 127.5
            },
            "location": {"lastUpdated": "2020-04-07T17:04:26Z", "latitude": 59.911491, "longitude": 10.757933},
            "odometer": {"distance": 24650, "lastUpdated": "2020-01-07T16:21:16Z"},
            "smartChargingPolicy": {"deadline": "08:00", "isEnabled": true}
        })
    }

    #[test]
    fn reads_a_vehicle_in_the_spec_shape() {
        let v = vehicle(&full_vehicle()).unwrap();
        assert_eq!(v.id, "veh-1");
        assert_eq!(
            v.charging_location_id.as_deref(),
            Some("8d90101b-3f2f-462a-bbb4-1ed320d33bbe")
        );
        assert_eq!(v.is_reachable, Some(true));
        assert_eq!(
            v.last_seen,
            Some(Utc.with_ymd_and_hms(2020, 4, 7, 17, 4, 26).unwrap())
        );
        let cs = v.charge_state.unwrap();
        assert_eq!(cs.battery_level, Some(38.0));
        assert_eq!(cs.battery_capacity_kwh, Some(73.21));
        assert_eq!(cs.charge_limit, Some(80.0));
        assert_eq!(cs.charge_rate_kw, Some(40.1));
        assert_eq!(cs.charge_time_remaining_min, Some(319.0));
        assert_eq!(cs.is_charging, Some(true));
        assert_eq!(cs.is_plugged_in, Some(true));
        assert_eq!(cs.reasons, vec![ChargingReason::SmartChargingActive]);
        assert_eq!(cs.range_km, Some(127.5));
        let p = v.smart_charging_policy.unwrap();
        assert!(p.is_enabled);
        assert_eq!(p.deadline_utc, NaiveTime::from_hms_opt(8, 0, 0));
        let info = v.information.unwrap();
        assert_eq!(info.brand.as_deref(), Some("Tesla"));
        assert_eq!(info.year, Some(2020));
        let loc = v.location.unwrap();
        assert_eq!(loc.latitude, Some(59.911491));
        assert_eq!(v.odometer.unwrap().distance_km, Some(24650.0));
    }

    #[test]
    fn numeric_strings_are_numbers() {
        let o = json!({"batteryLevel": "38", "range": " 127.5 ", "chargeLimit": "80"});
        let cs = charge_state(o.as_object().unwrap());
        assert_eq!(cs.battery_level, Some(38.0));
        assert_eq!(cs.range_km, Some(127.5));
        assert_eq!(cs.charge_limit, Some(80.0));
    }

    #[test]
    fn nulls_and_garbage_are_unknown_not_errors() {
        let o = json!({
            "batteryLevel": "n/a", "range": null, "chargeRate": null,
            "chargeTimeRemaining": null, "isCharging": false, "isPluggedIn": "yes",
            "batteryCapacity": {"kwh": 3}, "chargeLimit": [80]
        });
        let cs = charge_state(o.as_object().unwrap());
        assert_eq!(cs.battery_level, None);
        assert_eq!(cs.range_km, None);
        assert_eq!(cs.charge_rate_kw, None);
        assert_eq!(cs.charge_time_remaining_min, None);
        assert_eq!(cs.is_charging, Some(false));
        assert_eq!(cs.is_plugged_in, None);
        assert_eq!(cs.battery_capacity_kwh, None);
        assert_eq!(cs.charge_limit, None);
        assert!(cs.reasons.is_empty());
    }

    #[test]
    fn reasons_are_free_strings_with_known_ones_mapped() {
        let o = json!({"isChargingReasons": ["MANUALLY_STARTED", "COSMIC_RAYS", 7, "", "manually_stopped"]});
        let cs = charge_state(o.as_object().unwrap());
        assert_eq!(
            cs.reasons,
            vec![
                ChargingReason::ManuallyStarted,
                ChargingReason::Other("COSMIC_RAYS".into()),
                ChargingReason::ManuallyStopped,
            ]
        );
        assert!(cs.is_manual_override());
        let single = json!({"isChargingReasons": "SMART_CHARGING_DELAY"});
        let cs = charge_state(single.as_object().unwrap());
        assert_eq!(cs.reasons, vec![ChargingReason::SmartChargingDelay]);
        assert!(!cs.is_manual_override());
        assert!(cs.reasons[0].is_smart_charging());
    }

    #[test]
    fn unknown_fields_and_wrong_nested_types_are_tolerated() {
        let mut v = full_vehicle();
        v["futureField"] = json!({"x": [1, 2]});
        v["chargeState"]["newThing"] = json!("x");
        v["location"] = json!("somewhere");
        v["smartChargingPolicy"] =
            json!({"isEnabled": true, "deadline": "8 o'clock", "mode": "ECO"});
        let got = vehicle(&v).unwrap();
        assert_eq!(got.location, None);
        let p = got.smart_charging_policy.unwrap();
        assert!(p.is_enabled);
        assert_eq!(p.deadline_utc, None);
        assert_eq!(got.charge_state.unwrap().battery_level, Some(38.0));
    }

    #[test]
    fn hostile_ids_and_strings_are_refused_or_clipped() {
        let long = "x".repeat(10 << 20);
        let list = json!([
            {"id": "a\nb"},
            {"id": long},
            {"id": "   "},
            {"id": "ok", "chargingLocationId": "evil\r\nline",
             "information": {"brand": long},
             "chargeState": {"isChargingReasons": vec!["R"; 10_000]}},
        ]);
        let vs = vehicles(&list).unwrap();
        assert_eq!(vs.len(), 1);
        assert_eq!(vs[0].id, "ok");
        assert_eq!(vs[0].charging_location_id, None);
        let brand = vs[0].information.as_ref().unwrap().brand.clone().unwrap();
        assert!(brand.len() <= limits::TEXT_MAX + 3, "{}", brand.len());
        assert_eq!(
            vs[0].charge_state.as_ref().unwrap().reasons.len(),
            MAX_STRINGS
        );
        assert_eq!(link_state(&json!({"linkState": long})), None);
    }

    #[test]
    fn ids_only_list_and_skipped_elements() {
        let list = json!([{"id": "a"}, {"id": "b", "chargeState": null}, {"noid": 1}, 42]);
        let vs = vehicles(&list).unwrap();
        assert_eq!(vs.len(), 2);
        assert_eq!(vs[0].id, "a");
        assert!(vs[0].charge_state.is_none());
        assert!(vs[1].charge_state.is_none());
        assert!(vehicles(&json!({"id": "a"})).is_none());
    }

    #[test]
    fn timestamps_despite_format_date() {
        let o = json!({
            "a": "2020-04-07T17:04:26.123+02:00",
            "b": "2020-04-07T17:04:26",
            "c": "2020-04-07",
            "d": "yesterday",
            "e": 1586279066
        });
        let o = o.as_object().unwrap();
        assert_eq!(
            date_time(o, "a"),
            Some(
                Utc.with_ymd_and_hms(2020, 4, 7, 15, 4, 26).unwrap()
                    + chrono::TimeDelta::milliseconds(123)
            )
        );
        assert_eq!(
            date_time(o, "b"),
            Some(Utc.with_ymd_and_hms(2020, 4, 7, 17, 4, 26).unwrap())
        );
        assert_eq!(
            date_time(o, "c"),
            Some(Utc.with_ymd_and_hms(2020, 4, 7, 0, 0, 0).unwrap())
        );
        assert_eq!(date_time(o, "d"), None);
        assert_eq!(date_time(o, "e"), None);
    }

    #[test]
    fn vendor_health_reads_leniently() {
        let v = json!([
            {"displayName": "Tesla", "status": "OUTAGE", "vendor": "TESLA"},
            {"displayName": "BMW", "status": "READY", "vendor": "BMW"},
            {"status": "ELEVATED_ERROR_RATE", "vendor": "AUDI", "extra": 1},
            {"status": "SOMETHING_NEW", "vendor": "KIA"},
            {"status": "OUTAGE"},
            {"vendor": "NISSAN"},
            "not an object"
        ]);
        let h = vendor_health(&v).unwrap();
        let got: Vec<(&str, &VendorStatus)> =
            h.iter().map(|h| (h.vendor.as_str(), &h.status)).collect();
        assert_eq!(
            got,
            [
                ("TESLA", &VendorStatus::Outage),
                ("BMW", &VendorStatus::Ready),
                ("AUDI", &VendorStatus::ElevatedErrorRate),
                ("KIA", &VendorStatus::Other("SOMETHING_NEW".into())),
            ]
        );
        assert!(vendor_health(&json!({"vendor": "TESLA"})).is_none());
    }

    #[test]
    fn me_and_locations_and_link_state() {
        let me = json!({"id": "u1", "linkedVendors": [
            {"vendor": "TESLA", "isValid": true},
            {"vendor": "ZEPPELIN", "isValid": false},
            {"isValid": true}
        ]});
        let u = user_info(&me).unwrap();
        assert_eq!(u.id, "u1");
        assert_eq!(u.linked_vendors.len(), 2);
        assert_eq!(u.linked_vendors[1].vendor, "ZEPPELIN");
        assert!(!u.linked_vendors[1].is_valid);

        let locs = json!([{"id": "l1", "name": "Home", "latitude": "59.9", "longitude": 10.7}, {"name": "x"}]);
        let l = charging_locations(&locs).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].latitude, Some(59.9));
        assert_eq!(l[0].name.as_deref(), Some("Home"));

        assert_eq!(
            link_state(&json!({"linkState": "ZjE2", "other": 1})).as_deref(),
            Some("ZjE2")
        );
        assert_eq!(link_state(&json!({"linkState": 5})).as_deref(), Some("5"));
        assert_eq!(link_state(&json!([])), None);
    }

    #[test]
    fn request_bodies_match_the_spec() {
        assert_eq!(
            serde_json::to_value(ChargingAction::from(ChargeAction::Stop)).unwrap(),
            json!({"action": "STOP"})
        );
        let p = SmartChargingPolicy {
            is_enabled: false,
            deadline_utc: NaiveTime::from_hms_opt(7, 5, 0),
        };
        assert_eq!(
            serde_json::to_value(SmartChargingPolicyBody::from(&p)).unwrap(),
            json!({"isEnabled": false, "deadline": "07:05"})
        );
        assert_eq!(
            serde_json::to_value(LinkUserOptions {
                vendor: Some("TESLA"),
                force_language: None
            })
            .unwrap(),
            json!({"vendor": "TESLA"})
        );
        assert_eq!(
            serde_json::to_value(WatchBody::new(&WatchProperty::AFTER_COMMAND)).unwrap(),
            json!({"properties": ["IS_CHARGING", "IS_CHARGING_REASONS", "BATTERY_LEVEL"]})
        );
    }
}
