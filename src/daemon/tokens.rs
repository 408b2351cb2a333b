//! The token keeper: keeps every linked user's access token fresh.
//!
//! One task keeps the schedule of every active user: each user waits in
//! it until shortly before its access token expires (the lead time,
//! capped for short-lived tokens, minus a random jitter so users linked
//! together spread out) and then refreshes.
//! Users that are already due when the keeper starts (after a restart or a
//! suspend) are spread over up to [`OVERDUE_SPREAD`], still well before
//! their tokens expire, and at most [`MAX_REFRESHES_IN_FLIGHT`] refreshes
//! are in flight at once: a crash can catch only those few between the
//! server's rotation and the flush.
//!
//! Refreshes are single-flight per user: a per-user mutex is held from the
//! request to the durable write, so two refreshes of one refresh token never
//! race (the server would revoke the grant). The section "send refresh ->
//! receive answer -> write + flush the rotated tokens" runs as a task of its
//! own: cancelling or dropping whoever waits for it (shutdown, a dropped
//! caller) cannot leave a rotated token unwritten. Only the death of the
//! process between the server's answer and the flush can (see
//! ARCHITECTURE.md).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clock::Clock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::config::TokenConfig;
use crate::enode::{AuthError, Client};
use crate::limits;
use crate::model::TokenSet;
use crate::outage::Outages;
use crate::retry::{Policy, Retry};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::users::{UserId, UserStatus};

/// An access token is handed out only with at least this much life left,
/// so that it cannot expire between the hand-out and the server's check.
const MIN_VALIDITY: TimeDelta = TimeDelta::seconds(5);

/// Lead time and jitter are each capped at this fraction of the token's
/// lifetime, so short-lived tokens are refreshed late in their life (at
/// 75-87.5 %) rather than twice as often as needed.
const LIFETIME_SHARE: u32 = 8;

/// Refreshes that are due already when the keeper plans them (every user
/// whose refresh time passed while the daemon was down) are spread over at
/// most this long after now, and over at most half of the time their
/// access token has left, so each still happens well before expiry.
/// Without it every overdue user refreshes in the same instant after a
/// restart, and a crash then catches many rotations at once.
pub const OVERDUE_SPREAD: Duration = Duration::from_secs(60);

/// Refreshes in flight at once, across all users (request sent, answer not
/// yet stored). A kill -9 can lose only a rotation in flight, so this also
/// bounds what one crash can cost. A refresh takes a few milliseconds
/// against a healthy server, so a few permits keep up with any fleet: at
/// 50 ms each, 4 permits refresh 10,000 hourly users in about 2 minutes.
pub const MAX_REFRESHES_IN_FLIGHT: usize = 4;

