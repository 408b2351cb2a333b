//! Domain types the daemon speaks: vehicles, their charge state, policies,
//! locations, tokens.
//!
//! These are deliberately not Enode's JSON (invariant 2): `src/enode/dto.rs`
//! reads the lenient wire format and converts into these, so the poller,
//! planner glue and controller never see a numeric string or a misspelt enum.
//! Values the API may omit are `Option`s: "unknown" must stay distinguishable
//! from "false" or "zero" when deciding whether to send a command.

use std::fmt;

use chrono::{DateTime, NaiveTime, Utc};

use crate::secret::Secret;

/// A vehicle as last reported by Enode, with the parts asked for.
///
/// `GET /vehicles` returns ids only unless fields are requested, so every
/// part except `id` is optional: `None` means "not asked for or not sent".
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    /// Enode's vehicle id.
    pub id: String,
    /// Make, model and year, when `information` was requested.
    pub information: Option<VehicleInformation>,
    /// Battery and charging state, when `chargeState` was requested.
    pub charge_state: Option<ChargeState>,
    /// Enode's own smart-charging policy, when `smartChargingPolicy` was requested.
    pub smart_charging_policy: Option<SmartChargingPolicy>,
    /// GPS position, when `location` was requested.
    pub location: Option<Location>,
    /// Odometer reading, when `odometer` was requested.
    pub odometer: Option<Odometer>,
    /// The charging location the vehicle is at, if any: control only happens
    /// at a location the user pays for.
    pub charging_location_id: Option<String>,
    /// Whether Enode can currently reach the vehicle.
    pub is_reachable: Option<bool>,
    /// Last successful contact between Enode and the vehicle.
    pub last_seen: Option<DateTime<Utc>>,
}

/// Descriptive information about a vehicle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VehicleInformation {
    /// Vendor-side id of the vehicle (not Enode's id).
    pub id: Option<String>,
    /// Brand, e.g. "Tesla".
    pub brand: Option<String>,
    /// Model, e.g. "Model S P85".
    pub model: Option<String>,
    /// Model year.
    pub year: Option<i32>,
}

/// Battery and charging state of a vehicle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChargeState {
    /// State of charge in percent (0-100).
    pub battery_level: Option<f64>,
    /// Usable physical capacity in kWh (degrades slowly over the years).
    pub battery_capacity_kwh: Option<f64>,
    /// The vehicle's own charge limit in percent; plans never go beyond it.
    pub charge_limit: Option<f64>,
    /// Current charge power in kW; Enode sends it only while charging.
    pub charge_rate_kw: Option<f64>,
    /// Minutes until the current charging intent completes; only while charging.
    pub charge_time_remaining_min: Option<f64>,
    /// Whether the vehicle is charging right now.
    pub is_charging: Option<bool>,
    /// Whether a cable is connected, charging or not.
    pub is_plugged_in: Option<bool>,
    /// Why the vehicle is or is not charging (free strings on the wire).
    pub reasons: Vec<ChargingReason>,
    /// Estimated remaining range in km.
    pub range_km: Option<f64>,
}

impl ChargeState {
    /// Whether the driver started or stopped charging by hand: the controller
    /// then leaves the vehicle alone until it is unplugged.
    pub fn is_manual_override(&self) -> bool {
        self.reasons.iter().any(ChargingReason::is_manual)
    }
}

/// Why a vehicle is or is not charging (`isChargingReasons`).
///
/// The spec's enum is malformed, so values arrive as free strings; unknown
/// ones are kept verbatim in [`ChargingReason::Other`] rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChargingReason {
    /// Not controlled by anyone.
    Default,
    /// No cable connected.
    NotPluggedIn,
    /// At the charge limit.
    FullyCharged,
    /// The driver (or a command) stopped charging.
    ManuallyStopped,
    /// Enode's smart charging is waiting for a cheaper window.
    SmartChargingDelay,
    /// The driver (or a command) started charging.
    ManuallyStarted,
    /// Enode's smart charging is charging now.
    SmartChargingActive,
    /// Enode's smart charging is charging to meet its deadline.
    SmartChargingDeadline,
    /// A value this version does not know, verbatim.
    Other(String),
}

