//! What the simulator knows when it starts: OAuth clients, users, their
//! charging locations and vehicles, and the driver's scheduled actions.
//!
//! A scenario is plain data: tests build it in code (every type has public
//! fields and sensible defaults, and [`Scenario::generated`] makes thousands
//! of varied users), the binary reads it from TOML. Validation happens once,
//! before anything binds, so a typo in a scenario fails loudly.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The vendors the 1.3.10 `Vendor` enum allows.
pub const VENDORS: [&str; 7] = [
    "TESLA",
    "BMW",
    "AUDI",
    "VOLKSWAGEN",
    "HYUNDAI",
    "PEUGEOT",
    "NISSAN",
];

/// The built-in scenario, served when the binary gets no `--scenario`.
pub const BUILTIN_TOML: &str = include_str!("../scenarios/default.toml");

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// The file that was asked for.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not TOML of the scenario's shape.
    #[error("scenario is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// The TOML parsed but says something impossible.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// Everything the simulator starts with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Instant that offsets (`"+2h"`) count from; `None` means the clock's
    /// time when the simulator starts.
    pub start: Option<DateTime<Utc>>,
    /// Seed of the simulator's RNG: token values and rate-based faults are
    /// reproducible for a given seed.
    pub seed: u64,
    /// Lifetime of every access token issued, in seconds (Enode: 3600).
    pub access_token_lifetime_secs: u64,
    /// How refresh tokens behave.
    pub refresh: RefreshPolicy,
    /// OAuth clients allowed to use the simulator.
    pub clients: Vec<ClientSpec>,
    /// Users known to the simulator; they get tokens only by linking (or
    /// through `SimHandle::grant_tokens`).
    pub users: Vec<UserSpec>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            start: None,
            seed: 0,
            access_token_lifetime_secs: 3600,
            refresh: RefreshPolicy::default(),
            clients: vec![ClientSpec::default()],
            users: Vec::new(),
        }
    }
}

/// Refresh-token behaviour of the authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshPolicy {
    /// Every refresh returns a new refresh token and invalidates the old one.
    pub rotate: bool,
    /// Presenting an already rotated refresh token revokes the whole grant
    /// (every token of that user and client), as real servers do.
    pub revoke_on_replay: bool,
    /// A refresh also invalidates access tokens issued before it (strict
    /// servers do this; Enode's lets them run until they expire).
    pub revoke_previous_access_tokens: bool,
    /// Refresh tokens expire this many seconds after issue; `None`: never.
    pub lifetime_secs: Option<u64>,
    /// Rotation grace period in seconds, a property of the authorization
    /// server (Ory Hydra's `oauth2.grant.refresh_token.rotation_grace_period`,
    /// whose token endpoint paths `/oauth2/auth` and `/oauth2/token` Enode's
    /// are): a rotated refresh token stays usable for this long after its
    /// first use, and each use within it answers new tokens instead of
    /// revoking the grant. It lets a client that died between the server's
    /// rotation and storing the answer refresh again with the token it
    /// stored. `None` (the default): no grace, a replay revokes the grant.
    /// At most [`GRACE_MAX_SECS`], as Hydra caps it without a count limit.
    pub grace_secs: Option<u64>,
}

/// The longest rotation grace period accepted (Hydra's cap when no count
/// limit is configured: 5 minutes).
pub const GRACE_MAX_SECS: u64 = 300;

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            rotate: true,
            revoke_on_replay: true,
            revoke_previous_access_tokens: false,
            lifetime_secs: None,
            grace_secs: None,
        }
    }
}

/// An OAuth client registered with the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    /// The `client_id`.
    pub client_id: String,
    /// The `client_secret` (Basic auth or form body).
    pub client_secret: String,
    /// Redirect URIs the authorize endpoint accepts. A loopback `http` URI
    /// (127.0.0.1, [::1], localhost) matches any port (RFC 8252 7.3), so a
    /// test's callback listener on port 0 needs no registration.
    pub redirect_uris: Vec<String>,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            client_id: "smartcharged".into(),
            client_secret: "sim-secret".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
        }
    }
}

/// A user of the client's application, with their Enode data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user id the client links with (`POST /users/{userId}/link`).
    pub id: String,
    /// Charging locations (places where the user pays for power).
    #[serde(default)]
    pub locations: Vec<LocationSpec>,
    /// The user's vehicles, visible once linked.
    #[serde(default)]
    pub vehicles: Vec<VehicleSpec>,
}

