//! The Firehose webhook receiver: verify, deduplicate, hand over.
//!
//! A delivery is read up to [`WEBHOOK_BODY_MAX`](limits::WEBHOOK_BODY_MAX)
//! (longer: 413), its signature checked against the raw bytes before
//! anything parses them (401 and nothing applied when it is missing,
//! malformed or wrong), its `X-Enode-Delivery` id looked up among the
//! remembered ones (a repeat is answered 200 and not applied), and only
//! then is the body read as events (`crate::enode::webhook`, the one place
//! that knows their JSON). Vehicle events go to the owning user's fleet
//! task, which merges them into what it knows (older reports never
//! overwrite newer ones) and acts at once; the answer does not wait for
//! that, so it is well within Enode's 5 s.
//!
//! The receiver also tells the fleet whether webhooks are live
//! ([`Liveness`]): while deliveries arrive, polling is only a safety net.

mod verify;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use clock::Clock;
use serde::Serialize;
use tracing::{debug, info, warn};

pub use verify::{sign, verify, SignatureError};

use crate::config::WebhooksConfig;
use crate::daemon::fleet::Fleet;
use crate::limits;
use crate::model::WebhookEvent;
use crate::secret::Secret;
use crate::store::Store;

/// Whether webhooks deliver: the instant of the last accepted delivery,
/// against the configured silence. Shared by the receiver (which marks
/// deliveries) and the fleet (which polls less while they are live).
#[derive(Debug)]
pub struct Liveness {
    /// The last accepted, signed delivery.
    last: Mutex<Option<DateTime<Utc>>>,
    /// Silence after which webhooks count as down.
    silence: TimeDelta,
}

impl Liveness {
    /// Nothing delivered yet: not live.
    pub fn new(silence: std::time::Duration) -> Self {
        Liveness {
            last: Mutex::new(None),
            silence: TimeDelta::from_std(silence).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Notes a delivery at `now`.
    pub fn delivered(&self, now: DateTime<Utc>) {
        *self.last.lock().expect("liveness lock") = Some(now);
    }

    /// Whether a delivery arrived within the silence before `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.last
            .lock()
            .expect("liveness lock")
            .is_some_and(|t| now - t < self.silence)
    }

    /// The last delivery.
    pub fn last(&self) -> Option<DateTime<Utc>> {
        *self.last.lock().expect("liveness lock")
    }

    /// The configured silence.
    pub fn silence(&self) -> TimeDelta {
        self.silence
    }
}

/// Counters for `webhook status` (`GET /status/webhooks`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Signed deliveries accepted and applied.
    pub deliveries: u64,
    /// Signed deliveries whose id was seen before (not applied).
    pub duplicates: u64,
    /// Refused for a missing, malformed or wrong signature (401).
    pub bad_signature: u64,
    /// Refused as longer than 1 MiB (413).
    pub too_large: u64,
    /// Signed, but not a JSON event array (400).
    pub bad_body: u64,
    /// Vehicle events handed to the fleet.
    pub events: u64,
    /// Events ignored (unknown kinds, unreadable events, unknown users).
    pub ignored: u64,
    /// Test events received (`enode:firehose:test`).
    pub tests: u64,
    /// When the last accepted delivery arrived.
    pub last_delivery: Option<DateTime<Utc>>,
    /// When the last test event arrived.
    pub last_test: Option<DateTime<Utc>>,
    /// The last refusal: when and why.
    pub last_failure: Option<(DateTime<Utc>, String)>,
}

/// What a delivery is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200: applied.
    Applied,
    /// 200: a repeat, not applied.
    Duplicate,
    /// 401: the signature does not hold.
    Unauthorized,
    /// 413: longer than the limit.
    TooLarge,
    /// 400: signed, but not events.
    BadBody,
    /// 503: the delivery id could not be stored (Enode retries).
    Unavailable,
}

impl Outcome {
    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Outcome::Applied | Outcome::Duplicate => 200,
            Outcome::Unauthorized => 401,
            Outcome::TooLarge => 413,
            Outcome::BadBody => 400,
            Outcome::Unavailable => 503,
        }
    }
}

/// The secret as last read, with the file's modification time.
struct Loaded {
    /// The secret, if the file could be read.
    secret: Option<Secret>,
    /// When the file was last modified, as read.
    modified: Option<SystemTime>,
}

/// Remembered delivery ids, oldest first, bounded.
#[derive(Default)]
struct Seen {
    /// For lookup.
    ids: HashSet<String>,
    /// For eviction.
    order: VecDeque<String>,
}

/// The receiver: one per daemon.
pub struct Receiver {
    /// The secret's file; re-read when a signature fails and it changed
    /// (after `webhook register` wrote a new one).
    secret_file: PathBuf,
    /// The secret in use.
    secret: Mutex<Loaded>,
    /// Delivery ids seen.
    seen: Mutex<Seen>,
    /// Counters.
    stats: Mutex<Stats>,
    /// Where deliveries are noted for the fleet.
    liveness: Arc<Liveness>,
    /// The fleet the events go to.
    fleet: Arc<Fleet>,
    /// The store (delivery ids).
    store: Store,
    /// The daemon's clock.
    clock: Clock,
}