impl ChargingReason {
    /// Maps a wire value; never fails.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "DEFAULT" => ChargingReason::Default,
            "NOT_PLUGGED_IN" => ChargingReason::NotPluggedIn,
            "FULLY_CHARGED" => ChargingReason::FullyCharged,
            "MANUALLY_STOPPED" => ChargingReason::ManuallyStopped,
            "SMART_CHARGING_DELAY" => ChargingReason::SmartChargingDelay,
            "MANUALLY_STARTED" => ChargingReason::ManuallyStarted,
            "SMART_CHARGING_ACTIVE" => ChargingReason::SmartChargingActive,
            "SMART_CHARGING_DEADLINE" => ChargingReason::SmartChargingDeadline,
            _ => ChargingReason::Other(s.to_string()),
        }
    }

    /// The wire spelling, for logs.
    pub fn as_str(&self) -> &str {
        match self {
            ChargingReason::Default => "DEFAULT",
            ChargingReason::NotPluggedIn => "NOT_PLUGGED_IN",
            ChargingReason::FullyCharged => "FULLY_CHARGED",
            ChargingReason::ManuallyStopped => "MANUALLY_STOPPED",
            ChargingReason::SmartChargingDelay => "SMART_CHARGING_DELAY",
            ChargingReason::ManuallyStarted => "MANUALLY_STARTED",
            ChargingReason::SmartChargingActive => "SMART_CHARGING_ACTIVE",
            ChargingReason::SmartChargingDeadline => "SMART_CHARGING_DEADLINE",
            ChargingReason::Other(s) => s,
        }
    }

    /// Whether this reason says a person (or a START/STOP command) decided.
    pub fn is_manual(&self) -> bool {
        matches!(
            self,
            ChargingReason::ManuallyStarted | ChargingReason::ManuallyStopped
        )
    }

    /// Whether Enode's own smart charging is in control.
    pub fn is_smart_charging(&self) -> bool {
        matches!(
            self,
            ChargingReason::SmartChargingDelay
                | ChargingReason::SmartChargingActive
                | ChargingReason::SmartChargingDeadline
        )
    }
}

impl fmt::Display for ChargingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Enode's own smart-charging settings for a vehicle. Ours and Enode's must
/// not fight, so the daemon reads this and only controls a vehicle with it
/// disabled (or disables it when configured to take over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartChargingPolicy {
    /// Whether Enode's smart charging is on. A policy object without the
    /// field reads as disabled.
    pub is_enabled: bool,
    /// Time of day, in UTC, by which Enode aims to have the vehicle charged.
    pub deadline_utc: Option<NaiveTime>,
}

/// A GPS position with its timestamp.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// When the position was measured.
    pub last_updated: Option<DateTime<Utc>>,
}

/// An odometer reading.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Odometer {
    /// Distance driven in km.
    pub distance_km: Option<f64>,
    /// When it was read.
    pub last_updated: Option<DateTime<Utc>>,
}

/// A place where the user pays for the power; smart charging applies only there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChargingLocation {
    /// Enode's charging-location id (matches `Vehicle::charging_location_id`).
    pub id: String,
    /// The user's name for it, e.g. "Home".
    pub name: Option<String>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
}

/// A charging command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeAction {
    /// Start charging (overrides Enode's smart charging until full).
    Start,
    /// Stop charging (holds for Enode's whole smart-charging cycle).
    Stop,
}

impl ChargeAction {
    /// The wire and log spelling: `START` or `STOP`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeAction::Start => "START",
            ChargeAction::Stop => "STOP",
        }
    }
}

impl fmt::Display for ChargeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which optional parts of a vehicle to fetch (`field[]` query values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VehicleField {
    /// `chargeState`.
    ChargeState,
    /// `smartChargingPolicy`.
    SmartChargingPolicy,
    /// `location`.
    Location,
    /// `information`.
    Information,
    /// `odometer`.
    Odometer,
}

impl VehicleField {
    /// What the poller asks for in its one `GET /vehicles` per user per round.
    pub const POLL: [VehicleField; 4] = [
        VehicleField::ChargeState,
        VehicleField::SmartChargingPolicy,
        VehicleField::Location,
        VehicleField::Information,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleField::ChargeState => "chargeState",
            VehicleField::SmartChargingPolicy => "smartChargingPolicy",
            VehicleField::Location => "location",
            VehicleField::Information => "information",
            VehicleField::Odometer => "odometer",
        }
    }
}

/// A vehicle property to watch closely for a while after a command
/// (`POST /vehicles/{id}/watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchProperty {
    /// `BATTERY_LEVEL`.
    BatteryLevel,
    /// `RANGE`.
    Range,
    /// `IS_PLUGGED_IN`.
    IsPluggedIn,
    /// `IS_CHARGING`.
    IsCharging,
    /// `IS_CHARGING_REASONS`.
    IsChargingReasons,
    /// `LOCATION`.
    Location,
}

impl WatchProperty {
    /// What to watch after a START/STOP to see it take effect.
    pub const AFTER_COMMAND: [WatchProperty; 3] = [
        WatchProperty::IsCharging,
        WatchProperty::IsChargingReasons,
        WatchProperty::BatteryLevel,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchProperty::BatteryLevel => "BATTERY_LEVEL",
            WatchProperty::Range => "RANGE",
            WatchProperty::IsPluggedIn => "IS_PLUGGED_IN",
            WatchProperty::IsCharging => "IS_CHARGING",
            WatchProperty::IsChargingReasons => "IS_CHARGING_REASONS",
            WatchProperty::Location => "LOCATION",
        }
    }
}