impl UserSpec {
    /// A user with no locations and no vehicles.
    pub fn new(id: impl Into<String>) -> Self {
        UserSpec {
            id: id.into(),
            locations: Vec::new(),
            vehicles: Vec::new(),
        }
    }
}

/// A charging location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    /// Location id (unique in the scenario); vehicles refer to it.
    pub id: String,
    /// Display name.
    #[serde(default = "default_location_name")]
    pub name: String,
    /// Latitude in degrees.
    #[serde(default = "default_latitude")]
    pub latitude: f64,
    /// Longitude in degrees.
    #[serde(default = "default_longitude")]
    pub longitude: f64,
}

impl LocationSpec {
    /// A location called "Home" in Oslo.
    pub fn new(id: impl Into<String>) -> Self {
        LocationSpec {
            id: id.into(),
            name: default_location_name(),
            latitude: default_latitude(),
            longitude: default_longitude(),
        }
    }
}

fn default_location_name() -> String {
    "Home".into()
}
fn default_latitude() -> f64 {
    59.911491
}
fn default_longitude() -> f64 {
    10.757933
}

/// Where a vehicle is: at one of its user's charging locations or away.
pub const AWAY: &str = "away";

/// A vehicle and its state at the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VehicleSpec {
    /// Vehicle id (unique in the scenario).
    pub id: String,
    /// One of [`VENDORS`].
    pub vendor: String,
    /// Brand shown in `information`.
    pub brand: String,
    /// Model shown in `information`.
    pub model: String,
    /// Model year.
    pub year: i32,
    /// Usable battery capacity in kWh.
    pub capacity_kwh: f64,
    /// State of charge at the start, percent.
    pub soc: f64,
    /// Charge power in kW while charging (constant: no taper).
    pub charge_kw: f64,
    /// The vehicle's own charge limit, percent; charging stops there.
    pub charge_limit: f64,
    /// Location id, or `"away"`; `None` means the user's first location.
    pub location: Option<String>,
    /// Plugged in at the start.
    pub plugged_in: bool,
    /// Whether plugging in starts charging at once (what cars do by
    /// default) rather than waiting for a command.
    pub charge_on_plug_in: bool,
    /// Sends `batteryLevel` and `range` as numeric strings ("38.5"), a quirk
    /// of real payloads the client must tolerate.
    pub numeric_strings: bool,
    /// Odometer reading in km.
    pub odometer_km: f64,
    /// Enode's own smart charging for this vehicle.
    pub smart_charging: SmartChargingSpec,
    /// Things that happen to the vehicle later (driver and plug actions).
    pub events: Vec<EventSpec>,
}

impl Default for VehicleSpec {
    fn default() -> Self {
        VehicleSpec {
            id: String::new(),
            vendor: "TESLA".into(),
            brand: "Tesla".into(),
            model: "Model 3".into(),
            year: 2021,
            capacity_kwh: 75.0,
            soc: 40.0,
            charge_kw: 11.0,
            charge_limit: 80.0,
            location: None,
            plugged_in: true,
            charge_on_plug_in: true,
            numeric_strings: false,
            odometer_km: 24650.0,
            smart_charging: SmartChargingSpec::default(),
            events: Vec::new(),
        }
    }
}

impl VehicleSpec {
    /// A plugged-in Tesla Model 3 (75 kWh, 11 kW, 40 % of 80 %) at its
    /// user's first location.
    pub fn new(id: impl Into<String>) -> Self {
        VehicleSpec {
            id: id.into(),
            ..VehicleSpec::default()
        }
    }
}

/// Enode's smart-charging policy of a vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartChargingSpec {
    /// Whether Enode's smart charging is on. The simulator then holds
    /// charging off on plug-in (`SMART_CHARGING_DELAY`); it does not run
    /// Enode's own plan.
    pub enabled: bool,
    /// Deadline "HH:MM" in UTC.
    pub deadline: String,
}

impl Default for SmartChargingSpec {
    fn default() -> Self {
        SmartChargingSpec {
            enabled: false,
            deadline: "07:00".into(),
        }
    }
}

/// Something that happens to a vehicle at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When it happens.
    pub at: When,
    /// What happens.
    pub action: EventAction,
    /// Battery level (percent) the vehicle has at that moment, applied
    /// before the action (e.g. after a drive).
    #[serde(default)]
    pub soc: Option<f64>,
    /// For `arrive`: the location id arrived at.
    #[serde(default)]
    pub location: Option<String>,
}

impl EventSpec {
    /// An event with no battery or location change.
    pub fn new(at: When, action: EventAction) -> Self {
        EventSpec {
            at,
            action,
            soc: None,
            location: None,
        }
    }
}