/// Why no token could be had for a user.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user is not in the store.
    #[error("user {0} is not linked")]
    Unknown(UserId),
    /// The grant is gone; the user must link again.
    #[error("user {0} must link again")]
    NeedsRelink(UserId),
    /// The refresh failed in a way that may heal; try later.
    #[error("token refresh for user {user} failed: {source}")]
    Refresh {
        /// The user.
        user: UserId,
        /// Why.
        source: AuthError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One user's token state.
struct Slot {
    /// Held from a refresh request until its result is durably stored.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The tokens in force: always equal to what the store holds.
    current: RwLock<TokenSet>,
    /// How long the tokens lasted when obtained (for capping the lead time).
    lifetime: RwLock<Duration>,
    /// Set once the user needs relinking; it leaves the schedule.
    dead: RwLock<bool>,
    /// When the tokens were last obtained, for the refresh floor.
    obtained_at: RwLock<DateTime<Utc>>,
    /// Counts changes of `current`, so the schedule can tell that a caller
    /// refreshed (or the user was linked again) while the user waited.
    generation: AtomicU64,
    /// Where the user stands in [`TokenKeeper::run`]'s schedule.
    sched: Mutex<Sched>,
}

/// One user's place in the keeper's schedule.
#[derive(Debug, Default)]
struct Sched {
    /// When the user's refresh is due; `None` while none is planned
    /// (one runs, or the user needs relinking).
    at: Option<DateTime<Utc>>,
    /// [`Slot::generation`] when `at` was planned.
    generation: u64,
    /// Backoff while refreshes fail; `None` after a success.
    retry: Option<Box<Retry>>,
    /// A refresh the schedule started has not ended yet.
    running: bool,
}

/// Keeps the access tokens of all linked users fresh; hands them out.
pub struct TokenKeeper {
    /// Where tokens are persisted.
    store: Store,
    /// The Enode client, whose OAuth side refreshes.
    client: Client,
    /// The daemon's clock.
    clock: Clock,
    /// Lead time and jitter.
    config: TokenConfig,
    /// Users the keeper knows, by id.
    slots: Mutex<HashMap<UserId, Arc<Slot>>>,
    /// The refresh sections in flight, so shutdown can let them finish.
    inflight: TaskTracker,
    /// Users to plan (again) in [`TokenKeeper::run`]'s schedule.
    added: tokio::sync::mpsc::UnboundedSender<UserId>,
    /// Receiving end, taken by [`TokenKeeper::run`].
    added_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<UserId>>>,
    /// Failing refreshes, logged once per episode rather than per retry.
    outages: Outages,
    /// Jitter and spread; seeded, so tests can repeat a schedule.
    rng: Mutex<StdRng>,
    /// One permit per refresh in flight ([`MAX_REFRESHES_IN_FLIGHT`]).
    permits: Arc<Semaphore>,
}

impl TokenKeeper {
    /// A keeper over `store`; call [`TokenKeeper::load`] then [`TokenKeeper::run`].
    pub fn new(store: Store, client: Client, clock: Clock, config: TokenConfig) -> Arc<Self> {
        Self::with_seed(store, client, clock, config, rand::random())
    }

    /// [`TokenKeeper::new`] with the seed of its jitter and spread given,
    /// so a test can repeat a refresh schedule.
    pub fn with_seed(
        store: Store,
        client: Client,
        clock: Clock,
        config: TokenConfig,
        seed: u64,
    ) -> Arc<Self> {
        let (added, added_rx) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(TokenKeeper {
            store,
            client,
            clock,
            config,
            slots: Mutex::new(HashMap::new()),
            inflight: TaskTracker::new(),
            added,
            added_rx: Mutex::new(Some(added_rx)),
            outages: Outages::new("token refresh"),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            permits: Arc::new(Semaphore::new(MAX_REFRESHES_IN_FLIGHT)),
        })
    }

    /// Loads every active user with tokens from the store; returns how many.
    pub fn load(&self) -> Result<usize, StoreError> {
        self.load_active().map(|u| u.len())
    }

    /// Loads every active user with tokens from the store; returns them,
    /// the users whose vehicles the fleet controls, read in one pass over
    /// the users and tokens trees.
    pub fn load_active(&self) -> Result<Vec<crate::users::User>, StoreError> {
        let linked = self.store.active_users_with_tokens()?;
        let mut users = Vec::with_capacity(linked.len());
        for (user, tokens) in linked {
            self.insert(user.id.clone(), tokens, true);
            users.push(user);
        }
        Ok(users)
    }

    /// Starts keeping a newly linked user (whose tokens are already stored).
    /// A user the keeper already keeps (linked again while active) gets the
    /// new tokens in its existing slot, under its refresh mutex, and keeps
    /// its one place in the schedule, planned again from the new tokens: a
    /// second would refresh the old grant beside the new one. A refresh of
    /// the old grant that finished meanwhile may have overwritten the
    /// stored tokens, so the new ones are stored again; one that was
    /// refused meanwhile (the new link revoked the old grant) marked the
    /// user needs-relink, which the new link undoes.
    pub async fn add_user(&self, user: UserId, tokens: TokenSet) -> Result<(), StoreError> {
        let existing = self.slots.lock().expect("slots lock").get(&user).cloned();
        if let Some(slot) = existing.filter(|s| !*s.dead.read().expect("dead lock")) {
            let _guard = slot.refresh.lock().await;
            self.store.rotate_tokens_grouped(&user, &tokens).await?;
            // Dead by now: the old grant's refresh, in flight while this
            // waited, was refused (the new link revoked it) and marked the
            // user needs-relink over the new link. The new tokens win.
            if *slot.dead.read().expect("dead lock") {
                self.store.set_status(&user, UserStatus::Active)?;
                info!(user.id = %user, "linked again while the old grant was refused; control resumes");
            } else {
                let now = self.clock.now();
                *slot.lifetime.write().expect("lifetime lock") = lifetime(&tokens, now);
                *slot.obtained_at.write().expect("obtained lock") = now;
                *slot.current.write().expect("tokens lock") = tokens;
                slot.generation.fetch_add(1, Ordering::SeqCst);
                // Planned again from the new tokens now, not at the old
                // tokens' refresh time.
                let _ = self.added.send(user);
                return Ok(());
            }
        }
        self.insert(user.clone(), tokens, false);
        let _ = self.added.send(user);
        Ok(())
    }

    /// Stops keeping `user` (an unlink has begun). A refresh in flight is
    /// stored first: the user's refresh mutex is taken before the slot is
    /// dropped, so no refresh runs afterwards; the user leaves the schedule
    /// at its next due time. The stored tokens stay until the unlink finishes
    /// ([`crate::store::Store::finish_unlink`]); if Enode refuses the
    /// unlink, [`TokenKeeper::add_user`] takes them back.
    pub async fn drop_user(&self, user: &UserId) {
        let slot = self.slots.lock().expect("slots lock").get(user).cloned();
        let _guard = match &slot {
            Some(s) => Some(s.refresh.clone().lock_owned().await),
            None => None,
        };
        if let Some(s) = &slot {
            *s.dead.write().expect("dead lock") = true;
        }
        self.slots.lock().expect("slots lock").remove(user);
    }

    /// Adds a slot. Fresh tokens (`loaded` false) last what they have left.
    /// For tokens loaded from the store the lifetime is unknown (only the
    /// expiry is stored) and what is left would understate it, putting the
    /// refresh of every loaded user late in what is left: they are assumed
    /// to last long enough for the configured lead time, so a user whose
    /// refresh time passed while the daemon was down is overdue and spread
    /// by [`next_refresh`]. The first refresh learns the real lifetime.
    fn insert(&self, user: UserId, tokens: TokenSet, loaded: bool) {
        let now = self.clock.now();
        let mut life = lifetime(&tokens, now);
        if loaded {
            life = life.max(self.config.refresh_lead * LIFETIME_SHARE);
        }
        let slot = Arc::new(Slot {
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            lifetime: RwLock::new(life),
            current: RwLock::new(tokens),
            dead: RwLock::new(false),
            // Loaded tokens may be refreshed at once if they are due.
            obtained_at: RwLock::new(
                now - TimeDelta::from_std(limits::REFRESH_FLOOR).unwrap_or_default(),
            ),
            generation: AtomicU64::new(0),
            sched: Mutex::new(Sched::default()),
        });
        self.slots.lock().expect("slots lock").insert(user, slot);
    }

    fn slot(&self, user: &UserId) -> Result<Arc<Slot>, TokenError> {
        self.slots
            .lock()
            .expect("slots lock")
            .get(user)
            .cloned()
            .ok_or_else(|| TokenError::Unknown(user.clone()))
    }

    /// Users the keeper holds, in no particular order.
    pub fn users(&self) -> Vec<UserId> {
        self.slots
            .lock()
            .expect("slots lock")
            .keys()
            .cloned()
            .collect()
    }

    /// A valid access token for `user`, refreshing first if the current one
    /// has less than a few seconds left.
    pub async fn access_token(&self, user: &UserId) -> Result<Secret, TokenError> {
        let slot = self.slot(user)?;
        if *slot.dead.read().expect("dead lock") {
            return Err(TokenError::NeedsRelink(user.clone()));
        }
        let t = slot.current.read().expect("tokens lock").clone();
        if t.expires_at - self.clock.now() > MIN_VALIDITY {
            return Ok(t.access_token);
        }
        Ok(self
            .refresh(user, Some(&t.access_token))
            .await?
            .access_token)
    }

    /// Refreshes `user`'s tokens unless someone already replaced `stale`
    /// (pass the token that failed, e.g. after a 401; `None` forces a
    /// refresh). Returns the tokens in force afterwards.
    pub async fn refresh(
        &self,
        user: &UserId,
        stale: Option<&Secret>,
    ) -> Result<TokenSet, TokenError> {
        let slot = self.slot(user)?;
        let guard = slot.refresh.clone().lock_owned().await;
        if *slot.dead.read().expect("dead lock") {
            return Err(TokenError::NeedsRelink(user.clone()));
        }
        let current = slot.current.read().expect("tokens lock").clone();
        if let Some(stale) = stale {
            if current.access_token != *stale
                && current.expires_at - self.clock.now() > MIN_VALIDITY
            {
                return Ok(current); // another caller refreshed meanwhile
            }
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            mark_relink(
                &self.store,
                user,
                &slot,
                "no refresh token (grant without offline_access)",
            )?;
            return Err(TokenError::NeedsRelink(user.clone()));
        };
        // A permit before the request: at most a few rotations are ever in
        // flight. Waiting for one is cancellable (nothing was sent yet).
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the permits are never closed");
        // The uncancellable section: request, answer, durable write.
        let client = self.client.clone();
        let store = self.store.clone();
        let clock = self.clock.clone();
        let id = user.clone();
        let slot2 = slot.clone();
        let section = self.inflight.spawn(
            async move {
                let _guard = guard;
                let _permit = permit;
                let started = clock.now();
                let fresh = match client.auth().refresh(&refresh_token).await {
                    Ok(fresh) => fresh,
                    Err(AuthError::InvalidGrant { description }) => {
                        // Marked before the refresh mutex is let go: a new
                        // link waiting for it then finds the slot dead and
                        // starts afresh instead of being marked after it.
                        let why = description
                            .clone()
                            .unwrap_or_else(|| "invalid_grant".into());
                        mark_relink(&store, &id, &slot2, &why).map_err(Section::Store)?;
                        return Err(Section::Auth(AuthError::InvalidGrant { description }));
                    }
                    Err(e) => return Err(e.into()),
                };
                store
                    .rotate_tokens_grouped(&id, &fresh)
                    .await
                    .map_err(Section::Store)?;
                *slot2.lifetime.write().expect("lifetime lock") = lifetime(&fresh, started);
                *slot2.obtained_at.write().expect("obtained lock") = started;
                *slot2.current.write().expect("tokens lock") = fresh.clone();
                slot2.generation.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Section>(fresh)
            }
            .in_current_span(),
        );
        let section = section.await;
        let metrics = self.client.metrics();
        match &section {
            Ok(Ok(_)) => metrics.token_refresh("ok"),
            Ok(Err(Section::Auth(AuthError::InvalidGrant { .. }))) => {
                metrics.token_refresh("invalid_grant")
            }
            _ => metrics.token_refresh("failed"),
        }
        match section {
            Ok(Ok(fresh)) => {
                debug!(expires_at = %fresh.expires_at, "token refreshed");
                Ok(fresh)
            }
            Ok(Err(Section::Auth(AuthError::InvalidGrant { .. }))) => {
                Err(TokenError::NeedsRelink(user.clone())) // marked in the section
            }
            Ok(Err(Section::Auth(e))) => Err(TokenError::Refresh {
                user: user.clone(),
                source: e,
            }),
            Ok(Err(Section::Store(e))) => Err(e.into()),
            Err(join) => Err(TokenError::Refresh {
                user: user.clone(),
                source: AuthError::Transient(format!("refresh task failed: {join}")),
            }),
        }
    }

    /// Marks a user as needing relink from outside (a 401 with a fresh
    /// token): it leaves the schedule and no token is handed out any more.
    pub fn mark_needs_relink(&self, user: &UserId, why: &str) {
        if let Ok(slot) = self.slot(user) {
            if let Err(e) = mark_relink(&self.store, user, &slot, why) {
                warn!(user.id = %user, error = %e, "cannot store the needs-relink status");
            }
        }
    }

    /// When `user`'s next refresh is due: see [`next_refresh`].
    fn due(&self, slot: &Slot) -> DateTime<Utc> {
        let (jitter, spread) = {
            let mut rng = self.rng.lock().expect("rng lock");
            (rng.gen::<f64>(), rng.gen::<f64>())
        };
        next_refresh(&Plan {
            now: self.clock.now(),
            expires: slot.current.read().expect("tokens lock").expires_at,
            lifetime: *slot.lifetime.read().expect("lifetime lock"),
            obtained_at: *slot.obtained_at.read().expect("obtained lock"),
            lead: self.config.refresh_lead,
            jitter: self.config.refresh_jitter,
            jitter_draw: jitter,
            spread_draw: spread,
        })
    }

    /// Keeps every user's refresh schedule until `cancel` fires, then waits
    /// for the refreshes it started to be stored. Dropping the returned
    /// future instead aborts those refreshes wherever they are; one already
    /// sent still completes and is stored (see [`TokenKeeper::drain`]).
    ///
    /// One task and one timer serve the whole fleet: the users wait in a
    /// queue ordered by their next refresh, and only a refresh that is due
    /// runs as a task of its own. A task per user, asleep almost all of
    /// the time, cost about a kilobyte each (10 MB for 10,000 users).
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut added = self
            .added_rx
            .lock()
            .expect("added lock")
            .take()
            .expect("TokenKeeper::run is called once");
        // Every user whose refresh is planned, by when it is due.
        let mut queue = BTreeSet::new();
        // The refreshes started here, and whose they are: the user and the
        // slot the refresh was for (a task that panicked still names its
        // user, who is then retried; the result for a slot since replaced
        // by a new link is dropped).
        let mut running = tokio::task::JoinSet::new();
        let mut whose = HashMap::new();
        for user in self.users() {
            self.schedule(&mut queue, &user, None);
        }
        info!(users = queue.len(), "token keeper started");
        loop {
            let next = queue.first().map(|(t, _): &(DateTime<Utc>, UserId)| *t);
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(user) = added.recv() => self.schedule(&mut queue, &user, None),
                _ = self.clock.sleep_until(next.unwrap_or_default()), if next.is_some() => {
                    let now = self.clock.now();
                    while queue.first().is_some_and(|(t, _)| *t <= now) {
                        let Some((at, user)) = queue.pop_first() else { break };
                        if let Some((slot, task)) = self.start(&mut queue, at, &user) {
                            let span = tracing::info_span!("tokens", user.id = %user);
                            let id = running.spawn(task.instrument(span)).id();
                            whose.insert(id, (user, slot));
                        }
                    }
                }
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let (id, done) = match done {
                        Ok((id, r)) => (id, Ok(r)),
                        Err(e) => (e.id(), Err(e)),
                    };
                    if let Some((user, slot)) = whose.remove(&id) {
                        let outcome = done.unwrap_or_else(|e| Err(TokenError::Refresh {
                            user: user.clone(),
                            source: AuthError::Transient(format!("refresh task failed: {e}")),
                        }));
                        self.finished(&mut queue, &user, &slot, outcome);
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
        self.drain().await;
    }

    /// Waits until every refresh in flight has been stored (or failed).
    pub async fn drain(&self) {
        self.inflight.close();
        self.inflight.wait().await;
        self.inflight.reopen();
    }

    /// Plans `user`'s next refresh: at `at`, or when [`next_refresh`] says.
    /// A user whose scheduled refresh still runs is left alone: its end
    /// plans the next one.
    fn schedule(
        &self,
        queue: &mut BTreeSet<(DateTime<Utc>, UserId)>,
        user: &UserId,
        at: Option<DateTime<Utc>>,
    ) {
        let Ok(slot) = self.slot(user) else { return };
        let mut s = slot.sched.lock().expect("sched lock");
        if s.running {
            return;
        }
        if let Some(old) = s.at.take() {
            queue.remove(&(old, user.clone()));
        }
        // The generation first: tokens replaced while `due` reads them
        // make the plan stale, and `start` then plans again.
        s.generation = slot.generation.load(Ordering::SeqCst);
        let at = at.unwrap_or_else(|| self.due(&slot));
        s.at = Some(at);
        queue.insert((at, user.clone()));
    }

    /// The refresh of `user`, due at `at`, to run now; `None` when there is
    /// nothing to do: the entry is stale (the user was planned again, or
    /// unlinked), the user needs relinking, or a caller refreshed meanwhile
    /// (then the user is planned from the tokens in force).
    fn start(
        self: &Arc<Self>,
        queue: &mut BTreeSet<(DateTime<Utc>, UserId)>,
        at: DateTime<Utc>,
        user: &UserId,
    ) -> Option<(
        Arc<Slot>,
        impl std::future::Future<Output = Result<TokenSet, TokenError>> + Send + 'static,
    )> {
        let slot = self.slot(user).ok()?;
        let mut s = slot.sched.lock().expect("sched lock");
        if s.at != Some(at) {
            return None;
        }
        s.at = None;
        if *slot.dead.read().expect("dead lock") {
            return None; // needs relinking, or unlinked
        }
        if slot.generation.load(Ordering::SeqCst) != s.generation {
            drop(s);
            self.schedule(queue, user, None);
            return None;
        }
        s.running = true;
        let stale = slot
            .current
            .read()
            .expect("tokens lock")
            .access_token
            .clone();
        drop(s);
        let keeper = self.clone();
        let user = user.clone();
        Some((
            slot,
            async move { keeper.refresh(&user, Some(&stale)).await },
        ))
    }

    /// Plans what follows a scheduled refresh of `user`: the next one after
    /// a success, a retry after a failure that may heal, nothing once the
    /// user needs relinking. Nothing either when the user's slot is no
    /// longer `ran` (unlinked, or linked again as a new slot, which has a
    /// schedule of its own).
    fn finished(
        &self,
        queue: &mut BTreeSet<(DateTime<Utc>, UserId)>,
        user: &UserId,
        ran: &Arc<Slot>,
        outcome: Result<TokenSet, TokenError>,
    ) {
        let Ok(slot) = self.slot(user) else { return };
        if !Arc::ptr_eq(&slot, ran) {
            return;
        }
        let mut s = slot.sched.lock().expect("sched lock");
        s.running = false;
        let at = match outcome {
            Ok(_) => {
                self.outages.succeeded(self.clock.now());
                s.retry = None;
                None
            }
            Err(TokenError::NeedsRelink(_)) | Err(TokenError::Unknown(_)) => {
                if *slot.dead.read().expect("dead lock") {
                    return;
                }
                None // not marked after all: planned as usual
            }
            Err(e) => {
                let not_before = match &e {
                    TokenError::Refresh {
                        source:
                            AuthError::RateLimited {
                                retry_after: Some(r),
                            },
                        ..
                    } => Some(r.not_before),
                    _ => None,
                };
                let now = self.clock.now();
                let wait = s
                    .retry
                    .get_or_insert_with(|| Box::new(Policy::DEFAULT.start()))
                    .next_wait(now, not_before);
                let kind = match &e {
                    TokenError::Refresh { source, .. } => source.kind(),
                    _ => "store",
                };
                self.outages.failed(kind, now, &e);
                debug!(user.id = %user, error = %e, retry_in_s = wait.as_secs_f64(), "token refresh failed; retrying");
                Some(now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::zero()))
            }
        };
        drop(s);
        self.schedule(queue, user, at);
    }
}

/// What [`next_refresh`] plans from.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The clock now.
    pub now: DateTime<Utc>,
    /// When the access token in force expires.
    pub expires: DateTime<Utc>,
    /// How long it lasted when obtained (caps lead time and jitter).
    pub lifetime: Duration,
    /// When it was obtained (for [`REFRESH_FLOOR`](limits::REFRESH_FLOOR)).
    pub obtained_at: DateTime<Utc>,
    /// `[tokens] refresh_lead`.
    pub lead: Duration,
    /// `[tokens] refresh_jitter`.
    pub jitter: Duration,
    /// A uniform draw in [0, 1) for the jitter.
    pub jitter_draw: f64,
    /// A uniform draw in [0, 1) for the spread of an overdue refresh.
    pub spread_draw: f64,
}

