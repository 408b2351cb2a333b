//! Counters for tests and benchmarks: requests by route and status,
//! commands by vehicle, tokens issued, and violations — things a well
//! behaved client never does, counted so a test can assert there were none.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many violation events [`Stats::recent_violations`] keeps.
const RECENT: usize = 256;

/// A snapshot of the simulator's counters (`GET /_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests by route ("GET /vehicles/{vehicleId}") and HTTP status.
    /// Requests that matched no route are under "unmatched"; status 0 is
    /// a request whose connection was closed without an answer (a
    /// `connection_reset` fault).
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Total of `requests`.
    pub total_requests: u64,
    /// Charging commands and watches by vehicle id.
    pub commands: BTreeMap<String, CommandCounts>,
    /// Tokens issued, by grant type, and grants revoked.
    pub tokens: TokenCounts,
    /// Answers made by fault rules instead of the endpoint, by kind
    /// ("rate_limit", "server_error", "connection_reset",
    /// "malformed_body", "oversized_body"); latency is not counted.
    pub injected: BTreeMap<String, u64>,
    /// API requests with a valid user token, by user: shows that each
    /// user's client still works (e.g. after a fault is cleared).
    pub user_requests: BTreeMap<String, u64>,
    /// Violation counters; all zero for a well-behaved client.
    pub violations: Violations,
    /// The latest violations (up to 256), oldest first, for test messages.
    pub recent_violations: Vec<ViolationEvent>,
}

impl Stats {
    /// Requests to `route` (e.g. "POST /oauth2/token") with `status`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to `route` with any status.
    pub fn count_route(&self, route: &str) -> u64 {
        self.requests.get(route).map_or(0, |m| m.values().sum())
    }
}

/// Commands received for one vehicle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCounts {
    /// Accepted START commands.
    pub start: u64,
    /// Accepted STOP commands.
    pub stop: u64,
    /// Commands rejected because the vehicle was not plugged in.
    pub rejected_unplugged: u64,
    /// Accepted commands while the vehicle was away from every charging
    /// location of its user.
    pub away: u64,
    /// `POST /vehicles/{id}/watch` calls.
    pub watch: u64,
}

/// Tokens issued and grants revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Client credentials grants answered.
    pub client_credentials: u64,
    /// Authorization codes exchanged.
    pub authorization_code: u64,
    /// Refresh grants answered.
    pub refresh_token: u64,
    /// Token sets made by `SimHandle::grant_tokens`.
    pub granted_by_handle: u64,
    /// Grants revoked (replay, code reuse, deauthorization, user deletion).
    pub grants_revoked: u64,
    /// Refresh grants answered for an already rotated refresh token within
    /// the rotation grace period (`[refresh] grace_secs`).
    pub refresh_graced: u64,
    /// The most token endpoint requests ever in progress at once (from
    /// arrival to the end of the answer, injected latency included).
    pub max_in_flight: u64,
}

/// Things a correct client never does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violations {
    /// Requests carrying an access token past its expiry.
    pub expired_token: u64,
    /// Requests carrying a token this simulator never issued (or none).
    pub unknown_token: u64,
    /// Requests carrying a token of a revoked grant.
    pub revoked_token: u64,
    /// Requests from a caller before the Retry-After it was given elapsed.
    pub retry_after_ignored: u64,
    /// Already rotated refresh tokens presented again.
    pub refresh_replay: u64,
    /// `invalid_grant` answers of the token endpoint.
    pub invalid_grant: u64,
    /// Charging commands sent to an unplugged vehicle.
    pub command_unplugged: u64,
    /// Charging commands sent to a vehicle away from its charging locations.
    pub command_away: u64,
}

impl Violations {
    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.expired_token
            + self.unknown_token
            + self.revoked_token
            + self.retry_after_ignored
            + self.refresh_replay
            + self.invalid_grant
            + self.command_unplugged
            + self.command_away
    }
}

/// Which violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// See [`Violations::expired_token`].
    ExpiredToken,
    /// See [`Violations::unknown_token`].
    UnknownToken,
    /// See [`Violations::revoked_token`].
    RevokedToken,
    /// See [`Violations::retry_after_ignored`].
    RetryAfterIgnored,
    /// See [`Violations::refresh_replay`].
    RefreshReplay,
    /// See [`Violations::invalid_grant`].
    InvalidGrant,
    /// See [`Violations::command_unplugged`].
    CommandUnplugged,
    /// See [`Violations::command_away`].
    CommandAway,
}

/// One recorded violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationEvent {
    /// Clock time it happened.
    pub at: DateTime<Utc>,
    /// What it was.
    pub kind: ViolationKind,
    /// The user concerned, when known.
    pub user: Option<String>,
    /// Human-readable detail (never a token value).
    pub detail: String,
}

