//! Tibber GraphQL `priceInfo`: consumer prices per kWh incl. energy tax and
//! VAT, for today and (after about 13:00 local) tomorrow.
//!
//! `POST {base}/v1-beta/gql` with `Authorization: Bearer <token>` and a
//! query for one home (by id) or the account's first home. `startsAt`
//! carries a local offset; slots end where the next one starts.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{http, slots_from_starts, Basis, BoxFuture, PriceSource, Quote, SourceError};
use crate::secret::Secret;

/// The public API base URL.
pub const BASE: &str = "https://api.tibber.com";

/// One price entry of `today` or `tomorrow`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// Start with its local offset.
    starts_at: DateTime<FixedOffset>,
    /// Consumer price per kWh.
    total: f64,
    /// Currency, when queried.
    currency: Option<String>,
}

/// The query: price info of one home or of all homes.
fn query(home_id: Option<&str>) -> String {
    let fields = "currentSubscription { priceInfo { today { startsAt total currency } tomorrow { startsAt total currency } } }";
    match home_id {
        Some(id) => format!("{{ viewer {{ home(id: \"{id}\") {{ {fields} }} }} }}"),
        None => format!("{{ viewer {{ homes {{ {fields} }} }} }}"),
    }
}

fn malformed(msg: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed(format!("tibber: {msg}"))
}

/// Parses a `priceInfo` response (one `home` or the first of `homes`) into a
/// consumer quote; `currency` is used when the entries do not carry one.
pub fn parse(body: &str, currency: &str) -> Result<Quote, SourceError> {
    let v: Value = serde_json::from_str(body).map_err(malformed)?;
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        let msgs: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("message")?.as_str())
            .collect();
        let text = msgs.join("; ");
        if text.to_lowercase().contains("unauthori") || text.to_lowercase().contains("token") {
            return Err(SourceError::Unauthorized(200));
        }
        return Err(SourceError::Rejected {
            status: 200,
            detail: text,
        });
    }
    let viewer = v
        .pointer("/data/viewer")
        .ok_or_else(|| malformed("no data.viewer"))?;
    let home = viewer
        .get("home")
        .or_else(|| viewer.pointer("/homes/0"))
        .ok_or_else(|| malformed("no home in the response"))?;
    let info = home
        .pointer("/currentSubscription/priceInfo")
        .filter(|i| !i.is_null())
        .ok_or_else(|| malformed("the home has no current subscription"))?;
    let mut points = Vec::new();
    let mut cur = None;
    for day in ["today", "tomorrow"] {
        let entries: Vec<Entry> = match info.get(day) {
            Some(Value::Null) | None => Vec::new(),
            Some(list) => serde_json::from_value(list.clone()).map_err(malformed)?,
        };
        for e in entries {
            cur = cur.or(e.currency);
            points.push((e.starts_at.with_timezone(&Utc), e.total));
        }
    }
    let slots = slots_from_starts(points, TimeDelta::hours(1));
    Quote::new(
        Basis::ConsumerPerKwh,
        cur.unwrap_or_else(|| currency.to_string()),
        slots,
    )
}

/// The Tibber source.
#[derive(Debug, Clone)]
pub struct Tibber {
    /// API base URL ([`BASE`] or a test server).
    pub base_url: String,
    /// The personal access token (sent as a bearer token).
    pub token: Secret,
    /// The home to price; the first home of the account when `None`.
    pub home_id: Option<String>,
    /// Currency when the response does not say.
    pub currency: String,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl Tibber {
    /// A source for one account (and home).
    pub fn new(
        base_url: impl Into<String>,
        token: Secret,
        home_id: Option<String>,
        currency: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Tibber {
            base_url: base_url.into(),
            token,
            home_id,
            currency: currency.into(),
            timeout,
            client: http::client(timeout),
        }
    }
}

impl PriceSource for Tibber {
    fn id(&self) -> String {
        format!("tibber:{}", self.home_id.as_deref().unwrap_or("first-home"))
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            let url = format!("{}/v1-beta/gql", self.base_url.trim_end_matches('/'));
            let req = self
                .client
                .post(url)
                .bearer_auth(self.token.expose())
                .json(&serde_json::json!({ "query": query(self.home_id.as_deref()) }));
            let body = http::send(req, self.timeout).await?;
            let mut quote = parse(&body.text, &self.currency)?;
            quote.slots.retain(|s| s.end > from && s.start < to);
            if quote.slots.is_empty() {
                return Err(SourceError::NotPublished);
            }
            Ok(quote)
        })
    }
}
