//! The Firehose webhook: `PUT /webhooks/firehose` sets the URL and secret,
//! `POST /webhooks/firehose/test` sends a test event, and a deliverer task
//! sends signed `user:vehicle:updated` events (only the fields that
//! changed) whenever a vehicle's observable state changes: at once after a
//! command or a handle action, at each scenario event's own instant, and
//! at least every [`SOC_TICK`] for the battery level while charging.
//!
//! Deliveries are JSON arrays of up to 100 events with `X-Enode-Delivery`
//! (a unique id) and `X-Enode-Signature` (`sha1=` + hex HMAC-SHA1 of the
//! body). The JSON is this crate's own, written from the spec's summary of
//! the firehose (invariant 3).
//!
//! Fault levers ([`WebhookFaults`], `PUT /_sim/webhook-faults`): drop,
//! duplicate, delay, re-order (each delivery swapped with the next) and a
//! wrong signature, each with a probability drawn from a seeded generator.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha1::Sha1;

use crate::handle::SimHandle;
use crate::problem::Problem;
use crate::state::Need;

/// The battery level is reported at least this often while it changes.
pub const SOC_TICK: Duration = Duration::from_secs(60);
/// Events per delivery at most (Enode's batch size).
pub const BATCH: usize = 100;
/// A delivery held back for re-ordering is sent after this long at the
/// latest, so nothing waits forever for a successor.
pub const HOLD_MAX: Duration = Duration::from_secs(30);

/// The waits (simulated time) before a delivery that got no answer, or a
/// 429/5xx, is sent again: three attempts in all.
pub const RETRY_AFTER: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

/// Fault levers of the webhook deliverer; probabilities in 0..=1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// A delivery is not sent at all.
    pub drop: f64,
    /// A delivery is sent twice (same id, same body).
    pub duplicate: f64,
    /// Every delivery is sent this many milliseconds (clock time) late.
    pub delay_ms: u64,
    /// A delivery is held back and sent after the next one.
    pub reorder: f64,
    /// A delivery is signed with the wrong key.
    pub wrong_signature: f64,
}

/// Counters of the deliverer (`GET /_sim/webhooks`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Attempts to deliver (each duplicate and each retry counts).
    pub sent: u64,
    /// Deliveries answered 2xx.
    pub ok: u64,
    /// Attempts answered otherwise, or not answered.
    pub failed: u64,
    /// Events sent.
    pub events: u64,
    /// Deliveries dropped by the fault lever.
    pub dropped: u64,
    /// Deliveries duplicated by the fault lever.
    pub duplicated: u64,
    /// Deliveries swapped with their successor.
    pub reordered: u64,
    /// Deliveries signed wrongly by the fault lever.
    pub wrong_signature: u64,
}

/// What the firehose is set to.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    secret: String,
}

/// What was last reported of a vehicle.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    plugged: bool,
    charging: bool,
    /// Battery level, whole percent.
    soc: i64,
    limit: f64,
    reason: &'static str,
    location: Option<String>,
    reachable: bool,
    policy: (bool, String),
}

/// A signed delivery ready to send.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    body: Vec<u8>,
    signature: String,
}

/// The deliverer's state (behind its own lock, apart from the world).
#[derive(Debug)]
pub(crate) struct Webhooks {
    target: Option<Target>,
    faults: WebhookFaults,
    stats: WebhookStats,
    seen: HashMap<String, Seen>,
    test_pending: bool,
    seq: u64,
    rng: StdRng,
    held: Option<(DateTime<Utc>, Delivery)>,
}

impl Webhooks {
    /// No target yet; faults drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Webhooks {
            target: None,
            faults: WebhookFaults::default(),
            stats: WebhookStats::default(),
            seen: HashMap::new(),
            test_pending: false,
            seq: 0,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_f1e4),
            held: None,
        }
    }
}

impl SimHandle {
    fn hooks(&self) -> std::sync::MutexGuard<'_, Webhooks> {
        self.shared
            .webhooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Points the firehose at `url` with `secret` (as `PUT
    /// /webhooks/firehose`).
    pub fn set_firehose(&self, url: &str, secret: &str) {
        let mut h = self.hooks();
        h.target = Some(Target {
            url: url.into(),
            secret: secret.into(),
        });
        drop(h);
        self.wake_deliverer();
    }

