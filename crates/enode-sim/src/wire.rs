//! The API's JSON, written from `enode-openapi-1.3.10.yaml` and nothing
//! else (the daemon's client has its own types: a field it misreads cannot
//! hide behind a shared definition).
//!
//! A few fields that 1.3.10 does not declare are sent on purpose
//! (`vendor`, `powerDeliveryState`, `lastUpdated` in `Charge_State`): real
//! payloads carry such additions and a client must ignore them.

use serde::{Deserialize, Serialize};

/// A number that real payloads sometimes send as a numeric string.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Numeric {
    /// `38.5`
    Number(f64),
    /// `"38.5"`
    Text(String),
}

impl Numeric {
    /// `x` rounded to one decimal, as a number or a string.
    pub fn new(x: f64, as_string: bool) -> Numeric {
        let x = (x * 10.0).round() / 10.0;
        if as_string {
            Numeric::Text(format!("{x:.1}"))
        } else {
            Numeric::Number(x)
        }
    }
}

/// `Charge_State`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChargeState {
    /// kWh.
    pub battery_capacity: f64,
    /// Percent (number or numeric string).
    pub battery_level: Numeric,
    /// Percent.
    pub charge_limit: f64,
    /// kW; null unless charging.
    pub charge_rate: Option<f64>,
    /// Minutes; null unless charging.
    pub charge_time_remaining: Option<i64>,
    /// Charging now.
    pub is_charging: bool,
    /// Free strings from the spec's description.
    pub is_charging_reasons: Vec<&'static str>,
    /// Cable connected.
    pub is_plugged_in: bool,
    /// km (number or numeric string).
    pub range: Numeric,
    /// Not in 1.3.10: a later API's field, sent to prove it is ignored.
    pub power_delivery_state: &'static str,
    /// Not in 1.3.10 for Charge_State.
    pub last_updated: String,
}

/// `Vehicle_Smart_Charging_Policy` as sent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SmartChargingPolicy {
    /// "HH:MM" UTC.
    pub deadline: String,
    /// Enabled.
    pub is_enabled: bool,
}

/// `Vehicle_Smart_Charging_Policy` as received by PUT (both optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SmartChargingPolicyUpdate {
    /// New deadline.
    pub deadline: Option<String>,
    /// New enabled flag.
    pub is_enabled: Option<bool>,
}

/// `Vehicle_Location`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VehicleLocation {
    /// ISO 8601 date-time.
    pub last_updated: String,
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
}

/// `Vehicle_Information`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VehicleInformation {
    /// Vehicle id.
    pub id: String,
    /// Brand.
    pub brand: String,
    /// Model.
    pub model: String,
    /// Model year.
    pub year: i32,
}

/// `Vehicle_Odometer`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VehicleOdometer {
    /// km.
    pub distance: f64,
    /// ISO 8601 date-time.
    pub last_updated: String,
}

/// `Vehicle`: without `field[]` only `id`; with fields, the top-level
/// properties and the asked-for objects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Vehicle {
    /// Vehicle id.
    pub id: String,
    /// Top-level properties, present when any field was asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub base: Option<VehicleBase>,
    /// `field[]=chargeState`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_state: Option<ChargeState>,
    /// `field[]=smartChargingPolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart_charging_policy: Option<SmartChargingPolicy>,
    /// `field[]=location`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<VehicleLocation>,
    /// `field[]=information`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub information: Option<VehicleInformation>,
    /// `field[]=odometer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub odometer: Option<VehicleOdometer>,
}

/// The plain properties of `Vehicle`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VehicleBase {
    /// Reachable by the vendor's cloud.
    pub is_reachable: bool,
    /// ISO 8601 date-time.
    pub last_seen: String,
    /// Charging location the vehicle is at; null when away.
    pub charging_location_id: Option<String>,
    /// Not in 1.3.10's Vehicle: sent to prove unknown fields are ignored.
    pub vendor: String,
}

/// `Vehicle_Charging_Action`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChargingAction {
    /// "START" or "STOP".
    pub action: String,
}

/// `Link_User_Options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LinkUserOptions {
    /// Vendor enum value.
    pub vendor: Option<String>,
    /// BCP 47 language code (accepted, unused).
    #[allow(dead_code)]
    pub force_language: Option<String>,
    /// Several vendors in one session (accepted, unused).
    #[allow(dead_code)]
    pub link_multiple: Option<bool>,
}

/// `Link_User_Response`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LinkUserResponse {
    /// The OAuth `state` for this link session.
    pub link_state: String,
}

/// `Model2` (one entry of `GET /health/vendors`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VendorHealth {
    /// Name to show.
    pub display_name: String,
    /// `READY`, `ELEVATED_ERROR_RATE` or `OUTAGE`.
    pub status: String,
    /// Vendor enum value.
    pub vendor: String,
}

/// `Linked_Vendor`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LinkedVendor {
    /// Vendor enum value.
    pub vendor: String,
    /// The vendor credential still works.
    pub is_valid: bool,
}

/// `Model1` (GET /me).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    /// User id.
    pub id: String,
    /// Linked vendors.
    pub linked_vendors: Vec<LinkedVendor>,
}

/// `Charging_Location`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChargingLocation {
    /// Location id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
}

/// `Start_Vehicle_Watch_Payload`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WatchPayload {
    /// Properties to watch.
    #[serde(default)]
    pub properties: Vec<String>,
}