impl Receiver {
    /// A receiver for `config`, with the delivery ids the store remembers.
    pub fn new(
        config: &WebhooksConfig,
        store: Store,
        clock: Clock,
        fleet: Arc<Fleet>,
        liveness: Arc<Liveness>,
    ) -> crate::store::Result<Receiver> {
        let mut seen = Seen::default();
        for (id, _) in store.webhook_deliveries()? {
            seen.ids.insert(id.clone());
            seen.order.push_back(id);
        }
        let loaded = read_secret(&config.secret_file);
        if loaded.secret.is_none() {
            warn!(file = %config.secret_file.display(), "no webhook secret yet: deliveries are refused until `smartcharged webhook register` (or the operator) writes one");
        }
        Ok(Receiver {
            secret_file: config.secret_file.clone(),
            secret: Mutex::new(loaded),
            seen: Mutex::new(seen),
            stats: Mutex::new(Stats::default()),
            liveness,
            fleet,
            store,
            clock,
        })
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Notes a body refused as too large.
    pub fn too_large(&self) -> Outcome {
        self.fail("body larger than 1 MiB");
        self.stats.lock().expect("stats lock").too_large += 1;
        Outcome::TooLarge
    }

    /// Handles one delivery whose body was read whole.
    pub async fn deliver(
        &self,
        body: &[u8],
        signature: Option<&[u8]>,
        delivery: Option<&[u8]>,
    ) -> Outcome {
        if let Err(e) = self.check(body, signature) {
            debug!(error = %e, "webhook delivery refused");
            self.fail(&e.to_string());
            self.stats.lock().expect("stats lock").bad_signature += 1;
            return Outcome::Unauthorized;
        }
        let id = delivery
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| {
                !d.is_empty()
                    && d.len() <= limits::DELIVERY_ID_MAX
                    && d.bytes().all(|b| b.is_ascii_graphic())
            });
        if let Some(id) = id {
            if self.seen.lock().expect("seen lock").ids.contains(id) {
                debug!(delivery = id, "duplicate webhook delivery ignored");
                self.stats.lock().expect("stats lock").duplicates += 1;
                return Outcome::Duplicate;
            }
        } else {
            debug!("webhook delivery without a usable X-Enode-Delivery id: not deduplicated");
        }
        let events = match crate::enode::webhook::events(body) {
            Ok(e) => e,
            Err(e) => {
                self.fail(&e.to_string());
                self.stats.lock().expect("stats lock").bad_body += 1;
                return Outcome::BadBody;
            }
        };
        let now = self.clock.now();
        if let Some(id) = id {
            let evict = {
                let mut seen = self.seen.lock().expect("seen lock");
                if !seen.ids.insert(id.to_owned()) {
                    // The same delivery, arriving twice at once.
                    self.stats.lock().expect("stats lock").duplicates += 1;
                    return Outcome::Duplicate;
                }
                seen.order.push_back(id.to_owned());
                let mut evict = Vec::new();
                while seen.order.len() > limits::DELIVERIES_REMEMBERED {
                    if let Some(old) = seen.order.pop_front() {
                        seen.ids.remove(&old);
                        evict.push(old);
                    }
                }
                evict
            };
            if let Err(e) = self.store.put_webhook_delivery(id, now, &evict).await {
                warn!(error = %e, "cannot store a webhook delivery id; Enode will deliver it again");
                let mut seen = self.seen.lock().expect("seen lock");
                seen.ids.remove(id);
                seen.order.retain(|x| x != id);
                return Outcome::Unavailable;
            }
        }
        self.liveness.delivered(now);
        let (mut applied, mut ignored, mut tests) = (0u64, 0u64, 0u64);
        for e in events {
            match e {
                WebhookEvent::Vehicle(v) => {
                    if self.fleet.deliver(*v) {
                        applied += 1;
                    } else {
                        ignored += 1;
                    }
                }
                WebhookEvent::Test => {
                    info!("webhook test event received");
                    tests += 1;
                }
                WebhookEvent::Ignored(name) => {
                    debug!(event = %name, "webhook event ignored");
                    ignored += 1;
                }
            }
        }
        let mut s = self.stats.lock().expect("stats lock");
        s.deliveries += 1;
        s.events += applied;
        s.ignored += ignored;
        s.tests += tests;
        s.last_delivery = Some(now);
        if tests > 0 {
            s.last_test = Some(now);
        }
        Outcome::Applied
    }

    /// The signature check, re-reading the secret file once if it changed
    /// since it was read (a secret registered while the daemon runs).
    fn check(&self, body: &[u8], signature: Option<&[u8]>) -> Result<(), SignatureError> {
        let first = {
            let loaded = self.secret.lock().expect("secret lock");
            match &loaded.secret {
                Some(s) => verify(s.expose().as_bytes(), body, signature),
                None => Err(SignatureError::NoSecret),
            }
        };
        if matches!(
            first,
            Ok(()) | Err(SignatureError::Missing | SignatureError::Malformed)
        ) {
            return first;
        }
        let modified = std::fs::metadata(&self.secret_file)
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.secret.lock().expect("secret lock");
        if modified.is_none() || modified == loaded.modified {
            return first;
        }
        *loaded = read_secret(&self.secret_file);
        info!(file = %self.secret_file.display(), "webhook secret file changed; read again");
        match &loaded.secret {
            Some(s) => verify(s.expose().as_bytes(), body, signature),
            None => Err(SignatureError::NoSecret),
        }
    }

    fn fail(&self, why: &str) {
        let now = self.clock.now();
        self.stats.lock().expect("stats lock").last_failure = Some((now, limits::clip(why)));
    }
}

/// Reads the secret file: its first line, trimmed; empty or unreadable is
/// no secret.
fn read_secret(path: &std::path::Path) -> Loaded {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let secret = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    Loaded { secret, modified }
}

/// A fresh secret of 256 random bits, as 64 hex digits.
pub fn fresh_secret() -> Secret {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
