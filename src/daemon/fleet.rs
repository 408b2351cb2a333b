//! The fleet: one task per linked user polls the user's vehicles (one
//! `GET /vehicles` per round), plans each plugged-in vehicle when needed,
//! and sends START/STOP at block edges. The decisions are
//! [`control`](super::control)'s; this module does the I/O, the timers and
//! the rate limits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use clock::Clock;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::control::{
    self, Action, ActivePlan, ControlState, Event, Override, Seen, Step, TakeOver, Trip,
    SWEEP_REASON,
};
use super::policy::{self, PolicyConfig, VehiclePolicy};
use super::readmodel::{Backoff, Live, RecentCommands, RECENT_COMMANDS};
use super::tokens::{TokenError, TokenKeeper};
use crate::enode::{Client, Error as ApiError};
use crate::model::{
    FieldSet, SmartChargingPolicy, TrackedVehicle, Vehicle, VehicleEvent, VehicleEventKind,
    VehicleField, VehicleUpdate, WatchProperty,
};
use crate::outage::Outages;
use crate::prices::PriceCurve;
use crate::retry::{Policy as RetryPolicy, Retry};
use crate::secret::Secret;
use crate::store::{JournalEntry, Store};
use crate::users::UserId;
use crate::webhooks::Liveness;

mod site;

/// Users of one vendor that must see a 429 within [`VENDOR_WINDOW`] before
/// the whole vendor is backed off.
const VENDOR_HITS: usize = 3;
/// The window for [`VENDOR_HITS`].
const VENDOR_WINDOW: TimeDelta = TimeDelta::seconds(60);
/// While the user's vendor is reported down, the user's task looks again
/// this often (no request: the health report is the vendor task's).
const VENDOR_DOWN_RECHECK: TimeDelta = TimeDelta::seconds(60);
/// After a 429, requests count as scarce for this long: commands due at a
/// block edge then go out before the poll.
const SCARCE_FOR: TimeDelta = TimeDelta::minutes(30);
/// Idle planners kept for reuse (plans are made one at a time per worker
/// thread, so a few suffice).
const PLANNER_POOL: usize = 4;
/// Rounds without a poll that run at once, across all users: as many as
/// the client's connections to Enode (which polls, refreshes and
/// operators' changes share), so at a block edge the connections stay
/// busy. The other rounds of an edge shared by thousands of cars wait for
/// a place before their round exists; all at once, their rounds (about
/// 4 KB each, with their requests) made the day's memory peak.
pub const ROUNDS_AT_ONCE: usize = crate::limits::ENODE_CONNECTIONS_MAX;

/// Replans asked for by new prices are spread over this long, so a price
/// publication does not wake every user at one instant.
pub const REPLAN_SPREAD: std::time::Duration = std::time::Duration::from_secs(600);
/// The first polls after start are spread over this long (or the
/// shorter `poll_fast`): long enough that a restart of a large fleet is no
/// herd, short enough that stored plans' edges are soon served again.
pub const START_SPREAD: std::time::Duration = std::time::Duration::from_secs(120);
/// An observation at most this old is recent enough to decide on without
/// polling first (at a block edge, a replan, a steering limit). Without
/// webhooks each edge is polled [`EDGE_LEAD`] ahead, which is less, so the
/// command at the edge goes out at once instead of after a poll.
pub const FRESH: TimeDelta = TimeDelta::minutes(5);
/// How long before a block edge (or deadline, or steering limit) a user
/// whose last poll is older than [`FRESH`] by then polls, at least; each
/// user adds a seeded share of [`EDGE_LEAD_SPREAD`], so a fleet whose
/// blocks share an hour edge does not poll in the same second.
pub const EDGE_LEAD: TimeDelta = TimeDelta::seconds(60);
/// The spread of the lead before an edge (see [`EDGE_LEAD`]).
pub const EDGE_LEAD_SPREAD: std::time::Duration = std::time::Duration::from_secs(120);
/// Without webhooks a plug-in is seen only at the next poll. For a user
/// whose vehicles all wait for a command when plugged in
/// ([`ControlState::waits`]), the unplugged polls are moved to where a
/// late plug-in costs money: every `poll_slow / 2` while the price now is
/// among the cheapest [`CHEAP_SHARE`] of the next [`CHEAP_HORIZON`] (a
/// sunny afternoon, a windy night: a car plugged in then is best charged
/// at once) and the credit covers the rest of that cheap stretch (see
/// [`POLL_CREDIT_MAX`]), every `2 × poll_slow` in the dear hours, but at
/// the start of the next cheap slot. A car that starts charging by itself charges at
/// whatever price until it is seen, so its user keeps the uniform
/// `poll_slow`. In the year of NL nights (BENCHMARKS.md) the slow poll's
/// delay was most of the daemon's gap to the hindsight optimum.
pub const CHEAP_SHARE: f64 = 0.2;
/// The look-ahead of [`CHEAP_SHARE`]: about one night's plug-in session.
pub const CHEAP_HORIZON: TimeDelta = TimeDelta::hours(16);
/// Moved polls are paid for by polls saved: one `poll_slow` of time earns
/// one poll, each poll spends one, and a poll sooner than `poll_slow`
/// after the last is made only while the earned credit covers it (else
/// the uniform pace). So the polls of an unplugged stretch stay at most
/// the uniform number plus this many (four cheap hours at the default 30
/// minutes), whatever the prices. The credit keeps earning while the car
/// is plugged in (the session's polls are not paid from it), so a weekend
/// afternoon after the night's session starts with it full; and it is
/// spent at the end of a cheap stretch (a plug-in seen late there charges
/// in the dear hours after it; one seen late early in a long stretch, in
/// a later cheap hour), so a stretch longer than the credit, or a flat
/// tariff ("cheap" all day), is polled at the uniform pace until the
/// credit covers the rest.
pub const POLL_CREDIT_MAX: f64 = 8.0;

/// The poll after one at `now` of an unplugged user whose vehicles wait
/// for a command (see [`CHEAP_SHARE`]), and the credit left after this
/// poll (see [`POLL_CREDIT_MAX`]); `last` is the credit and time of the
/// previous such poll, if this one continues the run.
fn moved_poll(
    curve: &PriceCurve,
    now: DateTime<Utc>,
    slow: TimeDelta,
    last: Option<(f64, DateTime<Utc>)>,
) -> (DateTime<Utc>, f64) {
    let per_poll = slow.num_milliseconds().max(1) as f64;
    let earned = |from: DateTime<Utc>, to: DateTime<Utc>| {
        (to - from).num_milliseconds().max(0) as f64 / per_poll
    };
    // The first poll of a run was made at another pace and is not charged.
    let credit = last.map_or(0.0, |(c, at)| {
        (c + earned(at, now)).min(POLL_CREDIT_MAX) - 1.0
    });
    let want = if curve.is_cheap_at(now, CHEAP_HORIZON, CHEAP_SHARE) {
        // The credit goes to the end of the cheap stretch: a plug-in seen
        // late there moves charging past it into a dear hour, one seen
        // late early in a long stretch only to a later cheap hour. So the
        // pace doubles once the credit covers the rest of the stretch
        // (half a poll of credit per `poll_slow / 2` of it), uniform
        // before.
        let end = curve
            .from(now)
            .iter()
            .map(|s| s.start)
            .filter(|t| *t > now)
            .take_while(|t| *t < now + CHEAP_HORIZON)
            .find(|t| !curve.is_cheap_at(*t, CHEAP_HORIZON, CHEAP_SHARE))
            .unwrap_or(now + CHEAP_HORIZON);
        if credit < earned(now, end) {
            now + slow
        } else {
            now + slow / 2
        }
    } else {
        let sparse = now + slow * 2;
        curve
            .next_cheap_start(now, sparse, CHEAP_HORIZON, CHEAP_SHARE)
            .unwrap_or(sparse)
    };
    // A poll sooner than the uniform pace only on credit.
    if want < now + slow && credit + earned(now, want) < 1.0 {
        (now + slow, credit)
    } else {
        (want, credit)
    }
}

/// A random share of `over`, with millisecond resolution.
fn jitter(rng: &mut SmallRng, over: std::time::Duration) -> TimeDelta {
    let ms = over.as_millis().min(u64::MAX as u128) as u64;
    if ms == 0 {
        return TimeDelta::zero();
    }
    TimeDelta::milliseconds(rng.gen_range(0..ms) as i64)
}

/// Charge power assumed for a first plan when neither the policy nor an
/// observation gives one (a common wallbox); the plan is redone once the
/// vehicle charges and reports its real rate.
pub const ASSUMED_POWER_KW: f64 = 11.0;

/// What the fleet reports as it works, for the demo and tests (the log
/// carries the same).
#[derive(Debug, Clone)]
pub enum FleetEvent {
    /// A plan was made.
    Planned {
        /// The user.
        user: UserId,
        /// The vehicle.
        vehicle: String,
        /// Why it was (re)planned.
        reason: &'static str,
        /// The plan.
        plan: ActivePlan,
    },
    /// A command was sent (successfully or not).
    Command(JournalEntry),
}

