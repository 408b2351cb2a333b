//! The supervisor: starts every task of the daemon under one
//! `CancellationToken` and a `TaskTracker`, applies config reloads, and
//! drains on shutdown. `smartcharged run`, the demo and the tests all use
//! [`Daemon::start`], so tests drive the real thing with their own clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clock::Clock;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::fleet::{Fleet, FleetEvent};
use super::policy::PolicyConfig;
use super::readmodel::ReadModel;
use super::tokens::TokenKeeper;
use crate::config::Config;
use crate::enode::Client;
use crate::prices::schedule::{cron_ticks, PriceFeed};
use crate::store::Store;

/// Requests in flight to Enode at most, across all users.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;
/// How long shutdown waits for tasks to finish, in real time whatever the
/// clock: draining is about requests and writes in flight, which take
/// real time on a sped-up or paused clock too.
pub const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// How the daemon is started.
pub struct Options {
    /// The daemon's clock.
    pub clock: Clock,
    /// Run the UTC cron tick of the price feed (off in tests and the demo,
    /// whose clock is not the wall clock the cron scheduler reads).
    pub cron: bool,
    /// Where plans and commands are reported besides the log.
    pub events: Option<mpsc::UnboundedSender<FleetEvent>>,
    /// Seeds the jitter that spreads users' polls and replans.
    pub seed: u64,
}

/// A running daemon.
pub struct Daemon {
    /// Fires shutdown.
    cancel: CancellationToken,
    /// Every task.
    tracker: TaskTracker,
    /// The policy in force, replaced on reload.
    policy: watch::Sender<Arc<PolicyConfig>>,
    /// The config in force, but for its policy: that moves to `policy`.
    config: Mutex<Config>,
    /// The store (kept for the final flush).
    store: Store,
    /// The token keeper (drained at shutdown).
    keeper: Arc<TokenKeeper>,
    /// Keeps the cron scheduler alive.
    _cron: Option<tokio_cron_scheduler::JobScheduler>,
    /// What the HTTP listener serves.
    api: Arc<super::http::Api>,
}