/// When a refresh is due: before expiry by the lead time plus a random
/// jitter, each at most an eighth of the token lifetime, and never within
/// [`REFRESH_FLOOR`](limits::REFRESH_FLOOR) of the last refresh. The jitter
/// has millisecond resolution, so users linked together refresh at
/// different instants.
///
/// A refresh that is due already (its time passed while the daemon was
/// down) is put at a random point of the next [`OVERDUE_SPREAD`], capped at
/// half the time the access token has left, so that the users who are all
/// overdue after a restart do not refresh in the same instant (one crash
/// inside that instant would cost every rotation in flight), and each still
/// refreshes well before its token expires. An expired token is due now.
pub fn next_refresh(p: &Plan) -> DateTime<Utc> {
    let lead = p.lead.min(p.lifetime / LIFETIME_SHARE);
    let jitter = p.jitter.min(p.lifetime / LIFETIME_SHARE);
    let jitter = jitter.mul_f64(p.jitter_draw.clamp(0.0, 1.0));
    let due = p.expires - TimeDelta::from_std(lead + jitter).unwrap_or(TimeDelta::zero());
    let due = due
        .duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(due);
    let floor = p.obtained_at + TimeDelta::from_std(limits::REFRESH_FLOOR).unwrap_or_default();
    let due = due.max(floor);
    if due > p.now {
        return due;
    }
    let left = (p.expires - p.now).to_std().unwrap_or(Duration::ZERO);
    let spread = OVERDUE_SPREAD.min(left / 2);
    let at = p.now
        + TimeDelta::from_std(spread.mul_f64(p.spread_draw.clamp(0.0, 1.0)))
            .unwrap_or(TimeDelta::zero());
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}

