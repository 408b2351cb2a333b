//! The simulator's whole mutable world behind one mutex: clients, users,
//! vehicles, grants, link sessions, codes, faults and counters.
//!
//! Every operation here is O(1) or O(vehicles of one user): load tests push
//! millions of requests through one lock.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::faults::{AuthorizeError, Faults, Injected, Target};
use crate::problem::Problem;
use crate::scenario::{EventAction, LocationSpec, RefreshPolicy, Scenario, ScenarioError, AWAY};
use crate::stats::{Recorder, ViolationKind};
use crate::tokens::{self, Kind, Scopes};
use crate::vehicle::{Action, Reason, Timed, Vehicle};

/// A token answer: what `POST /oauth2/token` returns and what
/// `SimHandle::grant_tokens` hands a load test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// Bearer access token.
    pub access_token: String,
    /// Always "bearer".
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Refresh token, when the grant has `offline_access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated (absent for client tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A registered OAuth client.
#[derive(Debug)]
pub(crate) struct Client {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// A user known to the simulator.
#[derive(Debug)]
pub(crate) struct User {
    /// Whether the user exists on the Enode side (linked at least once and
    /// not deleted since).
    pub linked: bool,
    /// Vendor chosen at link time.
    pub vendor: Option<String>,
    /// Ids of the user's vehicles.
    pub vehicles: Vec<String>,
    /// The user's charging locations.
    pub locations: Vec<LocationSpec>,
    /// Grants issued to the user (revoked ones are dropped from the list).
    pub grants: Vec<u64>,
}

/// An authorization grant: one user's consent to one client. Refreshes
/// rotate tokens within it; revoking it kills all of them.
#[derive(Debug)]
pub(crate) struct Grant {
    /// The user.
    pub user: String,
    /// The client's index.
    pub client: usize,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Sequence number of the one valid refresh token.
    pub refresh_seq: u32,
    /// Generation of the newest access tokens.
    pub access_gen: u32,
    /// Revoked: every token of it is dead.
    pub revoked: bool,
    /// The latest rotations: `(sequence of the refresh token used, when it
    /// was first used)`, newest last, at most [`USED_KEPT`]. Serves the
    /// grace period and [`crate::SimHandle::refresh_token_info`].
    pub used: VecDeque<(u32, DateTime<Utc>)>,
}

/// How many rotations a grant remembers (bounded: a grant lives for years).
pub(crate) const USED_KEPT: usize = 8;

/// A link session from `POST /users/{userId}/link`.
#[derive(Debug)]
pub(crate) struct LinkSession {
    /// The user being linked.
    pub user: String,
    /// When the linkState stops being accepted.
    pub expires: DateTime<Utc>,
    /// Consumed by the authorize endpoint already.
    pub used: bool,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug)]
pub(crate) struct AuthCode {
    /// The user who consented.
    pub user: String,
    /// The client it was issued to.
    pub client: usize,
    /// The redirect_uri of the authorization request.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// PKCE S256 challenge, if one was given.
    pub challenge: Option<String>,
    /// When the code expires.
    pub expires: DateTime<Utc>,
    /// The grant it was exchanged for; a second exchange revokes it.
    pub grant: Option<u64>,
}

/// Who is calling the API.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// A client token.
    Client(usize),
    /// A user token.
    User {
        /// The user id.
        user: String,
    },
}

impl Caller {
    /// The user id, for user tokens.
    pub fn user(&self) -> Option<&str> {
        match self {
            Caller::User { user } => Some(user),
            Caller::Client(_) => None,
        }
    }
}

/// Which token an endpoint wants.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// A client credentials token.
    Client,
    /// A user token with `all` or any of these scopes (empty: any scope).
    User(Scopes),
}

/// The outcome of admitting an API request.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Who called.
    pub caller: Caller,
    /// Fault delay to wait before answering.
    pub latency: Duration,
    /// Fault error to answer instead.
    pub error: Option<Injected>,
}

/// How long a linkState is accepted.
const LINK_STATE_TTL: TimeDelta = TimeDelta::hours(1);
/// How long an authorization code is accepted.
const CODE_TTL: TimeDelta = TimeDelta::minutes(10);

/// The simulator's state.
#[derive(Debug)]
pub(crate) struct State {
    /// Instant scenario offsets count from.
    pub origin: DateTime<Utc>,
    /// Seeded RNG for token nonces and rate faults.
    pub rng: StdRng,
    /// Key authenticating token values.
    pub(crate) key: [u8; 32],
    /// Lifetime of new access tokens.
    pub access_lifetime: TimeDelta,
    /// Refresh-token behaviour.
    pub refresh: RefreshPolicy,
    /// Registered clients, by index.
    pub clients: Vec<Client>,
    /// Users by id.
    pub users: HashMap<String, User>,
    /// Vehicles by id.
    pub vehicles: HashMap<String, Vehicle>,
    /// Grants by id (the index).
    pub grants: Vec<Grant>,
    /// Link sessions by linkState.
    pub link_states: HashMap<String, LinkSession>,
    /// Authorization codes by value.
    pub codes: HashMap<String, AuthCode>,
    /// Fault rules.
    pub faults: Faults,
    /// When set, the authorize endpoint answers with this error.
    pub authorize_error: Option<AuthorizeError>,
    /// Vendor statuses `GET /health/vendors` reports other than `READY`,
    /// by vendor (a test lever: `SimHandle::set_vendor_status`).
    pub vendor_status: std::collections::BTreeMap<String, String>,
    /// Counters.
    pub stats: Recorder,
    /// Per user: no request before this instant (last Retry-After given).
    retry_user: HashMap<String, DateTime<Utc>>,
    /// Per client: the same for client tokens.
    retry_client: Vec<Option<DateTime<Utc>>>,
}