/// The actions a scenario can schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// The cable goes in.
    PlugIn,
    /// The cable comes out; charging stops.
    Unplug,
    /// The driver starts charging by hand (`MANUALLY_STARTED`).
    Start,
    /// The driver stops charging by hand (`MANUALLY_STOPPED`).
    Stop,
    /// The vehicle arrives at `location`.
    Arrive,
    /// The vehicle drives away (and is unplugged).
    Leave,
    /// Only the `soc` of the event applies.
    SetSoc,
}

/// An instant in a scenario: RFC 3339 (`2024-03-01T18:00:00Z`) or an offset
/// from the scenario start (`+90m`, `+1h30m`, `+2d`, `-15m`, `+45s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum When {
    /// An absolute instant.
    At(DateTime<Utc>),
    /// An offset from the scenario start.
    After(TimeDelta),
}

impl When {
    /// An offset of `d` from the scenario start.
    pub fn after(d: std::time::Duration) -> Self {
        When::After(TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX))
    }

    /// The instant this denotes for a scenario starting at `origin`.
    pub fn resolve(&self, origin: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            When::At(t) => t,
            When::After(d) => origin + d,
        }
    }
}

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => {
                return DateTime::parse_from_rfc3339(s)
                    .map(|t| When::At(t.with_timezone(&Utc)))
                    .map_err(|e| {
                        format!("{s:?} is neither RFC 3339 nor an offset like +1h30m: {e}")
                    })
            }
        };
        let bad = || format!("bad offset {s:?}: expected e.g. +90m, +1h30m, +2d, -45s");
        let mut total = 0i64;
        let mut num = String::new();
        for c in rest.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i64 = num.parse().map_err(|_| bad())?;
            num.clear();
            total += n * match c {
                'd' => 86_400,
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
        }
        if !num.is_empty() {
            if total != 0 {
                return Err(bad());
            }
            // A bare number is seconds.
            total = num.parse().map_err(|_| bad())?;
        } else if rest.is_empty() {
            return Err(bad());
        }
        Ok(When::After(TimeDelta::seconds(sign * total)))
    }
}

impl TryFrom<String> for When {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<When> for String {
    fn from(w: When) -> String {
        w.to_string()
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::At(t) => write!(f, "{}", t.to_rfc3339()),
            When::After(d) => {
                let secs = d.num_seconds();
                let sign = if secs < 0 { '-' } else { '+' };
                write!(f, "{sign}{}s", secs.abs())
            }
        }
    }
}

impl Scenario {
    /// The built-in scenario (`scenarios/default.toml`).
    pub fn builtin() -> Scenario {
        Scenario::from_toml_str(BUILTIN_TOML).expect("built-in scenario is valid")
    }