/// The user behind an access token (`GET /me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user id our side chose when linking.
    pub id: String,
    /// Vendors the user linked, with whether their credentials still work.
    pub linked_vendors: Vec<LinkedVendor>,
}

/// A vendor account linked by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedVendor {
    /// Vendor name as Enode spells it (e.g. `TESLA`); unknown vendors are kept.
    pub vendor: String,
    /// False when the vendor credential became invalid: the user must relink.
    /// Missing on the wire reads as valid.
    pub is_valid: bool,
}

/// How Enode reports one vendor's service (`GET /health/vendors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorHealth {
    /// Vendor name as Enode spells it (e.g. `TESLA`).
    pub vendor: String,
    /// Its status.
    pub status: VendorStatus,
}

/// A vendor's status. Only [`VendorStatus::Outage`] pauses the daemon's
/// requests for that vendor's users: an elevated error rate still lets
/// most requests through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorStatus {
    /// Operating nominally.
    Ready,
    /// More errors than usual.
    ElevatedErrorRate,
    /// Down: requests for its vehicles fail.
    Outage,
    /// A value this version does not know (clipped), treated as up.
    Other(String),
}

impl VendorStatus {
    /// Reads Enode's spelling; unknown values are kept, not refused.
    pub fn parse(s: &str) -> Self {
        match s {
            "READY" => VendorStatus::Ready,
            "ELEVATED_ERROR_RATE" => VendorStatus::ElevatedErrorRate,
            "OUTAGE" => VendorStatus::Outage,
            other => VendorStatus::Other(crate::limits::clip(other)),
        }
    }
}

/// A user's OAuth2 tokens. The token keeper owns these; API calls borrow the
/// access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// Bearer token for user calls.
    pub access_token: Secret,
    /// Token to get the next access token (needs `offline_access`). Rotated on
    /// every refresh: the new one must be stored before it is used.
    pub refresh_token: Option<Secret>,
    /// When the access token expires, computed from `expires_in` and the
    /// daemon's clock at the moment the answer arrived.
    pub expires_at: DateTime<Utc>,
    /// Scopes granted (the requested ones when the server did not say).
    pub scopes: Vec<String>,
}

/// The parts of a [`Vehicle`] a webhook update can carry, one bit each.
///
/// Enode's `user:vehicle:updated` sends only the fields that changed, so an
/// update is a partial vehicle plus the set of fields it really holds: a
/// field it does not name keeps its last known value, a field it names as
/// `null` becomes unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u32);

/// One part of a vehicle that is merged (and timestamped) on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum VehiclePart {
    /// `chargeState.batteryLevel`
    BatteryLevel,
    /// `chargeState.batteryCapacity`
    BatteryCapacity,
    /// `chargeState.chargeLimit`
    ChargeLimit,
    /// `chargeState.chargeRate`
    ChargeRate,
    /// `chargeState.chargeTimeRemaining`
    ChargeTimeRemaining,
    /// `chargeState.isCharging`
    IsCharging,
    /// `chargeState.isPluggedIn`
    IsPluggedIn,
    /// `chargeState.isChargingReasons`
    Reasons,
    /// `chargeState.range`
    Range,
    /// `chargingLocationId`
    ChargingLocationId,
    /// `isReachable`
    IsReachable,
    /// `lastSeen`
    LastSeen,
    /// `smartChargingPolicy` (as a whole)
    SmartChargingPolicy,
    /// `information` (as a whole)
    Information,
    /// `location` (as a whole)
    Location,
    /// `odometer` (as a whole)
    Odometer,
}

impl VehiclePart {
    /// Every part, in bit order.
    pub const ALL: [VehiclePart; 16] = [
        VehiclePart::BatteryLevel,
        VehiclePart::BatteryCapacity,
        VehiclePart::ChargeLimit,
        VehiclePart::ChargeRate,
        VehiclePart::ChargeTimeRemaining,
        VehiclePart::IsCharging,
        VehiclePart::IsPluggedIn,
        VehiclePart::Reasons,
        VehiclePart::Range,
        VehiclePart::ChargingLocationId,
        VehiclePart::IsReachable,
        VehiclePart::LastSeen,
        VehiclePart::SmartChargingPolicy,
        VehiclePart::Information,
        VehiclePart::Location,
        VehiclePart::Odometer,
    ];