    /// Sets the webhook fault levers.
    pub fn set_webhook_faults(&self, f: WebhookFaults) {
        self.hooks().faults = f;
    }

    /// The deliverer's counters.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.hooks().stats.clone()
    }

    /// Wakes the deliverer to look for changes now.
    pub(crate) fn wake_deliverer(&self) {
        self.shared.wake.notify_one();
    }
}

/// Body of `PUT /webhooks/firehose` (`Update_Firehose_Webhook`).
#[derive(Debug, Deserialize)]
struct UpdateFirehose {
    secret: Option<String>,
    url: Option<String>,
}

/// `PUT /webhooks/firehose` (client token): 204.
pub(crate) async fn put_firehose(
    State(h): State<SimHandle>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, crate::api::Refused> {
    crate::api::gate(&h, &headers, Need::Client, "PUT /webhooks/firehose").await?;
    let u: UpdateFirehose = crate::api::json_body(&body, None)?;
    let (Some(url), Some(secret)) = (u.url, u.secret) else {
        return Err(Problem::bad_request("\"url\" and \"secret\" are required").into());
    };
    if secret.len() < 16 {
        return Err(Problem::bad_request("\"secret\" must hold at least 128 random bits").into());
    }
    if url::Url::parse(&url).is_err() {
        return Err(Problem::bad_request(format!("\"url\" {url:?} is not a URL")).into());
    }
    h.set_firehose(&url, &secret);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /webhooks/firehose/test` (client token): queues a test event.
pub(crate) async fn test_firehose(
    State(h): State<SimHandle>,
    headers: HeaderMap,
) -> Result<Response, crate::api::Refused> {
    crate::api::gate(&h, &headers, Need::Client, "POST /webhooks/firehose/test").await?;
    if h.hooks().target.is_none() {
        return Err(Problem::bad_request("no firehose webhook is configured").into());
    }
    h.hooks().test_pending = true;
    h.wake_deliverer();
    Ok(Json("test event queued").into_response())
}

/// `PUT /_sim/webhook-faults`.
pub(crate) async fn sim_webhook_faults(
    State(h): State<SimHandle>,
    Json(f): Json<WebhookFaults>,
) -> StatusCode {
    h.set_webhook_faults(f);
    StatusCode::NO_CONTENT
}

/// Body of `PUT /_sim/firehose`.
#[derive(Debug, Deserialize)]
pub(crate) struct SimFirehose {
    url: String,
    secret: String,
}

/// `PUT /_sim/firehose`: points the firehose without a client token (for
/// benchmarks that run the daemon in another process).
pub(crate) async fn sim_firehose(
    State(h): State<SimHandle>,
    Json(f): Json<SimFirehose>,
) -> StatusCode {
    h.set_firehose(&f.url, &f.secret);
    StatusCode::NO_CONTENT
}

/// Requests per clock second are kept for at most this many seconds.
pub const SECONDS_KEPT: usize = 7 * 86_400;

/// `GET /_sim/request-seconds`: `[[unix second, API requests], ..]` for
/// every second with any (the benchmark's peak against mean).
pub(crate) async fn sim_request_seconds(State(h): State<SimHandle>) -> Json<Vec<(i64, u32)>> {
    let per = h
        .shared
        .per_second
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<(i64, u32)> = per.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_unstable();
    Json(v)
}

/// `GET /_sim/webhooks`.
pub(crate) async fn sim_webhook_stats(State(h): State<SimHandle>) -> Json<WebhookStats> {
    Json(h.webhook_stats())
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Delivers until the task is dropped.
pub(crate) async fn run(h: SimHandle) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client: webhooks are not delivered");
            return;
        }
    };
    loop {
        let now = h.now();
        // An event whose instant passed while the last deliveries were
        // being sent is due at once, not at the next tick; without a
        // receiver nothing is collected (nor advanced), so only future
        // events count then.
        let delivering = h.hooks().target.is_some();
        let next_event = {
            let st = h.lock();
            st.vehicles
                .values()
                .filter_map(|v| v.events.front().map(|e| e.at))
                .filter(|t| delivering || *t > now)
                .min()
        };
        let tick = now + TimeDelta::from_std(SOC_TICK).unwrap_or_default();
        let wake = next_event.map_or(tick, |t| t.min(tick));
        if wake > now {
            tokio::select! {
                _ = h.shared.wake.notified() => {}
                _ = h.clock().sleep_until(wake) => {}
            }
        }
        let now = h.now();
        let deliveries = collect(&h, now);
        for d in deliveries {
            send(&h, &http, d, now).await;
        }
        let stale = {
            let mut w = h.hooks();
            match &w.held {
                Some((at, _)) if now - *at >= TimeDelta::from_std(HOLD_MAX).unwrap_or_default() => {
                    w.held.take()
                }
                _ => None,
            }
        };
        if let Some((_, d)) = stale {
            post(&h, &http, d).await;
        }
    }
}

/// The events since the last look, batched and signed.
fn collect(h: &SimHandle, now: DateTime<Utc>) -> Vec<Delivery> {
    let mut w = h.hooks();
    let Some(target) = w.target.clone() else {
        return Vec::new();
    };
    let mut events: Vec<Value> = Vec::new();
    if std::mem::take(&mut w.test_pending) {
        events.push(json!({"event": "enode:firehose:test", "createdAt": iso(now)}));
    }
    {
        let mut st = h.lock();
        let mut ids: Vec<String> = st.vehicles.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let v = st.vehicles.get_mut(&id).expect("listed");
            v.advance(now);
            let soc = v.soc_at(now);
            let now_seen = Seen {
                plugged: v.plugged_in,
                charging: v.charging_at(now),
                soc: soc.floor() as i64,
                limit: v.charge_limit,
                reason: v.reasons_at(now),
                location: v.location.clone(),
                reachable: v.reachable,
                policy: (v.policy_enabled, v.policy_deadline.clone()),
            };
            let Some(before) = w.seen.insert(id.clone(), now_seen.clone()) else {
                // First sight (at registration): the baseline, not a change.
                continue;
            };
            if before == now_seen {
                continue;
            }
            let mut cs = Map::new();
            let mut vehicle = Map::new();
            vehicle.insert("id".into(), json!(id));
            if before.plugged != now_seen.plugged {
                cs.insert("isPluggedIn".into(), json!(now_seen.plugged));
            }
            if before.charging != now_seen.charging {
                cs.insert("isCharging".into(), json!(now_seen.charging));
                cs.insert(
                    "chargeRate".into(),
                    if now_seen.charging {
                        json!(v.charge_kw)
                    } else {
                        Value::Null
                    },
                );
                cs.insert(
                    "chargeTimeRemaining".into(),
                    match v.seconds_to_limit(now) {
                        Some(s) => json!((s / 60.0).ceil() as i64),
                        None => Value::Null,
                    },
                );
            }
            if before.soc != now_seen.soc {
                cs.insert("batteryLevel".into(), json!((soc * 10.0).round() / 10.0));
                cs.insert(
                    "range".into(),
                    json!((soc / 100.0 * v.capacity_kwh * 6.0).round()),
                );
            }
            if before.limit != now_seen.limit {
                cs.insert("chargeLimit".into(), json!(now_seen.limit));
            }
            if before.reason != now_seen.reason {
                cs.insert("isChargingReasons".into(), json!([now_seen.reason]));
            }
            if !cs.is_empty() {
                vehicle.insert("chargeState".into(), Value::Object(cs));
            }
            if before.location != now_seen.location {
                vehicle.insert("chargingLocationId".into(), json!(now_seen.location));
            }
            if before.reachable != now_seen.reachable {
                vehicle.insert("isReachable".into(), json!(now_seen.reachable));
            }
            if before.policy != now_seen.policy {
                vehicle.insert(
                    "smartChargingPolicy".into(),
                    json!({"isEnabled": now_seen.policy.0, "deadline": now_seen.policy.1}),
                );
            }
            events.push(json!({
                "event": "user:vehicle:updated",
                "createdAt": iso(now),
                "user": {"id": v.user},
                "vehicle": Value::Object(vehicle),
            }));
        }
    }
    events
        .chunks(BATCH)
        .map(|batch| {
            w.seq += 1;
            let body = serde_json::to_vec(batch).expect("JSON values serialize");
            let p = w.faults.wrong_signature;
            let wrong = p > 0.0 && w.rng.gen_bool(p.min(1.0));
            if wrong {
                w.stats.wrong_signature += 1;
            }
            let key = if wrong {
                format!("{}-not", target.secret)
            } else {
                target.secret.clone()
            };
            w.stats.events += batch.len() as u64;
            Delivery {
                id: format!("sim-delivery-{}", w.seq),
                signature: sign(key.as_bytes(), &body),
                body,
            }
        })
        .collect()
}

/// Sends one delivery through the fault levers.
async fn send(h: &SimHandle, http: &reqwest::Client, d: Delivery, now: DateTime<Utc>) {
    let (drop_it, dup, reorder, delay) = {
        let mut w = h.hooks();
        let f = w.faults.clone();
        let mut draw = |p: f64| p > 0.0 && w.rng.gen_bool(p.min(1.0));
        let r = (draw(f.drop), draw(f.duplicate), draw(f.reorder), f.delay_ms);
        if r.0 {
            w.stats.dropped += 1;
        }
        if r.1 {
            w.stats.duplicated += 1;
        }
        r
    };
    if drop_it {
        return;
    }
    // Re-ordering: hold this one and send the one held before it (or
    // send this one before the held one).
    let mut batch = Vec::new();
    {
        let mut w = h.hooks();
        let held = w.held.take();
        if reorder && held.is_none() {
            w.stats.reordered += 1;
            w.held = Some((now, d));
        } else {
            batch.push(d.clone());
            if dup {
                batch.push(d);
            }
            if let Some((_, older)) = held {
                batch.push(older);
            }
        }
    }
    for d in batch {
        if delay > 0 {
            let (h, http) = (h.clone(), http.clone());
            tokio::spawn(async move {
                h.clock().sleep(Duration::from_millis(delay)).await;
                post(&h, &http, d).await;
            });
        } else {
            post(h, http, d).await;
        }
    }
}

/// Sends one delivery to the receiver. A delivery that got no answer
/// (connection reset or refused, timeout) or a 429/5xx is sent again,
/// unchanged and under the same `X-Enode-Delivery`, after
/// [`RETRY_AFTER`] (as providers of webhooks generally do: a receiver
/// deduplicates by delivery id); an answer that refuses the delivery for
/// good (401 for a wrong signature, 413) is not.
async fn post(h: &SimHandle, http: &reqwest::Client, d: Delivery) {
    let mut attempt = 0;
    loop {
        let Some(url) = h.hooks().target.as_ref().map(|t| t.url.clone()) else {
            return;
        };
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-enode-delivery", &d.id)
            .header("x-enode-signature", &d.signature)
            .body(d.body.clone())
            .send()
            .await;
        let (ok, transient, why) = match &r {
            Ok(resp) => {
                let s = resp.status();
                (
                    s.is_success(),
                    s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS,
                    s.to_string(),
                )
            }
            Err(e) => (false, true, e.to_string()),
        };
        {
            let mut w = h.hooks();
            w.stats.sent += 1;
            if ok {
                w.stats.ok += 1;
            } else {
                w.stats.failed += 1;
            }
        }
        if ok || !transient || attempt >= RETRY_AFTER.len() {
            if !ok {
                tracing::debug!(delivery = %d.id, why = %why, attempt, "webhook delivery failed");
            }
            return;
        }
        tracing::debug!(delivery = %d.id, why = %why, attempt, "webhook delivery failed, sent again");
        h.clock().sleep(RETRY_AFTER[attempt]).await;
        attempt += 1;
    }
}

/// `sha1=` + hex HMAC-SHA1 of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut m = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(body);
    let mac = m.finalize().into_bytes();
    let mut s = String::from("sha1=");
    for b in mac {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