    /// Parses and validates a TOML scenario.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a TOML scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_toml_str(&text)
    }

    /// Checks everything a typo could break, before anything binds.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.access_token_lifetime_secs == 0 {
            return bad("access_token_lifetime_secs must be > 0".into());
        }
        if self.refresh.lifetime_secs == Some(0) {
            return bad("refresh.lifetime_secs must be > 0".into());
        }
        if matches!(self.refresh.grace_secs, Some(g) if g == 0 || g > GRACE_MAX_SECS) {
            return bad(format!(
                "refresh.grace_secs must be in 1..={GRACE_MAX_SECS} (omit it for no grace)"
            ));
        }
        let mut ids = HashSet::new();
        for c in &self.clients {
            if c.client_id.is_empty() || c.client_secret.is_empty() {
                return bad("a client needs a client_id and a client_secret".into());
            }
            if !ids.insert(c.client_id.as_str()) {
                return bad(format!("client {:?} is listed twice", c.client_id));
            }
            for u in &c.redirect_uris {
                if let Err(e) = url::Url::parse(u) {
                    return bad(format!("client {:?}: redirect uri {u:?}: {e}", c.client_id));
                }
            }
        }
        let mut users = HashSet::new();
        let mut locations = HashSet::new();
        let mut vehicles = HashSet::new();
        for u in &self.users {
            if u.id.is_empty() {
                return bad("a user id must not be empty".into());
            }
            if !users.insert(u.id.as_str()) {
                return bad(format!("user {:?} is listed twice", u.id));
            }
            for l in &u.locations {
                if l.id.is_empty() || l.id == AWAY {
                    return bad(format!(
                        "user {:?}: location id {:?} is not allowed",
                        u.id, l.id
                    ));
                }
                if !locations.insert(l.id.as_str()) {
                    return bad(format!("location {:?} is listed twice", l.id));
                }
            }
            let own = |id: &str| id == AWAY || u.locations.iter().any(|l| l.id == id);
            for v in &u.vehicles {
                let ctx = format!("vehicle {:?}", v.id);
                if v.id.is_empty() {
                    return bad(format!("user {:?}: a vehicle id must not be empty", u.id));
                }
                if !vehicles.insert(v.id.as_str()) {
                    return bad(format!("{ctx} is listed twice"));
                }
                if !VENDORS.contains(&v.vendor.as_str()) {
                    return bad(format!(
                        "{ctx}: vendor {:?} is not one of {VENDORS:?}",
                        v.vendor
                    ));
                }
                if !(v.capacity_kwh > 0.0 && v.capacity_kwh.is_finite()) {
                    return bad(format!("{ctx}: capacity_kwh must be > 0"));
                }
                if !(v.charge_kw > 0.0 && v.charge_kw.is_finite()) {
                    return bad(format!("{ctx}: charge_kw must be > 0"));
                }
                for (name, p) in [("soc", v.soc), ("charge_limit", v.charge_limit)] {
                    if !(0.0..=100.0).contains(&p) {
                        return bad(format!("{ctx}: {name} must be within 0..=100"));
                    }
                }
                if let Some(l) = &v.location {
                    if !own(l) {
                        return bad(format!("{ctx}: location {l:?} is not one of the user's"));
                    }
                }
                if !valid_deadline(&v.smart_charging.deadline) {
                    return bad(format!(
                        "{ctx}: smart_charging.deadline {:?} is not HH:MM",
                        v.smart_charging.deadline
                    ));
                }
                for e in &v.events {
                    if let Some(s) = e.soc {
                        if !(0.0..=100.0).contains(&s) {
                            return bad(format!("{ctx}: event soc must be within 0..=100"));
                        }
                    }
                    match (e.action, &e.location) {
                        (EventAction::Arrive, None) => {
                            return bad(format!("{ctx}: an arrive event needs a location"))
                        }
                        (EventAction::Arrive, Some(l)) if !own(l) => {
                            return bad(format!("{ctx}: location {l:?} is not one of the user's"))
                        }
                        (EventAction::SetSoc, _) if e.soc.is_none() => {
                            return bad(format!("{ctx}: a set_soc event needs a soc"))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `s` is an "HH:MM" time of day on a 24 h clock.
pub(crate) fn valid_deadline(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
        && s[..2].parse::<u32>().is_ok_and(|h| h < 24)
        && s[3..].parse::<u32>().is_ok_and(|m| m < 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scenario_is_valid() {
        let s = Scenario::builtin();
        assert!(!s.users.is_empty());
        assert!(!s.clients.is_empty());
    }

    #[test]
    fn offsets_and_instants_parse() {
        assert_eq!("+90m".parse(), Ok(When::After(TimeDelta::minutes(90))));
        assert_eq!("+1h30m".parse(), Ok(When::After(TimeDelta::minutes(90))));
        assert_eq!("-45s".parse(), Ok(When::After(TimeDelta::seconds(-45))));
        assert_eq!("+2d".parse(), Ok(When::After(TimeDelta::days(2))));
        assert_eq!("+30".parse(), Ok(When::After(TimeDelta::seconds(30))));
        assert!(matches!("2024-03-01T18:00:00Z".parse(), Ok(When::At(_))));
        assert!("+1x".parse::<When>().is_err());
        assert!("+".parse::<When>().is_err());
        assert!("tomorrow".parse::<When>().is_err());
    }

    #[test]
    fn deadlines_are_checked() {
        assert!(valid_deadline("07:00"));
        assert!(valid_deadline("23:59"));
        assert!(!valid_deadline("24:00"));
        assert!(!valid_deadline("7:00"));
        assert!(!valid_deadline("07:60"));
    }

    #[test]
    fn unknown_keys_and_bad_references_are_refused() {
        let e = Scenario::from_toml_str("sed = 1").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = Scenario::from_toml_str(
            "[[users]]\nid = \"a\"\n[[users.vehicles]]\nid = \"v\"\nlocation = \"nowhere\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("nowhere"), "{e}");
    }

    #[test]
    fn generated_scenarios_are_valid_and_reproducible() {
        let a = Scenario::generated(50, 2, 7);
        a.validate().unwrap();
        assert_eq!(a.users.len(), 50);
        assert_eq!(a.users[0].vehicles.len(), 2);
        let b = Scenario::generated(50, 2, 7);
        assert_eq!(a.users, b.users);
        assert_ne!(a.users, Scenario::generated(50, 2, 8).users);
    }
}