impl Daemon {
    /// Opens the store and starts all tasks. The config is already valid;
    /// what can still fail here is opening the store or the listener.
    pub async fn start(mut config: Config, opts: Options) -> anyhow::Result<Daemon> {
        let prices_cfg = config.prices.clone().context(
            "the daemon needs a [prices] section in the config (see config/prices-examples.toml)",
        )?;
        // Real time spent in each phase, for the start-up log line.
        let started = tokio::time::Instant::now();
        let store = Store::open(&config.store.path)?;
        let opened = started.elapsed();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let client = Client::with_metrics(&config.enode, opts.clock.clone(), metrics.clone())?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();

        let keeper = TokenKeeper::new(
            store.clone(),
            client.clone(),
            opts.clock.clone(),
            config.tokens.clone(),
        );
        let (feed, prices) = PriceFeed::new(
            prices_cfg.source(),
            prices_cfg.tariff.clone(),
            Arc::new(store.clone()),
            opts.clock.clone(),
            prices_cfg.feed.clone(),
        );
        let feed = feed.with_metrics(metrics.clone());
        let (cron, ticks) = if opts.cron {
            let (sched, ticks) = cron_ticks(&prices_cfg.refresh_cron).await?;
            (Some(sched), ticks)
        } else {
            // A closed channel: no ticks.
            let (_, rx) = mpsc::channel(1);
            (None, rx)
        };
        tracker.spawn(feed.run(ticks, cancel.clone().cancelled_owned()));

        // Moved, not copied: with a table per user the policy of a large
        // fleet is megabytes, and only the fleet's copy is ever read.
        let policy = Arc::new(std::mem::take(&mut config.policy));
        let time_zone = policy.global().time_zone;
        let (policy_tx, policy_rx) = watch::channel(policy);
        let liveness = config
            .webhooks
            .as_ref()
            .map(|w| Arc::new(crate::webhooks::Liveness::new(w.silence)));
        let fleet = Arc::new(Fleet {
            store: store.clone(),
            client,
            clock: opts.clock.clone(),
            keeper: keeper.clone(),
            policy: policy_rx,
            prices,
            limiter: Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            rounds: Arc::new(Semaphore::new(super::fleet::ROUNDS_AT_ONCE)),
            vendors: Mutex::new(Default::default()),
            events: opts.events,
            running: Mutex::new(Default::default()),
            outages: crate::outage::Outages::new("enode requests"),
            view: Mutex::new(Default::default()),
            recent: Mutex::new(Default::default()),
            month: Default::default(),
            blocked: Mutex::new(Default::default()),
            stops: Mutex::new(Default::default()),
            planners: Mutex::new(Vec::new()),
            inboxes: Mutex::new(Default::default()),
            webhooks: liveness.clone(),
            safety_poll: config
                .webhooks
                .as_ref()
                .map_or(Duration::from_secs(3600), |w| w.safety_poll),
            vendors_down: Default::default(),
            seed: opts.seed,
            loaded: watch::channel(false).0,
        });
        fleet.load_recent();
        // Before any user loop runs, so no session is stored meanwhile.
        if let Err(e) = fleet.month.load(&store, opts.clock.now(), time_zone) {
            warn!(error = %e, "cannot read this month's sessions; the savings shown start at zero");
        }
        let read = Arc::new(ReadModel::new(
            fleet.clone(),
            opts.clock.now(),
            metrics.clone(),
        ));
        tracker.spawn(load_users(
            fleet.clone(),
            tracker.clone(),
            cancel.clone(),
            started,
        ));
        tracker.spawn(super::vendors::run(fleet.clone(), cancel.clone()));
        tracker.spawn(housekeeping(
            store.clone(),
            opts.clock.clone(),
            config.store.journal_retention,
            cancel.clone(),
        ));
        let webhooks = match (&config.webhooks, &liveness) {
            (Some(w), Some(l)) => {
                let r = Arc::new(crate::webhooks::Receiver::new(
                    w,
                    store.clone(),
                    opts.clock.clone(),
                    fleet.clone(),
                    l.clone(),
                )?);
                tracker.spawn(super::heartbeat::run(
                    fleet.client.clone(),
                    opts.clock.clone(),
                    l.clone(),
                    cancel.clone(),
                ));
                Some((w.path.clone(), r))
            }
            _ => None,
        };
        let api = Arc::new(super::http::Api {
            webhooks,
            read: read.clone(),
            fleet: fleet.clone(),
            keeper: keeper.clone(),
            clock: opts.clock.clone(),
            tracker: tracker.clone(),
            cancel: cancel.clone(),
            pkce: config.enode.pkce,
            link_timeout: config.tokens.link_timeout,
            redirect_uri: config.enode.redirect_uri.clone(),
            metrics,
            unlinking: Default::default(),
        });
        tracker.spawn(super::unlink::resume(api.clone()));
        let ms = |d: Duration| d.as_millis() as u64;
        info!(
            store = %config.store.path.display(),
            store_open_ms = ms(opened),
            started_ms = ms(started.elapsed()),
            "daemon started; loading the users"
        );
        Ok(Daemon {
            api,
            cancel,
            tracker,
            policy: policy_tx,
            config: Mutex::new(config),
            store,
            keeper,
            _cron: cron,
        })
    }

    /// Applies a new, already validated config. What can change at run
    /// time is the policy; other changes are logged as needing a restart.
    pub fn reload(&self, mut new: Config) {
        let mut cur = self.config.lock().expect("config lock");
        if new.enode.api_url != cur.enode.api_url
            || new.store.path != cur.store.path
            || new.http.listen != cur.http.listen
            || new.enode.client_id != cur.enode.client_id
        {
            warn!("config reload: endpoint, client, store or listen changes take effect at the next restart");
        }
        self.policy
            .send_replace(Arc::new(std::mem::take(&mut new.policy)));
        *cur = new;
        info!("config reloaded; plans are redone with the new policy");
    }

    /// Serves the HTTP API (health, link, OAuth callback) on `listener`
    /// until shutdown.
    pub fn serve_http(&self, listener: tokio::net::TcpListener) {
        let limits = self.config.lock().expect("config lock").http.conns;
        self.tracker
            .spawn(super::http::serve(listener, self.api.clone(), limits));
    }