/// One accepted charging command, as the simulator saw it arrive
/// (`GET /_sim/commands`): benchmarks compare `at` with the instant the
/// client planned it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Clock time the command arrived.
    pub at: DateTime<Utc>,
    /// The vehicle.
    pub vehicle: String,
    /// `START` or `STOP`.
    pub action: String,
}

/// One refresh that rotated a grant's refresh token (`GET /_sim/rotations`,
/// [`crate::SimHandle::rotations`]): kill tests compare `at` with the
/// instants they killed the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationRecord {
    /// Clock time of the rotation (when the server made the new tokens,
    /// before any injected latency delays the answer).
    pub at: DateTime<Utc>,
    /// The user of the grant.
    pub user: String,
    /// Sequence number of the refresh token presented.
    pub used_seq: u32,
    /// Sequence number of the refresh token answered.
    pub new_seq: u32,
    /// Whether the presented token was an already rotated one accepted
    /// within the grace period.
    pub graced: bool,
}

/// How many rotations [`Recorder::rotation_log`] keeps (the latest ones):
/// 10,000 users refreshing hourly fill it in four days.
const ROTATIONS_KEPT: usize = 1 << 20;

/// The live counters behind [`Stats`], shaped for cheap updates.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Route -> status -> count.
    requests: HashMap<String, HashMap<u16, u64>>,
    /// Sum of `requests`.
    total: u64,
    /// Vehicle id -> counts.
    pub commands: HashMap<String, CommandCounts>,
    /// Token counters.
    pub tokens: TokenCounts,
    /// Fault answers by kind.
    injected: HashMap<&'static str, u64>,
    /// Authenticated API requests by user.
    user_requests: HashMap<String, u64>,
    /// Violation counters.
    pub violations: Violations,
    /// Latest violation events.
    recent: VecDeque<ViolationEvent>,
    /// Every accepted command, oldest first (a few per vehicle and day, so
    /// it is kept whole).
    pub command_log: Vec<CommandRecord>,
    /// The latest rotations, oldest first, at most [`ROTATIONS_KEPT`].
    pub rotation_log: VecDeque<RotationRecord>,
    /// Token endpoint requests in progress now.
    pub token_in_flight: u64,
}

impl Recorder {
    /// Counts one answered request.
    pub fn request(&mut self, route: &str, status: u16) {
        self.total += 1;
        if let Some(m) = self.requests.get_mut(route) {
            *m.entry(status).or_default() += 1;
        } else {
            self.requests
                .entry(route.to_string())
                .or_default()
                .insert(status, 1);
        }
    }

    /// Records a rotation.
    pub fn rotation(&mut self, r: RotationRecord) {
        if self.rotation_log.len() == ROTATIONS_KEPT {
            self.rotation_log.pop_front();
        }
        self.rotation_log.push_back(r);
    }

    /// Counts one answer made by a fault rule.
    pub fn injected(&mut self, kind: &'static str) {
        *self.injected.entry(kind).or_default() += 1;
    }

    /// Counts one authenticated API request of `user`.
    pub fn user_request(&mut self, user: &str) {
        if let Some(n) = self.user_requests.get_mut(user) {
            *n += 1;
        } else {
            self.user_requests.insert(user.to_owned(), 1);
        }
    }

    /// The command counters of a vehicle.
    pub fn commands(&mut self, vehicle: &str) -> &mut CommandCounts {
        if !self.commands.contains_key(vehicle) {
            self.commands
                .insert(vehicle.to_string(), CommandCounts::default());
        }
        self.commands.get_mut(vehicle).expect("inserted")
    }

    /// Counts a violation and remembers it.
    pub fn violation(
        &mut self,
        at: DateTime<Utc>,
        kind: ViolationKind,
        user: Option<&str>,
        detail: String,
    ) {
        let v = &mut self.violations;
        *match kind {
            ViolationKind::ExpiredToken => &mut v.expired_token,
            ViolationKind::UnknownToken => &mut v.unknown_token,
            ViolationKind::RevokedToken => &mut v.revoked_token,
            ViolationKind::RetryAfterIgnored => &mut v.retry_after_ignored,
            ViolationKind::RefreshReplay => &mut v.refresh_replay,
            ViolationKind::InvalidGrant => &mut v.invalid_grant,
            ViolationKind::CommandUnplugged => &mut v.command_unplugged,
            ViolationKind::CommandAway => &mut v.command_away,
        } += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(ViolationEvent {
            at,
            kind,
            user: user.map(String::from),
            detail,
        });
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Stats {
        Stats {
            requests: self
                .requests
                .iter()
                .map(|(k, m)| (k.clone(), m.iter().map(|(s, n)| (*s, *n)).collect()))
                .collect(),
            total_requests: self.total,
            commands: self
                .commands
                .iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect(),
            tokens: self.tokens.clone(),
            injected: self
                .injected
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            user_requests: self
                .user_requests
                .iter()
                .map(|(k, n)| (k.clone(), *n))
                .collect(),
            violations: self.violations.clone(),
            recent_violations: self.recent.iter().cloned().collect(),
        }
    }
}