/// Marks a user as needing relink, once, with one log line.
fn mark_relink(store: &Store, user: &UserId, slot: &Slot, why: &str) -> Result<(), StoreError> {
    let mut dead = slot.dead.write().expect("dead lock");
    if !*dead {
        *dead = true;
        store.set_status(user, UserStatus::NeedsRelink)?;
        warn!(user.id = %user, reason = why, "user must link again; control stopped");
    }
    Ok(())
}

/// How long `tokens` last from `now`, for capping lead time and jitter.
fn lifetime(tokens: &TokenSet, now: DateTime<Utc>) -> Duration {
    (tokens.expires_at - now).to_std().unwrap_or(Duration::ZERO)
}

/// How the uncancellable refresh section failed.
enum Section {
    /// The token endpoint said no.
    Auth(AuthError),
    /// The new tokens could not be stored: they are not used.
    Store(StoreError),
}

impl From<AuthError> for Section {
    fn from(e: AuthError) -> Self {
        Section::Auth(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
    }

    /// A one-hour token obtained at `obtained`, planned at `now`.
    fn plan(now: DateTime<Utc>, obtained: DateTime<Utc>, draws: (f64, f64)) -> Plan {
        Plan {
            now,
            expires: obtained + TimeDelta::hours(1),
            lifetime: Duration::from_secs(3600),
            obtained_at: obtained,
            lead: Duration::from_secs(300),
            jitter: Duration::from_secs(60),
            jitter_draw: draws.0,
            spread_draw: draws.1,
        }
    }

    #[test]
    fn a_fresh_token_is_refreshed_lead_plus_jitter_before_expiry() {
        let p = plan(t0(), t0(), (0.5, 0.9));
        assert_eq!(next_refresh(&p), t0() + TimeDelta::seconds(3600 - 330));
        let p = plan(t0(), t0(), (0.0, 0.9));
        assert_eq!(next_refresh(&p), t0() + TimeDelta::seconds(3600 - 300));
    }

    #[test]
    fn overdue_refreshes_spread_over_the_window_well_before_expiry() {
        // 200 users whose refresh time passed while the daemon was down
        // (100 s left on their tokens): at most half of that, 50 s, ahead.
        let obtained = t0() - TimeDelta::seconds(3500);
        let mut rng = StdRng::seed_from_u64(7);
        let times: Vec<_> = (0..200)
            .map(|_| {
                let mut p = plan(t0(), obtained, (rng.gen(), rng.gen()));
                p.obtained_at = t0() - TimeDelta::seconds(30); // as loaded
                next_refresh(&p)
            })
            .collect();
        let first = *times.iter().min().unwrap();
        let last = *times.iter().max().unwrap();
        assert!(first >= t0() - TimeDelta::milliseconds(1), "{first}");
        assert!(last <= t0() + TimeDelta::seconds(50), "{last}");
        assert!(
            last - first >= TimeDelta::seconds(40),
            "spread {first}..{last}"
        );
        // No instant is shared by many: at most a handful per second.
        let mut per_second = HashMap::new();
        for t in &times {
            *per_second.entry((*t - t0()).num_seconds()).or_insert(0) += 1;
        }
        let crowd = per_second.values().max().unwrap();
        assert!(*crowd <= 12, "{crowd} refreshes in one second");
        let mut distinct = times.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() >= 190,
            "{} distinct instants",
            distinct.len()
        );
    }