    /// Serves the admin API on the Unix socket `listener` until shutdown.
    pub fn serve_admin(
        &self,
        listener: tokio::net::UnixListener,
        allowed: crate::admin::peer::Allowed,
    ) {
        let admin = Arc::new(crate::admin::Admin {
            api: self.api.clone(),
            allowed,
        });
        let limits = self.admin_config().conns;
        self.tracker
            .spawn(crate::admin::serve(listener, admin, limits));
    }

    /// The admin socket's settings in force.
    pub fn admin_config(&self) -> crate::config::AdminConfig {
        self.config.lock().expect("config lock").admin.clone()
    }

    /// The read model every view shows (status page, metrics, admin
    /// socket, tests).
    pub fn read_model(&self) -> Arc<ReadModel> {
        self.api.read.clone()
    }

    /// The daemon's store (for its own commands and for tests that count
    /// what it writes).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A token that fires when shutdown starts (for the caller's own tasks).
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops every task at its next await point and waits for them, with
    /// no grace period and no final flush: what a crash leaves behind,
    /// minus the process (every state change is flushed when it is made).
    pub async fn abort(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Stops every task: loops finish the request in hand, refreshes in
    /// flight are stored, the store is flushed. Gives up waiting after
    /// [`DRAIN_GRACE`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.tracker.close();
        // The grace is real time: a tokio timeout would be clock time,
        // 0.17 s of real time at 120x, and on a paused test clock it fired
        // as soon as the tasks waited for I/O, leaving them (and the store
        // they hold) running after shutdown returned.
        let drained: Result<(), ()> = tokio::select! {
            _ = async {
                self.tracker.wait().await;
                self.keeper.drain().await;
            } => Ok(()),
            _ = clock::real_sleep(DRAIN_GRACE) => Err(()),
        };
        if drained.is_err() {
            warn!(
                grace_s = DRAIN_GRACE.as_secs(),
                "tasks did not finish within the grace period"
            );
        }
        self.store.flush()?;
        info!("daemon stopped");
        Ok(())
    }
}

/// Loads every active user and its tokens from the store, then starts the
/// token keeper and each user's loop. It runs behind READY: with 100,000
/// users the load takes seconds, and nothing in it is needed to answer
/// the listeners. A store that cannot be read stops the daemon, as it did
/// when this ran before READY.
async fn load_users(
    fleet: Arc<Fleet>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    started: tokio::time::Instant,
) {
    super::notify::status("loading the users");
    let keeper = fleet.keeper.clone();
    let active = match tokio::task::spawn_blocking(move || keeper.load_active()).await {
        Ok(Ok(active)) => active,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot load the users from the store; stopping");
            cancel.cancel();
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "loading the users failed; stopping");
            cancel.cancel();
            return;
        }
    };
    let users = active.len();
    tracker.spawn(fleet.keeper.clone().run(cancel.clone()));
    for user in active {
        tracker.spawn(fleet.clone().run_user(user.id, user.vendor, cancel.clone()));
    }
    fleet.loaded.send_replace(true);
    super::notify::status(&format!("running; {users} users"));
    info!(
        users,
        users_loaded_ms = started.elapsed().as_millis() as u64,
        "users loaded; each user's loop runs"
    );
}

/// Periodic jobs, once an hour: drops link sessions that expired unused
/// and journal entries older than the retention, so the store does not
/// grow without bound.
async fn housekeeping(
    store: Store,
    clock: Clock,
    journal_retention: Duration,
    cancel: CancellationToken,
) {
    let retention =
        chrono::TimeDelta::from_std(journal_retention).unwrap_or(chrono::TimeDelta::MAX);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = clock.sleep(Duration::from_secs(3600)) => {}
        }
        let now = clock.now();
        match store.purge_link_sessions(now) {
            Ok(0) => {}
            Ok(n) => info!(sessions = n, "expired link sessions removed"),
            Err(e) => warn!(error = %e, "cannot purge link sessions"),
        }
        let horizon = now
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        match store.prune_sessions(horizon) {
            Ok(0) => {}
            Ok(n) => info!(sessions = n, before = %horizon, "old plug-in sessions removed"),
            Err(e) => warn!(error = %e, "cannot prune the sessions"),
        }
        match store.prune_journal(horizon) {
            Ok(0) => {}
            Ok(n) => info!(entries = n, before = %horizon, "old journal entries removed"),
            Err(e) => warn!(error = %e, "cannot prune the journal"),
        }
    }
}