impl State {
    /// Builds the world of `scenario` at clock time `now`.
    pub fn new(scenario: Scenario, now: DateTime<Utc>) -> Result<State, ScenarioError> {
        scenario.validate()?;
        let origin = scenario.start.unwrap_or(now);
        let mut rng = StdRng::seed_from_u64(scenario.seed);
        let key: [u8; 32] = rng.gen();
        let clients: Vec<Client> = scenario
            .clients
            .into_iter()
            .map(|c| Client {
                id: c.client_id,
                secret: c.client_secret,
                redirect_uris: c.redirect_uris,
            })
            .collect();
        let mut users = HashMap::new();
        let mut vehicles = HashMap::new();
        for u in scenario.users {
            let first = u.locations.first().map(|l| l.id.clone());
            let mut ids = Vec::new();
            for v in u.vehicles {
                let location = match v.location.as_deref() {
                    Some(AWAY) => None,
                    Some(l) => Some(l.to_string()),
                    None => first.clone(),
                };
                let mut events: Vec<Timed> = v
                    .events
                    .iter()
                    .map(|e| {
                        let mut actions = Vec::new();
                        if let Some(s) = e.soc {
                            actions.push(Action::SetSoc(s));
                        }
                        match e.action {
                            EventAction::PlugIn => actions.push(Action::PlugIn),
                            EventAction::Unplug => actions.push(Action::Unplug),
                            EventAction::Start => actions.push(Action::DriverStart),
                            EventAction::Stop => actions.push(Action::DriverStop),
                            EventAction::Arrive => actions
                                .push(Action::MoveTo(e.location.clone().filter(|l| l != AWAY))),
                            EventAction::Leave => actions.push(Action::MoveTo(None)),
                            EventAction::SetSoc => {}
                        }
                        Timed {
                            at: e.at.resolve(origin),
                            actions,
                        }
                    })
                    .collect();
                events.sort_by_key(|e| e.at);
                let policy = v.smart_charging.enabled;
                ids.push(v.id.clone());
                vehicles.insert(
                    v.id.clone(),
                    Vehicle {
                        id: v.id,
                        user: u.id.clone(),
                        vendor: v.vendor,
                        brand: v.brand,
                        model: v.model,
                        year: v.year,
                        capacity_kwh: v.capacity_kwh,
                        charge_kw: v.charge_kw,
                        charge_limit: v.charge_limit,
                        numeric_strings: v.numeric_strings,
                        charge_on_plug_in: v.charge_on_plug_in,
                        odometer_km: v.odometer_km,
                        policy_enabled: policy,
                        reachable: true,
                        policy_deadline: v.smart_charging.deadline,
                        location,
                        plugged_in: v.plugged_in,
                        wants_charge: v.plugged_in && v.charge_on_plug_in && !policy,
                        reason: if v.plugged_in && policy {
                            Reason::SmartChargingDelay
                        } else {
                            Reason::Default
                        },
                        anchor: now,
                        soc_at_anchor: v.soc,
                        events: VecDeque::from(events),
                        energy_kwh: 0.0,
                        segments: Vec::new(),
                    },
                );
            }
            users.insert(
                u.id,
                User {
                    linked: false,
                    vendor: None,
                    vehicles: ids,
                    locations: u.locations,
                    grants: Vec::new(),
                },
            );
        }
        let n_clients = clients.len();
        Ok(State {
            origin,
            rng,
            key,
            access_lifetime: TimeDelta::seconds(scenario.access_token_lifetime_secs as i64),
            refresh: scenario.refresh,
            clients,
            users,
            vehicles,
            grants: Vec::new(),
            link_states: HashMap::new(),
            codes: HashMap::new(),
            faults: Faults::default(),
            authorize_error: None,
            vendor_status: Default::default(),
            stats: Recorder::default(),
            retry_user: HashMap::new(),
            retry_client: vec![None; n_clients],
        })
    }

    /// A fresh random opaque value (link states, codes).
    pub fn random_string(&mut self) -> String {
        use base64::Engine;
        let bytes: [u8; 24] = self.rng.gen();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The index of client `id`.
    pub fn client_index(&self, id: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.id == id)
    }