    #[test]
    fn the_overdue_spread_is_capped_at_a_minute() {
        // A day-long token whose refresh is overdue by hours: at most
        // OVERDUE_SPREAD ahead, not half of the many hours left.
        let mut p = plan(t0(), t0() - TimeDelta::hours(23), (0.0, 0.999));
        p.expires = t0() + TimeDelta::hours(1);
        p.lifetime = Duration::from_secs(86_400);
        p.lead = Duration::from_secs(7200);
        let at = next_refresh(&p);
        assert!(at > t0() + TimeDelta::seconds(55), "{at}");
        assert!(at <= t0() + TimeDelta::from_std(OVERDUE_SPREAD).unwrap());
    }

    #[test]
    fn an_expired_token_is_due_now_and_the_floor_still_holds() {
        let p = plan(t0(), t0() - TimeDelta::hours(2), (0.5, 0.9));
        assert_eq!(next_refresh(&p), t0());
        // Refreshed 10 s ago, and the server's token runs out 25 s from
        // now: the floor (30 s after the refresh) decides, not the lead.
        let mut p = plan(t0(), t0() - TimeDelta::seconds(10), (0.5, 0.9));
        p.expires = t0() + TimeDelta::seconds(25);
        p.lifetime = Duration::from_secs(60);
        assert_eq!(next_refresh(&p), t0() + TimeDelta::seconds(20));
    }
}