    /// Copies this part from `from` into `to`.
    fn copy(self, from: &Vehicle, to: &mut Vehicle) {
        let cs = |v: &Vehicle| v.charge_state.clone().unwrap_or_default();
        let src = cs(from);
        let dst = to.charge_state.get_or_insert_with(ChargeState::default);
        match self {
            VehiclePart::BatteryLevel => dst.battery_level = src.battery_level,
            VehiclePart::BatteryCapacity => dst.battery_capacity_kwh = src.battery_capacity_kwh,
            VehiclePart::ChargeLimit => dst.charge_limit = src.charge_limit,
            VehiclePart::ChargeRate => dst.charge_rate_kw = src.charge_rate_kw,
            VehiclePart::ChargeTimeRemaining => {
                dst.charge_time_remaining_min = src.charge_time_remaining_min
            }
            VehiclePart::IsCharging => dst.is_charging = src.is_charging,
            VehiclePart::IsPluggedIn => dst.is_plugged_in = src.is_plugged_in,
            VehiclePart::Reasons => dst.reasons = src.reasons,
            VehiclePart::Range => dst.range_km = src.range_km,
            VehiclePart::ChargingLocationId => {
                to.charging_location_id = from.charging_location_id.clone()
            }
            VehiclePart::IsReachable => to.is_reachable = from.is_reachable,
            VehiclePart::LastSeen => to.last_seen = from.last_seen,
            VehiclePart::SmartChargingPolicy => {
                to.smart_charging_policy = from.smart_charging_policy.clone()
            }
            VehiclePart::Information => to.information = from.information.clone(),
            VehiclePart::Location => to.location = from.location.clone(),
            VehiclePart::Odometer => to.odometer = from.odometer.clone(),
        }
    }
}

impl FieldSet {
    /// Every part: what a poll or a `discovered` event reports.
    pub const ALL: FieldSet = FieldSet((1 << VehiclePart::ALL.len()) - 1);

    /// Adds a part.
    pub fn insert(&mut self, p: VehiclePart) {
        self.0 |= 1 << p as u8;
    }

    /// Whether the set holds `p`.
    pub fn contains(self, p: VehiclePart) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A partial vehicle from a webhook: the values of the parts in `present`
/// (every other part of `vehicle` is meaningless).
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleUpdate {
    /// The vehicle id and the reported values.
    pub vehicle: Vehicle,
    /// Which parts the update reports.
    pub present: FieldSet,
}

/// What the daemon knows of a vehicle, and when each part was last
/// reported: a part is overwritten only by a report at least as new, so
/// webhook deliveries that arrive out of order, and a poll racing them,
/// leave the newest value of each part whatever the order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedVehicle {
    /// The merged vehicle.
    pub vehicle: Vehicle,
    /// When each part (by [`VehiclePart`] bit) was reported.
    stamps: [Option<DateTime<Utc>>; 16],
}

impl TrackedVehicle {
    /// A vehicle known only by its id.
    pub fn new(id: &str) -> Self {
        TrackedVehicle {
            vehicle: Vehicle {
                id: id.to_owned(),
                information: None,
                charge_state: None,
                smart_charging_policy: None,
                location: None,
                odometer: None,
                charging_location_id: None,
                is_reachable: None,
                last_seen: None,
            },
            stamps: [None; 16],
        }
    }

    /// Merges the parts of `update` reported at `at`; returns whether any
    /// part changed value. A part reported earlier than the one held is
    /// ignored.
    pub fn merge(&mut self, update: &VehicleUpdate, at: DateTime<Utc>) -> bool {
        let before = self.vehicle.clone();
        for p in VehiclePart::ALL {
            if !update.present.contains(p) {
                continue;
            }
            let stamp = &mut self.stamps[p as usize];
            if stamp.is_some_and(|s| s > at) {
                continue;
            }
            *stamp = Some(at);
            p.copy(&update.vehicle, &mut self.vehicle);
        }
        self.vehicle != before
    }

    /// When the newest part was reported.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.stamps.iter().flatten().max().copied()
    }
}

/// A vehicle event pushed by Enode (a webhook), in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleEvent {
    /// The user the vehicle belongs to (Enode's user id, as sent).
    pub user: String,
    /// When Enode created the event.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: VehicleEventKind,
}

/// What a [`VehicleEvent`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum VehicleEventKind {
    /// Some parts of a vehicle changed (`user:vehicle:updated`).
    Updated(VehicleUpdate),
    /// A vehicle appeared, whole (`user:vehicle:discovered`).
    Discovered(VehicleUpdate),
    /// A vehicle is gone (`user:vehicle:deleted`).
    Deleted(String),
}

/// One event of a webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// A vehicle event for the fleet (boxed: it is large, the others small).
    Vehicle(Box<VehicleEvent>),
    /// Enode's test event (`enode:firehose:test`), sent on request.
    Test,
    /// An event this version does not act on, by name (clipped).
    Ignored(String),
}