    /// Starts a link session for `user` (created if unknown).
    pub fn link(&mut self, user: &str, vendor: Option<String>, now: DateTime<Utc>) -> String {
        let u = self.users.entry(user.to_string()).or_insert_with(|| User {
            linked: false,
            vendor: None,
            vehicles: Vec::new(),
            locations: Vec::new(),
            grants: Vec::new(),
        });
        if vendor.is_some() {
            u.vendor = vendor;
        }
        let state = self.random_string();
        self.link_states.insert(
            state.clone(),
            LinkSession {
                user: user.to_string(),
                expires: now + LINK_STATE_TTL,
                used: false,
            },
        );
        state
    }

    /// Issues an authorization code.
    pub fn issue_code(&mut self, code: AuthCode) -> String {
        let value = self.random_string();
        self.codes.insert(value.clone(), code);
        value
    }

    /// The expiry of a code issued now.
    pub fn code_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
        now + CODE_TTL
    }

    /// Authenticates a bearer token and checks it fits `need`; then applies
    /// Retry-After bookkeeping and the fault rules.
    pub fn admit(
        &mut self,
        bearer: Option<&str>,
        need: Need,
        now: DateTime<Utc>,
        route: &str,
    ) -> Result<Admitted, Problem> {
        let (caller, granted) = self.authenticate(bearer, now, route)?;
        if let Some(user) = caller.user() {
            self.stats.user_request(user);
        }
        match (&caller, need) {
            (Caller::Client(_), Need::Client) => {}
            (Caller::User { .. }, Need::User(wanted)) => {
                if wanted != Scopes::default() && !granted.intersects(Scopes::ALL.or(wanted)) {
                    return Err(Problem::forbidden(format!(
                        "{route} needs scope all or one of: {}",
                        wanted.to_scope_string()
                    )));
                }
            }
            (Caller::Client(_), Need::User(_)) => {
                return Err(Problem::forbidden("a user access token is required"))
            }
            (Caller::User { .. }, Need::Client) => {
                return Err(Problem::forbidden("a client access token is required"))
            }
        }
        let until = match &caller {
            Caller::Client(c) => self.retry_client[*c],
            Caller::User { user } => self.retry_user.get(user.as_str()).copied(),
        };
        if let Some(until) = until.filter(|u| now < *u) {
            let early = (until - now).num_milliseconds() as f64 / 1000.0;
            self.stats.violation(
                now,
                ViolationKind::RetryAfterIgnored,
                caller.user(),
                format!("{route} {early:.3} s before Retry-After elapsed"),
            );
        }
        let d = self
            .faults
            .decide(Target::Api, caller.user(), &mut self.rng);
        Ok(Admitted {
            caller,
            latency: d.latency,
            error: d.error,
        })
    }

    /// Checks a bearer token: the caller, or a 401 with the violation noted.
    fn authenticate(
        &mut self,
        bearer: Option<&str>,
        now: DateTime<Utc>,
        route: &str,
    ) -> Result<(Caller, Scopes), Problem> {
        let Some(token) = bearer else {
            self.stats.violation(
                now,
                ViolationKind::UnknownToken,
                None,
                format!("{route} without a bearer token"),
            );
            return Err(Problem::unauthorized("missing bearer token"));
        };
        let claims = tokens::decode(&self.key, token).filter(|c| c.kind != Kind::Refresh);
        let Some(c) = claims else {
            self.stats.violation(
                now,
                ViolationKind::UnknownToken,
                None,
                format!("{route} with a token never issued"),
            );
            return Err(Problem::unauthorized("invalid access token"));
        };
        let (caller, scopes, revoked) = match c.kind {
            Kind::Client => (Caller::Client(c.id as usize), Scopes::default(), false),
            _ => {
                let g = &self.grants[c.id as usize];
                let stale = self.refresh.revoke_previous_access_tokens && c.seq != g.access_gen;
                (
                    Caller::User {
                        user: g.user.clone(),
                    },
                    g.scopes,
                    g.revoked || stale,
                )
            }
        };
        let now_ms = now.timestamp_millis();
        if c.expires_ms <= now_ms {
            self.stats.violation(
                now,
                ViolationKind::ExpiredToken,
                caller.user(),
                format!(
                    "{route} with a token expired {:.3} s ago",
                    (now_ms - c.expires_ms) as f64 / 1000.0
                ),
            );
            return Err(Problem::unauthorized("access token expired"));
        }
        if revoked {
            self.stats.violation(
                now,
                ViolationKind::RevokedToken,
                caller.user(),
                format!("{route} with a revoked token"),
            );
            return Err(Problem::unauthorized("access token revoked"));
        }
        Ok((caller, scopes))
    }

    /// Notes that `caller` was answered `error`: it is counted, and its
    /// Retry-After, if any, starts now.
    pub fn note_injected(&mut self, caller: Option<&Caller>, error: &Injected, now: DateTime<Utc>) {
        self.stats.injected(error.name());
        let (Some(secs), Some(caller)) = (error.retry_after_secs(), caller) else {
            return;
        };
        let until = now + TimeDelta::seconds(secs as i64);
        match caller {
            Caller::Client(c) => self.retry_client[*c] = Some(until),
            Caller::User { user } => {
                if let Some(t) = self.retry_user.get_mut(user.as_str()) {
                    *t = until;
                } else {
                    self.retry_user.insert(user.clone(), until);
                }
            }
        }
    }
}