/// A plan's blocks for the log, as ISO 8601 intervals
/// (`2024-03-04T23:00:00Z/2024-03-05T01:30:00Z`, space-separated): the
/// block edges a reader (an operator, the fleet benchmark) can check the
/// commands against.
struct Schedule<'a>(&'a [planner::Block]);

impl std::fmt::Display for Schedule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::SecondsFormat::Secs;
        for (i, b) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(
                f,
                "{sep}{}/{}",
                b.start.to_rfc3339_opts(Secs, true),
                b.end.to_rfc3339_opts(Secs, true)
            )?;
        }
        Ok(())
    }
}

/// Everything the user tasks share.
pub struct Fleet {
    /// The store (control states, journal).
    pub store: Store,
    /// The Enode client.
    pub client: Client,
    /// The daemon's clock.
    pub clock: Clock,
    /// Hands out access tokens.
    pub keeper: Arc<TokenKeeper>,
    /// The policy in force; replaced on reload.
    pub policy: watch::Receiver<Arc<PolicyConfig>>,
    /// The newest price curve.
    pub prices: watch::Receiver<Option<Arc<PriceCurve>>>,
    /// At most this many API requests in flight across all users.
    pub limiter: Arc<Semaphore>,
    /// At most [`ROUNDS_AT_ONCE`] rounds without a poll (block edges,
    /// confirmations) run at once.
    pub rounds: Arc<Semaphore>,
    /// 429s per vendor, to back off a whole vendor.
    pub vendors: Mutex<HashMap<String, VendorState>>,
    /// Where plans and commands are reported, if anywhere.
    pub events: Option<mpsc::UnboundedSender<FleetEvent>>,
    /// Users whose loop runs: at most one loop per user, however often it
    /// is linked again.
    pub running: Mutex<HashSet<UserId>>,
    /// Failing Enode requests, logged once per episode rather than per request.
    pub outages: Outages,
    /// Idle planners, reused across users (see [`Fleet::plan`]).
    pub planners: Mutex<Vec<planner::Planner>>,
    /// The newest control state of every vehicle seen since start, with
    /// its observation and explanation, by vehicle id: what the read model
    /// shows (the store holds only what must survive a crash, written when
    /// that changes). Boxed: the map keeps up to twice as many slots as
    /// vehicles, and a `Live` is over 600 bytes.
    pub view: Mutex<HashMap<String, Box<Live>>>,
    /// This month's savings report, counted as sessions are stored (the
    /// read model shows it).
    pub month: crate::report::MonthTally,
    /// The last [`RECENT_COMMANDS`] journal entries of each vehicle.
    pub recent: Mutex<HashMap<String, RecentCommands>>,
    /// Users whose requests wait for a Retry-After or backoff, until when.
    pub blocked: Mutex<HashMap<UserId, DateTime<Utc>>>,
    /// Each running user loop's own stop (a child of the daemon's
    /// shutdown) and a receiver that closes when the loop has ended: an
    /// unlink stops one user's loop and waits for it.
    pub stops: Mutex<HashMap<UserId, (CancellationToken, watch::Receiver<()>)>>,
    /// Each running user loop's inbox (see [`UserInbox`]): operators'
    /// changes and webhook events.
    pub inboxes: Mutex<HashMap<UserId, Arc<UserInbox>>>,
    /// Whether webhooks deliver, when `[webhooks]` is configured.
    pub webhooks: Option<Arc<Liveness>>,
    /// Every user's poll interval while webhooks deliver.
    pub safety_poll: std::time::Duration,
    /// Vendors Enode reports down: their users send nothing until they
    /// recover (see [`super::vendors`]).
    pub vendors_down: super::vendors::VendorsDown,
    /// Seeds the jitter that spreads users' polls (a fixed seed repeats a
    /// schedule in tests and benchmarks).
    pub seed: u64,
    /// Turns true once every stored user is loaded and its loop spawned:
    /// the daemon signals READY before that (see [`Fleet::users_loaded`]).
    pub loaded: watch::Sender<bool>,
}

/// What waits for one user's task: operators' changes and webhook events,
/// behind one wake-up. One small struct per user rather than a channel
/// each: a tokio channel allocates a block of 32 slots up front, about
/// half a kilobyte per user for a queue that is almost always empty.
/// Both queues are bounded: webhook events beyond [`INBOX_MAX`] are
/// dropped and the task polls instead; a change beyond
/// [`STEER_QUEUE_MAX`] is refused as busy.
#[derive(Debug, Default)]
pub struct UserInbox {
    /// The events, and whether some were dropped.
    queue: Mutex<(Vec<VehicleEvent>, bool)>,
    /// Operators' changes, oldest first.
    steer: Mutex<VecDeque<Box<SteerRequest>>>,
    /// Wakes the task.
    notify: Notify,
}

/// Events held per user at most before the inbox overflows (a poll then
/// learns the state instead).
pub const INBOX_MAX: usize = 256;

/// Operators' changes waiting for one user's task at most; more are
/// refused ([`SteerError::Busy`]). Each is answered once stored and acted
/// on, so only a burst of requests at once meets the limit.
pub const STEER_QUEUE_MAX: usize = 8;

impl UserInbox {
    /// Queues an operator's change and wakes the task; gives the request
    /// back when [`STEER_QUEUE_MAX`] changes wait already.
    fn push_steer(&self, req: Box<SteerRequest>) -> Result<(), Box<SteerRequest>> {
        let mut q = self.steer.lock().expect("inbox lock");
        if q.len() >= STEER_QUEUE_MAX {
            return Err(req);
        }
        q.push_back(req);
        drop(q);
        self.notify.notify_one();
        Ok(())
    }

    /// The oldest waiting change, if any.
    fn next_steer(&self) -> Option<Box<SteerRequest>> {
        self.steer.lock().expect("inbox lock").pop_front()
    }

    /// Queues an event and wakes the task.
    fn push(&self, e: VehicleEvent) {
        let mut q = self.queue.lock().expect("inbox lock");
        if q.0.len() < INBOX_MAX {
            q.0.push(e);
        } else {
            q.1 = true;
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Takes every queued event, and whether some were dropped.
    fn take(&self) -> (Vec<VehicleEvent>, bool) {
        std::mem::take(&mut *self.queue.lock().expect("inbox lock"))
    }
}

/// A change an operator asks of one vehicle (through the admin socket). It
/// goes to the vehicle's user loop, which owns the control state: stored,
/// journaled and acted on there, like any other input of the controller.
#[derive(Debug)]
pub struct SteerRequest {
    /// The vehicle.
    pub vehicle: String,
    /// What to change.
    pub change: Change,
    /// Who asks (for the journal).
    pub by: String,
    /// The answer, once stored and acted on.
    pub reply: oneshot::Sender<Result<(), SteerError>>,
}

/// What an operator can change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Set an override; `None`: back to the plan ("auto").
    Override(Option<Override>),
    /// Set a trip; `None`: drop it.
    Trip(Option<Trip>),
    /// Plan again now.
    Replan,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteerError {
    /// The vehicle was not observed since the daemon started.
    #[error("vehicle {0} has not been seen since the daemon started")]
    NotSeen(String),
    /// An override needs a plug-in session.
    #[error("vehicle {0} is not plugged in at a charging location smartcharged controls")]
    NotPluggedIn(String),
    /// The store refused the write.
    #[error("cannot store the change: {0}")]
    Store(String),
    /// The user's loop is not running (the user must link again).
    #[error("the vehicle's user is not active")]
    Inactive,
    /// Too many changes for the vehicle's user wait already.
    #[error("too many changes for this vehicle's user are waiting; try again in a moment")]
    Busy,
}

/// Recent rate limiting of one vendor.
#[derive(Debug, Default)]
pub struct VendorState {
    /// Recent 429s: (when, user).
    hits: Vec<(DateTime<Utc>, UserId)>,
    /// No request for this vendor before this instant.
    not_before: Option<DateTime<Utc>>,
}

/// The version of a price curve: its last covered instant. Day-ahead
/// prices for a new day move it; it is the same after a restart.
pub fn prices_version(curve: Option<&PriceCurve>) -> u64 {
    curve
        .and_then(|c| c.end())
        .map_or(0, |t| t.timestamp().max(0) as u64)
}

/// Why a user's loop stopped.
#[derive(Debug)]
enum Stop {
    /// Shutdown.
    Cancelled,
    /// The user must link again.
    Relink,
}

/// One user's loop state.
struct UserTask {
    /// Shared parts.
    fleet: Arc<Fleet>,
    /// The user.
    user: UserId,
    /// The user's vendor, for vendor-wide backoff.
    vendor: String,
    // The per-vehicle maps box their values: a map of one vehicle (the
    // common case) holds four slots, so unboxed values cost four times
    // their size per user.
    /// Control state per vehicle id.
    states: HashMap<String, Box<ControlState>>,
    /// Digest of the last stored form of each state
    /// ([`ControlState::durable_digest`]), to write only changes.
    stored: HashMap<String, u64>,
    /// No request before this instant (Retry-After or backoff).
    not_before: Option<DateTime<Utc>>,
    /// Backoff for failures without Retry-After.
    retry: Retry,
    /// When the user was last rate limited.
    limited_at: Option<DateTime<Utc>>,
    /// Why each vehicle could not be planned, while it cannot: logged
    /// when the reason changes.
    plan_errors: HashMap<String, String>,
    /// What is known of each vehicle, merged from polls and webhooks.
    tracked: HashMap<String, Box<TrackedVehicle>>,
    /// Webhook events for this user.
    hooks: Arc<UserInbox>,
    /// Shared connections (`[[policy.sites]]`) of this user's vehicles:
    /// accepted STOPs, STARTs waiting for power, joint plans in force.
    sites: site::Sites,
    /// When the user's vehicles were last polled successfully.
    polled_at: Option<DateTime<Utc>>,
    /// How long before an edge this user polls (see [`EDGE_LEAD`]).
    edge_lead: TimeDelta,
    /// While the user's polls are moved into cheap hours: the credit of
    /// polls saved (see [`POLL_CREDIT_MAX`]) at the last poll. `None`
    /// otherwise; it starts at zero each time.
    poll_credit: Option<(f64, DateTime<Utc>)>,
}

impl Fleet {
    /// Waits until the stored users are loaded. A link or unlink waits
    /// for it, so the load cannot bring back a user unlinked meanwhile or
    /// put older tokens over a new link's.
    pub async fn users_loaded(&self) {
        let mut rx = self.loaded.subscribe();
        // The sender lives as long as the fleet: an error cannot happen.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Runs one user's loop until `cancel` fires or the user must relink.
    /// Returns at once if the user's loop already runs (a user linked again
    /// while active keeps its one loop, which picks up the new tokens).
    pub async fn run_user(
        self: Arc<Self>,
        user: UserId,
        vendor: Option<String>,
        cancel: CancellationToken,
    ) {
        if !self
            .running
            .lock()
            .expect("running lock")
            .insert(user.clone())
        {
            debug!(user.id = %user, "the user's loop already runs");
            return;
        }
        /// Takes the user off the running set however the loop ends, then
        /// tells [`Fleet::stop_user`] the loop has ended (its sender). Only
        /// this loop's stop and inbox are removed: a loop of the same user
        /// started once `running` let go has its own.
        struct Running(Arc<Fleet>, UserId, watch::Sender<()>, Arc<UserInbox>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.running.lock().expect("running lock").remove(&self.1);
                let mut stops = self.0.stops.lock().expect("stops lock");
                let ended = self.2.subscribe();
                if stops
                    .get(&self.1)
                    .is_some_and(|(_, rx)| rx.same_channel(&ended))
                {
                    stops.remove(&self.1);
                }
                drop(stops);
                let mut inboxes = self.0.inboxes.lock().expect("inboxes lock");
                if inboxes
                    .get(&self.1)
                    .is_some_and(|i| Arc::ptr_eq(i, &self.3))
                {
                    inboxes.remove(&self.1);
                }
                drop(inboxes);
                let _ = self.2.send(());
            }
        }
        let cancel = cancel.child_token();
        let (ended_tx, ended_rx) = watch::channel(());
        self.stops
            .lock()
            .expect("stops lock")
            .insert(user.clone(), (cancel.clone(), ended_rx));
        let hooks = Arc::new(UserInbox::default());
        self.inboxes
            .lock()
            .expect("inboxes lock")
            .insert(user.clone(), hooks.clone());
        let _running = Running(self.clone(), user.clone(), ended_tx, hooks.clone());
        let span = tracing::info_span!("fleet", user.id = %user);
        // The task and its loop's future live in boxes of their own: kept
        // inline, the compiler lays this future out with room for both
        // and for their moves, over 3 KB per user where the boxes hold
        // under 2.
        let mut task = Box::new(UserTask {
            fleet: self,
            vendor: vendor.unwrap_or_else(|| "unknown".into()),
            user,
            states: HashMap::new(),
            stored: HashMap::new(),
            not_before: None,
            retry: RetryPolicy::DEFAULT.start(),
            limited_at: None,
            plan_errors: HashMap::new(),
            tracked: HashMap::new(),
            hooks,
            sites: site::Sites::default(),
            polled_at: None,
            edge_lead: EDGE_LEAD,
            poll_credit: None,
        });
        match Box::pin(task.run(cancel)).instrument(span.clone()).await {
            Stop::Cancelled => {}
            Stop::Relink => span
                .in_scope(|| warn!("user must link again; its vehicles are no longer controlled")),
        }
    }

    /// Plans with a planner from the shared pool: its scratch buffers are
    /// reused, and there are only as many as plans made at once, not one
    /// per user (with 100,000 users, per-user planners held their buffers
    /// for good).
    fn plan(&self, req: &planner::PlanRequest) -> Result<planner::Plan, String> {
        let mut p = self
            .planners
            .lock()
            .expect("planners lock")
            .pop()
            .unwrap_or_default();
        let r = p.plan(req).map_err(|e| e.to_string());
        let mut pool = self.planners.lock().expect("planners lock");
        if pool.len() < PLANNER_POOL {
            pool.push(p);
        }
        r
    }

    /// Makes `live` what the read model shows for `vehicle`, in the box
    /// the vehicle already has (a poll publishes every vehicle).
    fn publish(&self, vehicle: &str, live: Live) {
        let mut view = self.view.lock().expect("view lock");
        match view.get_mut(vehicle) {
            Some(shown) => **shown = live,
            None => {
                view.insert(vehicle.to_owned(), Box::new(live));
            }
        }
    }

    /// Appends to the journal (flushed) and to the vehicle's recent
    /// commands.
    pub async fn journal(&self, entry: JournalEntry) {
        if let Err(e) = self.store.journal(&entry).await {
            warn!(error = %e, "cannot write the journal");
        }
        if !entry.vehicle.is_empty() {
            let mut recent = self.recent.lock().expect("recent lock");
            recent
                .entry(entry.vehicle.clone())
                .or_default()
                .push_newest(entry);
        }
    }

    /// Fills the recent commands from the stored journal (at start).
    pub fn load_recent(&self) {
        let Ok(entries) = self.store.journal_recent(RECENT_COMMANDS * 1000) else {
            return;
        };
        let mut recent = self.recent.lock().expect("recent lock");
        // Newest first: keep the first RECENT_COMMANDS per vehicle.
        for e in entries {
            if e.vehicle.is_empty() {
                continue;
            }
            recent.entry(e.vehicle.clone()).or_default().push_oldest(e);
        }
    }

    /// Hands a webhook event to its user's task; false when the user has
    /// no running task here (unknown, or needing relink).
    pub fn deliver(&self, e: VehicleEvent) -> bool {
        let inbox = self
            .inboxes
            .lock()
            .expect("inboxes lock")
            .get(e.user.as_str())
            .cloned();
        match inbox {
            Some(i) => {
                i.push(e);
                true
            }
            None => {
                debug!(user.id = %crate::limits::clip(&e.user), "webhook event for a user without a running task ignored");
                false
            }
        }
    }

    /// Whether webhooks deliver now.
    fn webhooks_live(&self, now: DateTime<Utc>) -> bool {
        self.webhooks.as_ref().is_some_and(|w| w.live(now))
    }

    /// Users and vendors that may not send yet.
    pub fn backoffs(&self, now: DateTime<Utc>) -> Vec<Backoff> {
        let mut out: Vec<Backoff> = self
            .blocked
            .lock()
            .expect("blocked lock")
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|(u, t)| Backoff {
                scope: "user",
                id: u.to_string(),
                until: *t,
            })
            .collect();
        out.extend(
            self.vendors
                .lock()
                .expect("vendors lock")
                .iter()
                .filter_map(|(v, s)| {
                    s.not_before.filter(|t| *t > now).map(|t| Backoff {
                        scope: "vendor",
                        id: v.clone(),
                        until: t,
                    })
                }),
        );
        out.sort_unstable_by(|a, b| (a.scope, &a.id).cmp(&(b.scope, &b.id)));
        out
    }

    /// Stops `user`'s loop (an unlink) and waits until it has ended: no
    /// request for the user is in flight afterwards. False when no loop ran.
    pub async fn stop_user(&self, user: &UserId) -> bool {
        let stop = self.stops.lock().expect("stops lock").get(user).cloned();
        let Some((cancel, mut ended)) = stop else {
            return false;
        };
        cancel.cancel();
        // The loop's guard sends once at its end, then drops the sender.
        while ended.changed().await.is_ok() {}
        true
    }

    /// Forgets the vehicles of an unlinked user: off the views, and their
    /// stored control states deleted. Returns their ids.
    pub fn forget_user(&self, user: &UserId) -> Vec<String> {
        let mut gone: Vec<String> = {
            let mut view = self.view.lock().expect("view lock");
            let ids: Vec<String> = view
                .iter()
                .filter(|(_, l)| l.user == *user)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                view.remove(id);
            }
            ids
        };
        gone.sort_unstable();
        let mut recent = self.recent.lock().expect("recent lock");
        for id in &gone {
            recent.remove(id);
        }
        drop(recent);
        for id in &gone {
            if let Err(e) = self.store.remove_control(id) {
                warn!(vehicle.id = %id, error = %e, "cannot delete the stored control state");
            }
        }
        gone
    }

    /// Hands a change to the vehicle's user loop and waits for it to be
    /// stored and acted on.
    pub async fn steer(&self, vehicle: &str, change: Change, by: String) -> Result<(), SteerError> {
        let user = self
            .view
            .lock()
            .expect("view lock")
            .get(vehicle)
            .map(|l| l.user.clone())
            .ok_or_else(|| SteerError::NotSeen(vehicle.to_owned()))?;
        let inbox = self
            .inboxes
            .lock()
            .expect("inboxes lock")
            .get(&user)
            .cloned()
            .ok_or(SteerError::Inactive)?;
        let (reply, rx) = oneshot::channel();
        inbox
            .push_steer(Box::new(SteerRequest {
                vehicle: vehicle.to_owned(),
                change,
                by,
                reply,
            }))
            .map_err(|_| SteerError::Busy)?;
        // Not held while waiting: when the loop has ended meanwhile, the
        // last handle drops the request and its reply, so this answers
        // "inactive" rather than waiting for good.
        drop(inbox);
        rx.await.map_err(|_| SteerError::Inactive)?
    }

    fn emit(&self, e: FleetEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }
}

impl UserTask {
    async fn run(&mut self, cancel: CancellationToken) -> Stop {
        let fleet = self.fleet.clone();
        let mut prices = fleet.prices.clone();
        let mut policy_rx = fleet.policy.clone();
        let hooks = self.hooks.clone();
        let mut rng = self.rng();
        // Spread users over their first interval (at most START_SPREAD: a
        // restart must soon see the vehicles whose plans have edges), so a
        // fleet started together does not poll together (and stay in step).
        let first = fleet.policy.borrow().global().poll_fast.min(START_SPREAD);
        let mut next_poll = fleet.clock.now() + jitter(&mut rng, first);
        self.edge_lead = EDGE_LEAD + jitter(&mut rng, EDGE_LEAD_SPREAD);
        // A replan asked for by new prices or a new policy, spread too.
        let mut replan_at: Option<DateTime<Utc>> = None;
        loop {
            let now = fleet.clock.now();
            let mut wake = self.poll_at(now, next_poll);
            for s in self.states.values() {
                if let Some(t) = s.next_wake(now) {
                    wake = wake.min(t);
                }
            }
            if let Some(t) = replan_at {
                wake = wake.min(t);
            }
            if let Some(nb) = self.blocked_until(now) {
                wake = wake.max(nb);
            }
            tokio::select! {
                _ = cancel.cancelled() => return Stop::Cancelled,
                _ = fleet.clock.sleep_until(wake) => {}
                Ok(()) = prices.changed() => {
                    debug!("new prices");
                    if self.states.values().any(|s| s.session) {
                        replan_at.get_or_insert(now + jitter(&mut rng, REPLAN_SPREAD));
                    }
                    continue;
                }
                Ok(()) = policy_rx.changed() => {
                    // A new policy (an operator's reload, rare): every
                    // plan is redone now.
                    for s in self.states.values_mut() { s.plan = None; }
                }
                _ = hooks.notify.notified() => {
                    // Webhook events first: merging them does no I/O, and
                    // an operator's change that came after a plug-in was
                    // delivered must see the car plugged in.
                    let (events, overflowed) = hooks.take();
                    let changed = self.merge_events(events);
                    let now = fleet.clock.now();
                    if overflowed {
                        debug!("webhook inbox overflowed: polling instead");
                        next_poll = next_poll.min(now);
                    } else if !changed.is_empty() && self.blocked_until(now).is_none() {
                        match Box::pin(self.act_on(now, &changed)).await {
                            Ok(_) => {}
                            Err(RoundError::Relink) => return Stop::Relink,
                            Err(RoundError::Wait(until)) => next_poll = until,
                        }
                    }
                    // Then operators' changes, in the order they came.
                    while let Some(req) = hooks.next_steer() {
                        // Boxed like a round: an idle task stays small.
                        if let Some(stop) = Box::pin(self.steer(*req)).await {
                            return stop;
                        }
                    }
                    continue;
                }
            }
            let now = fleet.clock.now();
            if self.blocked_until(now).is_some() {
                continue;
            }
            if replan_at.is_some_and(|t| t <= now) {
                replan_at = None;
            }
            let due = now >= self.poll_at(now, next_poll);
            let poll = due || self.needs_poll(now);
            // A poll queues for its request slot here, before its round
            // exists: when thousands of users poll together (a start)
            // the queue holds these small futures, not their rounds. A
            // round without a poll queues for its place among
            // ROUNDS_AT_ONCE likewise (a block edge shared by thousands
            // of cars). The wait ends at the loop's stop: after a
            // shutdown or an unlink nothing more is sent.
            let queue = if poll { &fleet.limiter } else { &fleet.rounds };
            let permit = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Stop::Cancelled,
                p = queue.clone().acquire_owned() => p.expect("the queues are never closed"),
            };
            // A backoff set while this waited (another user's 429 for the
            // vendor) holds for this round too.
            let now = fleet.clock.now();
            if self.blocked_until(now).is_some() {
                continue;
            }
            let (slot, _place) = if poll {
                (Some(permit), None)
            } else {
                (None, Some(permit))
            };
            // Boxed: the round's state (requests in flight) exists only
            // while it runs, so an idle user's task stays small.
            match Box::pin(self.round(now, slot)).await {
                Ok(any_session) => {
                    fleet.outages.succeeded(fleet.clock.now());
                    fleet
                        .blocked
                        .lock()
                        .expect("blocked lock")
                        .remove(&self.user);
                    self.retry = RetryPolicy::DEFAULT.start();
                    if poll {
                        let after = self.next_poll(fleet.clock.now(), any_session);
                        // Unplugged and without webhooks, a poll made
                        // before it was due (an operator's reload) leaves
                        // the schedule as it was: pushed out, a plug-in
                        // just after such a poll would be seen a whole
                        // interval late. In a session, as before.
                        next_poll = if due || any_session || fleet.webhooks_live(now) {
                            after
                        } else {
                            next_poll.min(after)
                        };
                    }
                }
                Err(RoundError::Relink) => return Stop::Relink,
                Err(RoundError::Wait(until)) => {
                    next_poll = until;
                }
            }
        }
    }

    /// This user's jitter source: seeded from the fleet's seed and the
    /// user id, so a run of one build repeats and users differ.
    fn rng(&self) -> SmallRng {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.user.as_str().hash(&mut h);
        SmallRng::seed_from_u64(self.fleet.seed ^ h.finish())
    }

    /// When to poll after a round at `now`: a safety net while webhooks
    /// deliver, else every `poll_fast` while a session runs, and every
    /// `poll_slow` otherwise, moved into the cheap hours when all the
    /// user's vehicles wait for a command on plug-in ([`CHEAP_SHARE`]).
    fn next_poll(&mut self, now: DateTime<Utc>, any_session: bool) -> DateTime<Utc> {
        let p = self.fleet.policy.borrow().global().clone();
        let every = |d: std::time::Duration| TimeDelta::from_std(d).unwrap_or_default();
        let waiting =
            self.states.values().all(|s| s.waits()) && self.states.values().any(|s| !s.unreachable);
        let curve = self.fleet.prices.borrow().clone();
        if self.fleet.webhooks_live(now) {
            self.poll_credit = None;
            now + every(self.fleet.safety_poll)
        } else if any_session {
            // The credit is kept: it goes on earning while the car is
            // plugged in (at most POLL_CREDIT_MAX), so the day's next
            // unplugged stretch (a weekend afternoon after the night's
            // session) starts with polls saved.
            now + every(p.poll_fast)
        } else if let (true, Some(curve)) = (waiting, curve) {
            let (at, credit) = moved_poll(&curve, now, every(p.poll_slow), self.poll_credit);
            self.poll_credit = Some((credit, now));
            at
        } else {
            self.poll_credit = None;
            now + every(p.poll_slow)
        }
    }

    /// When the next poll is due: the regular one at `next_poll`, or,
    /// without live webhooks, [`UserTask::edge_lead`] before the next edge
    /// of any vehicle when no poll will have been made within [`FRESH`]
    /// of it (so the edge itself is decided without a poll).
    fn poll_at(&self, now: DateTime<Utc>, next_poll: DateTime<Utc>) -> DateTime<Utc> {
        if self.fleet.webhooks_live(now) {
            return next_poll;
        }
        match self.states.values().filter_map(|s| s.next_edge(now)).min() {
            Some(edge) if self.polled_at.is_none_or(|p| p < edge - FRESH) => {
                next_poll.min(edge - self.edge_lead)
            }
            _ => next_poll,
        }
    }

    /// Whether a round at `now` must poll although no poll is due: after a
    /// session's departure not yet observed
    /// ([`ControlState::departure_unobserved`]); with live webhooks when
    /// the pushed state is not enough ([`UserTask::state_known`]);
    /// without, when the last poll is older than [`FRESH`] or a command
    /// waits for its confirmation.
    fn needs_poll(&self, now: DateTime<Utc>) -> bool {
        if self.states.values().any(|s| s.departure_unobserved(now)) {
            return true;
        }
        if self.fleet.webhooks_live(now) {
            return !self.state_known(now);
        }
        self.polled_at.is_none_or(|p| now - p > FRESH)
            || self
                .states
                .values()
                .any(|s| s.confirmation_due(now, self.polled_at))
    }

    /// Whether the state known from webhooks is good enough to act on at
    /// `now` without polling: webhooks deliver, every vehicle was seen,
    /// and no command is about to be sent again unconfirmed (a poll
    /// first makes sure it was not just a lost delivery).
    fn state_known(&self, now: DateTime<Utc>) -> bool {
        self.fleet.webhooks_live(now)
            && !self.tracked.is_empty()
            && self.states.values().all(|s| {
                s.pending
                    .as_ref()
                    .is_none_or(|p| now - p.sent_at < control::CONFIRM_TIMEOUT)
            })
    }

    /// Merges webhook events into what is known; returns the ids of the
    /// vehicles whose state changed.
    fn merge_events(&mut self, events: Vec<VehicleEvent>) -> Vec<String> {
        let mut changed = Vec::new();
        for e in events {
            match e.kind {
                VehicleEventKind::Updated(u) | VehicleEventKind::Discovered(u) => {
                    let id = u.vehicle.id.clone();
                    let t = self
                        .tracked
                        .entry(id.clone())
                        .or_insert_with(|| Box::new(TrackedVehicle::new(&id)));
                    if t.merge(&u, e.at) && !changed.contains(&id) {
                        changed.push(id);
                    }
                }
                VehicleEventKind::Deleted(id) => {
                    info!(vehicle.id = %id, "vehicle deleted at Enode; no longer controlled");
                    self.tracked.remove(&id);
                    self.states.remove(&id);
                    changed.retain(|c| *c != id);
                }
            }
        }
        changed
    }

    /// Runs the controller on the known state of `ids` (after webhook
    /// events), without polling.
    async fn act_on(&mut self, now: DateTime<Utc>, ids: &[String]) -> Result<bool, RoundError> {
        let mut any = false;
        for id in ids {
            let Some((v, at)) = self
                .tracked
                .get(id)
                .map(|t| (t.vehicle.clone(), t.newest().unwrap_or(now)))
            else {
                continue;
            };
            any |= self.vehicle(&v, at).await?;
        }
        self.settle_sites().await?;
        Ok(any)
    }

    /// When the user (or the user's vendor) may send again, if not now.
    /// While Enode reports the vendor down, that is the next look at the
    /// health report, and again until it recovers.
    fn blocked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.fleet.vendors_down.is_down(&self.vendor) {
            return Some(now + VENDOR_DOWN_RECHECK);
        }
        let vendor = self
            .fleet
            .vendors
            .lock()
            .expect("vendors lock")
            .get(&self.vendor)
            .and_then(|v| v.not_before);
        [self.not_before, vendor]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }

    /// One round: poll with the request slot `slot` (or, without one,
    /// take the state webhooks keep current), then plan and command each
    /// vehicle. Returns whether any vehicle is in a controlled session.
    async fn round(
        &mut self,
        now: DateTime<Utc>,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<bool, RoundError> {
        let vehicles: Vec<(Vehicle, DateTime<Utc>)> = if let Some(slot) = slot {
            self.commands_first(now).await?;
            let polled = self.poll(now, slot).await?;
            let at = self.fleet.clock.now();
            self.polled_at = Some(at);
            polled
                .into_iter()
                .map(|v| {
                    let id = v.id.clone();
                    let t = self
                        .tracked
                        .entry(id.clone())
                        .or_insert_with(|| Box::new(TrackedVehicle::new(&id)));
                    t.merge(
                        &VehicleUpdate {
                            vehicle: v,
                            present: FieldSet::ALL,
                        },
                        at,
                    );
                    (t.vehicle.clone(), at)
                })
                .collect()
        } else {
            self.tracked
                .values()
                .map(|t| (t.vehicle.clone(), t.newest().unwrap_or(now)))
                .collect()
        };
        // Charging vehicles first: at a block edge shared at a site their
        // STOPs go out before the others' STARTs.
        let mut vehicles = vehicles;
        vehicles.sort_by_key(|(v, _)| {
            v.charge_state.as_ref().and_then(|c| c.is_charging) != Some(true)
        });
        let mut any = false;
        for (v, at) in vehicles {
            any |= self.vehicle(&v, at).await?;
        }
        self.settle_sites().await?;
        Ok(any)
    }

    /// When requests are scarce (the user was rate limited within the
    /// last [`SCARCE_FOR`]), commands due at a block edge go out before the
    /// poll, on the last observation if it is recent, so a rate limit delays
    /// a poll rather than a START or STOP.
    async fn commands_first(&mut self, now: DateTime<Utc>) -> Result<(), RoundError> {
        if self.limited_at.is_none_or(|t| now - t >= SCARCE_FOR) {
            return Ok(());
        }
        // Two poll intervals, but never so old that the car may have left.
        let fresh = TimeDelta::from_std(self.fleet.policy.borrow().global().poll_fast * 2)
            .unwrap_or_default()
            .min(FRESH * 3);
        let due: Vec<(Vehicle, DateTime<Utc>)> = self
            .tracked
            .values()
            .filter_map(|t| Some((t.newest()?, &t.vehicle)))
            .filter(|(at, _)| now - *at <= fresh)
            .filter(|(_, v)| {
                let state = self.states.get(&v.id);
                let seen = Seen::from_vehicle(v, state.is_some_and(|s| s.session));
                state.is_some_and(|s| {
                    let drift = self
                        .fleet
                        .policy
                        .borrow()
                        .for_vehicle(self.user.as_str(), &v.id)
                        .replan_soc_drift_percent;
                    let version = prices_version(self.fleet.prices.borrow().as_deref());
                    matches!(s.decide(now, &seen, drift, version), Step::Command(..))
                })
            })
            .map(|(at, v)| (v.clone(), at))
            .collect();
        for (v, at) in due {
            debug!(vehicle.id = %v.id, "rate limited recently: command before the poll");
            self.vehicle(&v, at).await?;
        }
        Ok(())
    }

    async fn token(&self) -> Result<Secret, RoundError> {
        match self.fleet.keeper.access_token(&self.user).await {
            Ok(t) => Ok(t),
            Err(TokenError::NeedsRelink(_)) | Err(TokenError::Unknown(_)) => {
                Err(RoundError::Relink)
            }
            Err(e) => {
                // One line per episode: the keeper's own episode says why;
                // every user's loop retrying each minute must not add a
                // WARN per attempt.
                let now = self.fleet.clock.now();
                self.fleet.outages.failed(
                    "no access token",
                    now,
                    &format_args!("user {}: {e}", self.user),
                );
                Err(RoundError::Wait(now + TimeDelta::minutes(1)))
            }
        }
    }

    /// Lists the user's vehicles, holding the request slot `slot` (taken
    /// before the token: a token taken before a wait in the queue could
    /// expire in it).
    async fn poll(
        &mut self,
        now: DateTime<Utc>,
        slot: OwnedSemaphorePermit,
    ) -> Result<Vec<Vehicle>, RoundError> {
        let mut refreshed = false;
        let mut slot = Some(slot);
        loop {
            let permit = match slot.take() {
                Some(p) => p,
                // Again after a refresh: a new place in the queue.
                None => self
                    .fleet
                    .limiter
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("limiter open"),
            };
            let token = self.token().await?;
            let r = self
                .fleet
                .client
                .list_vehicles(&token, &VehicleField::POLL)
                .await;
            drop(permit);
            match r {
                Ok(v) => return Ok(v),
                Err(ApiError::Unauthorized(_)) if !refreshed => {
                    // Refresh once; a second 401 means the grant is gone.
                    refreshed = true;
                    match self.fleet.keeper.refresh(&self.user, Some(&token)).await {
                        Ok(_) => continue,
                        Err(TokenError::NeedsRelink(_)) => return Err(RoundError::Relink),
                        Err(e) => {
                            // No fresh token was had: a second 401 would
                            // prove nothing, so wait instead of relinking.
                            let now = self.fleet.clock.now();
                            self.fleet.outages.failed(
                                "refresh after 401",
                                now,
                                &format_args!("user {}: {e}", self.user),
                            );
                            return Err(RoundError::Wait(now + TimeDelta::minutes(1)));
                        }
                    }
                }
                Err(ApiError::Unauthorized(_)) => {
                    self.fleet
                        .keeper
                        .mark_needs_relink(&self.user, "401 after a fresh token");
                    return Err(RoundError::Relink);
                }
                Err(e) => return Err(self.failed(now, &e)),
            }
        }
    }

    /// Notes a failed request: Retry-After or backoff, per user and vendor.
    fn failed(&mut self, now: DateTime<Utc>, e: &ApiError) -> RoundError {
        let not_before = e.retry_after().map(|r| r.not_before);
        self.fleet
            .outages
            .failed(e.kind(), now, &format_args!("user {}: {e}", self.user));
        let wait = self.retry.next_wait(now, not_before);
        self.fleet
            .client
            .metrics()
            .blocked(false, wait.as_secs_f64());
        let until = now + TimeDelta::from_std(wait).unwrap_or_default();
        self.not_before = Some(until);
        self.fleet
            .blocked
            .lock()
            .expect("blocked lock")
            .insert(self.user.clone(), until);
        if matches!(e, ApiError::RateLimited { .. }) {
            self.limited_at = Some(now);
            let mut vendors = self.fleet.vendors.lock().expect("vendors lock");
            let v = vendors.entry(self.vendor.clone()).or_default();
            v.hits.retain(|(t, _)| now - *t < VENDOR_WINDOW);
            if !v.hits.iter().any(|(_, u)| *u == self.user) {
                v.hits.push((now, self.user.clone()));
            }
            if v.hits.len() >= VENDOR_HITS {
                let was_blocked = v.not_before.is_some_and(|t| t > now);
                let nb = v
                    .not_before
                    .filter(|_| was_blocked)
                    .map_or(until, |t| t.max(until));
                if !was_blocked {
                    // A rate limit that lasts re-blocks the vendor each
                    // time its backoff runs out: one episode, one WARN.
                    self.fleet.outages.failed(
                        "vendor rate limited",
                        now,
                        &format_args!(
                            "vendor {}: {} users rate limited within a minute; backing off all its users until {nb}",
                            self.vendor,
                            v.hits.len()
                        ),
                    );
                } else {
                    debug!(vendor = %self.vendor, until = %nb, "vendor backoff extended");
                }
                let from = v.not_before.filter(|_| was_blocked).unwrap_or(now);
                let added = (nb - from).to_std().unwrap_or_default();
                self.fleet
                    .client
                    .metrics()
                    .blocked(true, added.as_secs_f64());
                v.not_before = Some(nb);
            }
        }
        RoundError::Wait(until)
    }

    /// Handles one vehicle, observed at `seen_at`; returns whether it is
    /// in a controlled session.
    async fn vehicle(&mut self, v: &Vehicle, seen_at: DateTime<Utc>) -> Result<bool, RoundError> {
        let fleet = self.fleet.clone();
        let now = fleet.clock.now();
        let (policy, site) = self.policy_of(v);
        if let Some(s) = &site {
            self.sites.touch(&s.charging_location);
        }
        let mut state = match self.states.remove(&v.id) {
            Some(s) => s,
            None => {
                let s = fleet
                    .store
                    .control(&v.id)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                self.stored.insert(v.id.clone(), s.durable_digest());
                Box::new(s)
            }
        };
        let mut cx = Observation::default();
        let result = self
            .control(v, &policy, site.as_ref(), &mut state, now, seen_at, &mut cx)
            .await;
        let digest = state.durable_digest();
        if self.stored.get(&v.id) != Some(&digest) {
            if let Err(e) = fleet.store.put_control(&v.id, &state).await {
                warn!(vehicle.id = %v.id, error = %e, "cannot store control state");
            } else {
                self.stored.insert(v.id.clone(), digest);
            }
        }
        let target_percent = state
            .trip
            .as_ref()
            .filter(|t| t.in_session)
            .and_then(|t| t.target_percent)
            .unwrap_or(policy.target_percent);
        let explanation = control::explain(
            &state,
            fleet.clock.now(),
            &control::Context {
                seen: cx.seen.as_ref(),
                plugged: cx.seen.as_ref().and_then(|s| s.plugged),
                enode_smart_charging: cx.enode_smart_charging,
                has_prices: fleet.prices.borrow().is_some(),
                plan_error: self.plan_errors.get(&v.id).map(String::as_str),
                target_percent,
                tz: policy.time_zone,
                waiting_for_site: self.sites.waiting_at(&v.id),
            },
        );
        fleet.publish(
            &v.id,
            Live {
                user: self.user.clone(),
                state: (*state).clone(),
                seen: cx.seen,
                location: v.charging_location_id.clone(),
                explanation,
                target_percent,
                time_zone: policy.time_zone,
            },
        );
        // Fast polling only helps a vehicle Enode can reach.
        let session = state.session && !state.unreachable;
        self.states.insert(v.id.clone(), state);
        result.map(|()| session)
    }

    #[allow(clippy::too_many_arguments)]
    async fn control(
        &mut self,
        v: &Vehicle,
        policy: &VehiclePolicy,
        site: Option<&policy::Site>,
        state: &mut ControlState,
        now: DateTime<Utc>,
        seen_at: DateTime<Utc>,
        cx: &mut Observation,
    ) -> Result<(), RoundError> {
        let fleet = self.fleet.clone();
        let mut at_home = policy.allows_location(v.charging_location_id.as_deref());
        if let Some(scp) = v.smart_charging_policy.as_ref().filter(|p| p.is_enabled) {
            if policy.take_over_enode_smart_charging {
                // Until Enode says its policy is off, both would control.
                let disabled = match state.takeover_step(now) {
                    TakeOver::Send => {
                        state.takeover_sent(now);
                        self.take_over(v, scp, now).await?
                    }
                    TakeOver::GiveUp => {
                        warn!(vehicle.id = %v.id, attempts = control::MAX_ATTEMPTS, "Enode smart charging stays enabled although smartcharged disabled it; the vehicle is not controlled until it is plugged in again");
                        state.takeover_given_up();
                        false
                    }
                    TakeOver::Wait | TakeOver::GaveUp => false,
                };
                at_home &= disabled;
            } else {
                cx.enode_smart_charging = at_home;
                if at_home && !state.enode_noted {
                    info!(vehicle.id = %v.id, "Enode smart charging is enabled on this vehicle; not controlled (set take_over_enode_smart_charging to take over)");
                    state.enode_noted = true;
                }
                at_home = false;
            }
        }
        let seen = Seen::from_vehicle(v, at_home);
        cx.seen = Some(seen);
        let unreachable = v.is_reachable == Some(false);
        if unreachable != state.unreachable {
            if unreachable {
                warn!(vehicle.id = %v.id, "Enode cannot reach the vehicle; no commands and slow polling until it can");
            } else {
                info!(vehicle.id = %v.id, "the vehicle is reachable again");
            }
            state.unreachable = unreachable;
        }
        if unreachable {
            // Its charge state is stale: neither observe nor command.
            return Ok(());
        }
        let curve_now = fleet.prices.borrow().clone();
        // The interval since the last observation is accounted with what
        // the vehicle was doing then, before the observation changes it.
        let mut log = state.log.take();
        if let Some(l) = log.as_mut() {
            l.account(
                now,
                state.power_kw,
                curve_now.as_deref(),
                seen.charging == Some(true),
            );
        }
        let trip_target = state
            .trip
            .as_ref()
            .filter(|t| t.in_session)
            .and_then(|t| t.target_percent);
        let events = state.observe(now, &seen, policy.suspend_on_manual_override);
        if state.session {
            // When the observation was made, not when it is acted on: an
            // edge decided on an observation a few minutes old compares
            // the SoC with the plan at that time.
            state.observed_at = Some(seen_at.min(now));
        }
        for e in &events {
            match e {
                Event::PluggedIn => {
                    log = Some(super::sessions::SessionLog::start(
                        now,
                        seen.soc,
                        seen.charging == Some(true),
                    ));
                }
                Event::Unplugged => {
                    if let Some(l) = log.take() {
                        let target = trip_target
                            .unwrap_or(policy.target_percent)
                            .min(seen.charge_limit.unwrap_or(100.0));
                        let r = l.close(
                            &v.id,
                            self.user.as_str(),
                            now,
                            seen.soc,
                            target,
                            curve_now.as_deref(),
                        );
                        match fleet.store.put_session(&r).await {
                            Ok(()) => fleet.month.add(&r),
                            Err(e) => {
                                warn!(vehicle.id = %v.id, error = %e, "cannot store the plug-in session")
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if state.session {
            // A session already running when the log began (an older
            // stored state) is accounted from now on.
            state.log = log.or_else(|| {
                Some(super::sessions::SessionLog::start(
                    now,
                    seen.soc,
                    seen.charging == Some(true),
                ))
            });
        }
        for e in events {
            match e {
                Event::PluggedIn => {
                    info!(vehicle.id = %v.id, soc = ?seen.soc, "plugged in at a controlled location")
                }
                Event::Unplugged => {
                    info!(vehicle.id = %v.id, soc = ?seen.soc, "unplugged; control resumes at the next plug-in")
                }
                Event::Override(why) => {
                    warn!(vehicle.id = %v.id, reason = %why, "driver override: control suspended until unplugged")
                }
                Event::Confirmed(a) => {
                    debug!(vehicle.id = %v.id, action = a.as_str(), "command confirmed")
                }
                Event::SteeringEnded(why) => {
                    info!(vehicle.id = %v.id, reason = %why, "override or trip ended");
                    fleet
                        .journal(JournalEntry {
                            at: now,
                            user: self.user.to_string(),
                            vehicle: v.id.clone(),
                            action: "ENDED".into(),
                            reason: why,
                            price: None,
                            result: "ok".into(),
                        })
                        .await;
                }
            }
        }
        let curve = fleet.prices.borrow().clone();
        let version = prices_version(curve.as_deref());
        // Only a controlled vehicle takes part in its site's joint plan.
        let site = site.filter(|_| at_home);
        let was_waiting = self.sites.stop_waiting(&v.id);
        for _ in 0..3 {
            match state.decide(now, &seen, policy.replan_soc_drift_percent, version) {
                Step::Idle => break,
                Step::Plan(reason) => {
                    let Some(curve) = curve.as_deref() else {
                        debug!(vehicle.id = %v.id, "no prices yet; not planning");
                        break;
                    };
                    if let Some(site) = site {
                        // The whole site is planned again, this vehicle
                        // with the others.
                        if let Err(why) = self
                            .plan_site(site, v, state, curve, version, now, reason)
                            .await
                        {
                            if self.plan_errors.get(&v.id) != Some(&why) {
                                warn!(vehicle.id = %v.id, site = %site.charging_location, reason = %why, "cannot plan the site; trying again at each poll");
                                self.plan_errors.insert(v.id.clone(), why);
                            }
                            break;
                        }
                        continue;
                    }
                    match self.plan(v, policy, state, curve, version, now) {
                        Ok(p)
                            if reason == SWEEP_REASON
                                && state
                                    .plan
                                    .as_ref()
                                    .is_some_and(|cur| cur.still_good(&p.plan, now)) =>
                        {
                            debug!(vehicle.id = %v.id, "periodic sweep: the plan in force stays");
                            if let Some(cur) = state.plan.as_mut() {
                                cur.made_at = now;
                            }
                            state.replan = None;
                        }
                        Ok(p) => {
                            self.plan_errors.remove(&v.id);
                            info!(
                                vehicle.id = %v.id, reason, blocks = p.plan.blocks.len(),
                                schedule = %Schedule(&p.plan.blocks),
                                made_at = %now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                                energy_kwh = p.plan.energy_kwh, cost = p.plan.cost,
                                asap_cost = p.plan.asap_cost, feasible = p.plan.feasible,
                                deadline = %p.deadline, "plan made"
                            );
                            fleet.emit(FleetEvent::Planned {
                                user: self.user.clone(),
                                vehicle: v.id.clone(),
                                reason,
                                plan: p.clone(),
                            });
                            state.plan = Some(p);
                            state.replan = None;
                        }
                        Err(why) => {
                            // Once per reason, not at every poll.
                            if self.plan_errors.get(&v.id) != Some(&why) {
                                warn!(vehicle.id = %v.id, reason = %why, "cannot plan; trying again at each poll");
                                self.plan_errors.insert(v.id.clone(), why);
                            } else {
                                debug!(vehicle.id = %v.id, reason = %why, "cannot plan");
                            }
                            break;
                        }
                    }
                }
                Step::Command(action, reason) => {
                    if let Some(site) = site.filter(|_| action == Action::Start) {
                        // STOP before START: the others' power (a STOP not
                        // yet followed counts) must leave room for this one.
                        if !self.start_fits(site, v, state, now) {
                            self.sites.wait(&v.id, was_waiting, &site.charging_location);
                            break;
                        }
                    }
                    let price = curve.as_deref().and_then(|c| c.price_at(now));
                    self.command(v, state, action, reason, price, now).await?;
                    break;
                }
                Step::GiveUp(action) => {
                    warn!(vehicle.id = %v.id, action = action.as_str(), "vehicle did not follow the command; marked unresponsive until unplugged");
                    state.unresponsive = true;
                    state.pending = None;
                    break;
                }
            }
        }
        Ok(())
    }

    fn plan(
        &mut self,
        v: &Vehicle,
        policy: &VehiclePolicy,
        state: &ControlState,
        curve: &PriceCurve,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<ActivePlan, String> {
        let (policy, deadline) = goal(v, policy, state, now);
        let policy = &policy;
        let obs =
            policy::Observation::from_vehicle(v, state.power_kw.or(Some(ASSUMED_POWER_KW)), policy)
                .map_err(|e| e.to_string())?;
        let req =
            policy::plan_request(now, policy, deadline, &obs, curve).map_err(|e| e.to_string())?;
        let plan = self.fleet.plan(&req)?;
        Ok(ActivePlan {
            plan,
            made_at: now,
            deadline,
            soc_at_plan: req.soc_percent,
            battery_kwh: req.battery_kwh,
            power_kw: req.max_power_kw,
            efficiency: req.efficiency,
            prices_version: version,
        })
    }

    async fn command(
        &mut self,
        v: &Vehicle,
        state: &mut ControlState,
        action: Action,
        reason: &'static str,
        price: Option<f64>,
        now: DateTime<Utc>,
    ) -> Result<(), RoundError> {
        let fleet = self.fleet.clone();
        let token = self.token().await?;
        // How late this is after the block edge it serves (first sends
        // only: a resend is late on purpose).
        let edge = matches!(reason, control::BLOCK_STARTS | control::BLOCK_ENDS)
            .then(|| state.plan.as_ref())
            .flatten()
            .and_then(|p| crate::metrics::block_edge(&p.plan, action == Action::Start, now));
        // The command is pending, durably, before it is sent: a crash after
        // Enode applied it but before it was recorded would otherwise leave
        // a restarted daemon seeing a change it did not command (and taking
        // it for the driver's). A refused command counts as an attempt too,
        // so it is not resent at once.
        state.sent(action, now);
        if let Err(e) = fleet.store.put_control(&v.id, state).await {
            warn!(vehicle.id = %v.id, error = %e, "cannot store the pending command; sending it anyway");
        }
        let r = fleet
            .client
            .set_charging(&token, &v.id, action.to_api())
            .await;
        let metrics = fleet.client.metrics();
        metrics.command(action.as_str(), r.is_ok());
        if let Some(edge) = edge {
            metrics.block_edge_late((now - edge).as_seconds_f64());
        }
        let result = match &r {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        let entry = JournalEntry {
            at: now,
            user: self.user.to_string(),
            vehicle: v.id.clone(),
            action: action.as_str().into(),
            reason: reason.into(),
            price,
            result,
        };
        fleet.journal(entry.clone()).await;
        fleet.emit(FleetEvent::Command(entry));
        match r {
            Ok(()) => {
                self.sites.accepted(&v.id, action, fleet.clock.now());
                info!(vehicle.id = %v.id, action = action.as_str(), reason, price = ?price, "command sent");
                // Ask Enode to look at the vehicle soon, to confirm faster.
                if let Err(e) = fleet
                    .client
                    .watch_vehicle(&token, &v.id, &WatchProperty::AFTER_COMMAND)
                    .await
                {
                    debug!(vehicle.id = %v.id, error = %e, "watch request failed");
                    if matches!(e, ApiError::RateLimited { .. }) {
                        // The command went through (it is recorded); the
                        // rest of the round waits for the Retry-After.
                        return Err(self.failed(now, &e));
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.failed(now, &e)),
        }
    }

    /// Disables Enode's smart charging; returns whether Enode's answer
    /// shows it disabled.
    async fn take_over(
        &mut self,
        v: &Vehicle,
        scp: &SmartChargingPolicy,
        now: DateTime<Utc>,
    ) -> Result<bool, RoundError> {
        let fleet = self.fleet.clone();
        let token = self.token().await?;
        let off = SmartChargingPolicy {
            is_enabled: false,
            ..scp.clone()
        };
        let r = fleet
            .client
            .put_smart_charging_policy(&token, &v.id, &off)
            .await;
        fleet
            .client
            .metrics()
            .command("DISABLE_ENODE_SMART_CHARGING", r.is_ok());
        let entry = JournalEntry {
            at: now,
            user: self.user.to_string(),
            vehicle: v.id.clone(),
            action: "DISABLE_ENODE_SMART_CHARGING".into(),
            reason: "take_over_enode_smart_charging = true".into(),
            price: None,
            result: r.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into()),
        };
        fleet.journal(entry).await;
        match r {
            Ok(stored) => {
                info!(vehicle.id = %v.id, "disabled Enode smart charging to take over control (take_over_enode_smart_charging = true)");
                Ok(!stored.is_enabled)
            }
            Err(e) => Err(self.failed(now, &e)),
        }
    }
}

/// The policy a plan of `v` is made with, and its deadline: a trip of this
/// session sets the deadline and maybe the target; otherwise the policy's
/// next deadline (a replan keeps the one in force).
fn goal(
    v: &Vehicle,
    policy: &VehiclePolicy,
    state: &ControlState,
    now: DateTime<Utc>,
) -> (VehiclePolicy, DateTime<Utc>) {
    let current = state.plan.as_ref().map(|p| p.deadline);
    let trip = state
        .trip
        .as_ref()
        .filter(|t| t.in_session && t.depart > now);
    let mut policy = policy.clone();
    if let Some(target) = trip.and_then(|t| t.target_percent) {
        policy.target_percent = target;
    }
    let deadline = match trip {
        Some(t) => t.depart,
        None => policy::replan_deadline(&policy, v.smart_charging_policy.as_ref(), now, current),
    };
    (policy, deadline)
}

/// What [`UserTask::control`] learnt for the explanation.
#[derive(Default)]
struct Observation {
    /// The observation as the controller read it.
    seen: Option<Seen>,
    /// Enode's smart charging is on and not taken over.
    enode_smart_charging: bool,
}

impl UserTask {
    /// Applies an operator's change: stored (flushed) and journaled, then
    /// the vehicle is decided again at once on its last observation, so a
    /// charge-now sends its START now rather than at the next poll. Returns
    /// why the loop must stop, if it must.
    async fn steer(&mut self, req: SteerRequest) -> Option<Stop> {
        let fleet = self.fleet.clone();
        let now = fleet.clock.now();
        // The vehicle as polls and webhooks last told it, once the
        // controller has a state for it (it has decided on it before).
        let known = self
            .tracked
            .get(&req.vehicle)
            .zip(self.states.get(&req.vehicle))
            .map(|(t, s)| (t.newest().unwrap_or(now), t.vehicle.clone(), (**s).clone()));
        let Some((seen_at, v, mut state)) = known else {
            let _ = req.reply.send(Err(SteerError::NotSeen(req.vehicle)));
            return None;
        };
        let (action, reason) = match &req.change {
            Change::Override(Some(o)) => {
                if !state.session {
                    let _ = req.reply.send(Err(SteerError::NotPluggedIn(req.vehicle)));
                    return None;
                }
                let mut why = o.mode.as_str().to_owned();
                if let Some(u) = o.until {
                    why.push_str(&format!(" until {}", u.to_rfc3339()));
                }
                if let Some(soc) = o.soc {
                    why.push_str(&format!(" until {soc} %"));
                }
                state.set_override(Some(o.clone()));
                ("OVERRIDE", why)
            }
            Change::Override(None) => {
                state.set_override(None);
                ("OVERRIDE", "auto".to_owned())
            }
            Change::Trip(t) => {
                let why = match t {
                    Some(t) => format!(
                        "depart {}{}",
                        t.depart.to_rfc3339(),
                        t.target_percent
                            .map(|p| format!(" with {p} %"))
                            .unwrap_or_default()
                    ),
                    None => "cancelled".into(),
                };
                state.set_trip(t.clone());
                ("TRIP", why)
            }
            Change::Replan => {
                state.replan = Some("asked to replan".into());
                ("REPLAN", String::new())
            }
        };
        if let Err(e) = fleet.store.put_control(&v.id, &state).await {
            let _ = req.reply.send(Err(SteerError::Store(e.to_string())));
            return None;
        }
        self.stored.insert(v.id.clone(), state.durable_digest());
        self.states.insert(v.id.clone(), Box::new(state));
        info!(vehicle.id = %v.id, action, reason = %reason, by = %req.by, "operator change");
        fleet
            .journal(JournalEntry {
                at: now,
                user: self.user.to_string(),
                vehicle: v.id.clone(),
                action: action.into(),
                reason: if reason.is_empty() {
                    format!("by {}", req.by)
                } else {
                    format!("{reason} (by {})", req.by)
                },
                price: None,
                result: "ok".into(),
            })
            .await;
        // Decide again now (on the last observation) unless the user must
        // wait for a rate limit; then the next round does.
        let mut stop = None;
        if self.blocked_until(now).is_none() {
            let r = match self.vehicle(&v, seen_at).await {
                Ok(_) => self.settle_sites().await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {}
                Err(RoundError::Relink) => stop = Some(Stop::Relink),
                Err(RoundError::Wait(_)) => {}
            }
        }
        let _ = req.reply.send(Ok(()));
        stop
    }
}

/// Why a round ended early.
#[derive(Debug)]
enum RoundError {
    /// The user must link again.
    Relink,
    /// Try again at this instant.
    Wait(DateTime<Utc>),
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::prices::Slot;

    #[test]
    fn schedules_log_as_iso_intervals() {
        let t = |h, m| Utc.with_ymd_and_hms(2024, 3, 4, h, m, 0).unwrap();
        let block = |start, end| planner::Block {
            start,
            end,
            energy_kwh: 1.0,
            cost: 0.1,
            tentative: false,
        };
        let blocks = [block(t(1, 0), t(2, 30)), block(t(4, 15), t(5, 0))];
        assert_eq!(
            Schedule(&blocks).to_string(),
            "2024-03-04T01:00:00Z/2024-03-04T02:30:00Z 2024-03-04T04:15:00Z/2024-03-04T05:00:00Z"
        );
        assert_eq!(Schedule(&[]).to_string(), "");
    }

    /// The credit of a waiting car's moved polls goes to the end of a
    /// long cheap stretch, where a plug-in seen late moves charging into a
    /// dear hour: the uniform pace before, twice it once the credit covers
    /// the rest, and no more polls a day than the uniform pace plus
    /// POLL_CREDIT_MAX.
    #[test]
    fn moved_polls_spend_the_credit_at_the_end_of_a_cheap_stretch() {
        let t = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2024, 8, d, h, m, 0).unwrap();
        // Two days: 00-10 at 100, a sunny 10-16 at -10, 16-24 at 150.
        let slots = (10..12)
            .flat_map(|d| (0..24).map(move |h| (d, h)))
            .map(|(d, h)| Slot {
                start: t(d, h, 0),
                end: t(d, h, 0) + TimeDelta::hours(1),
                price: match h {
                    0..10 => 100.0,
                    10..16 => -10.0,
                    _ => 150.0,
                },
            })
            .collect();
        let curve = PriceCurve::new("EUR", slots).unwrap();
        let slow = TimeDelta::minutes(30);
        let (mut now, mut last) = (t(10, 6, 0), None);
        let mut polls = vec![];
        while now < t(11, 6, 0) {
            polls.push(now);
            let (next, credit) = moved_poll(&curve, now, slow, last);
            last = Some((credit, now));
            now = next;
        }
        let gaps = |from, to| {
            polls
                .windows(2)
                .filter(|w| w[0] >= from && w[0] < to)
                .map(|w| (w[1] - w[0]).num_minutes())
                .collect::<Vec<_>>()
        };
        // the dear morning: every hour, four polls of credit saved
        assert_eq!(gaps(t(10, 6, 0), t(10, 10, 0)), [60; 4]);
        // the stretch's start: the uniform pace, the credit is kept ...
        assert_eq!(gaps(t(10, 10, 0), t(10, 14, 0)), [30; 8]);
        // ... for its last two hours, polled every 15 minutes
        assert_eq!(gaps(t(10, 14, 0), t(10, 16, 0)), [15; 8]);
        assert!(
            polls.len() <= 48 + POLL_CREDIT_MAX as usize,
            "{}",
            polls.len()
        );
    }

    /// A user's inbox holds at most [`STEER_QUEUE_MAX`] changes, hands
    /// them out oldest first, and wakes the task for each; a change beyond
    /// the bound comes back to be refused, and dropping the inbox (the
    /// loop ended) drops the waiting replies, which answers "inactive".
    #[tokio::test(start_paused = true)]
    async fn the_steer_queue_is_bounded_and_ordered() {
        let inbox = UserInbox::default();
        let mut replies = vec![];
        let request = |i: usize| {
            let (reply, rx) = oneshot::channel();
            let req = Box::new(SteerRequest {
                vehicle: format!("v{i}"),
                change: Change::Replan,
                by: "test".into(),
                reply,
            });
            (req, rx)
        };
        for i in 0..STEER_QUEUE_MAX {
            let (req, rx) = request(i);
            inbox.push_steer(req).expect("room");
            replies.push(rx);
        }
        let (extra, _rx) = request(STEER_QUEUE_MAX);
        let back = inbox.push_steer(extra).expect_err("full");
        assert_eq!(back.vehicle, format!("v{STEER_QUEUE_MAX}"));
        // The pushes left a wake-up for the task.
        tokio::time::timeout(std::time::Duration::from_secs(1), inbox.notify.notified())
            .await
            .expect("woken");
        assert_eq!(inbox.next_steer().map(|r| r.vehicle), Some("v0".into()));
        drop(inbox);
        for rx in replies.into_iter().skip(1) {
            assert!(rx.await.is_err(), "a reply outlived the inbox");
        }
    }
}
