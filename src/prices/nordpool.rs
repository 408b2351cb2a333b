//! Nord Pool Data Portal day-ahead prices, per delivery area and currency,
//! hourly or 15-minute (the market's resolution since 2025-10-01).
//!
//! `GET {base}/api/DayAheadPrices?date=YYYY-MM-DD&market=DayAhead&deliveryArea=SE3&currency=SEK`
//! answers one CET delivery day; `204 No Content` means not published yet.
//! The same entry shape appears in `DayAheadPriceIndices`
//! (`multiIndexEntries`), which the parser accepts too.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Europe::Oslo;
use serde::Deserialize;

use super::{http, Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};

/// The public API base URL.
pub const BASE: &str = "https://dataportal-api.nordpoolgroup.com";

/// A `DayAheadPrices` or `DayAheadPriceIndices` response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    /// Entries of `DayAheadPrices`.
    #[serde(default)]
    multi_area_entries: Vec<Entry>,
    /// Entries of `DayAheadPriceIndices`.
    #[serde(default)]
    multi_index_entries: Vec<Entry>,
    /// Currency, when the response says.
    currency: Option<String>,
}

/// One delivery period with a price per area.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// Start of delivery, UTC.
    delivery_start: DateTime<Utc>,
    /// End of delivery, UTC.
    delivery_end: DateTime<Utc>,
    /// Price per MWh by area code.
    entry_per_area: std::collections::HashMap<String, Option<f64>>,
}

/// Parses a response for one area into a spot quote; `currency` is used
/// when the response does not name one.
pub fn parse(body: &str, area: &str, currency: &str) -> Result<Quote, SourceError> {
    let r: Response = serde_json::from_str(body)
        .map_err(|e| SourceError::Malformed(format!("nord pool: {e}")))?;
    let mut slots = Vec::new();
    for e in r.multi_area_entries.iter().chain(&r.multi_index_entries) {
        match e.entry_per_area.get(area) {
            Some(Some(price)) => slots.push(Slot {
                start: e.delivery_start,
                end: e.delivery_end,
                price: *price,
            }),
            Some(None) => {}
            None => {
                return Err(SourceError::Malformed(format!(
                    "nord pool: no area `{area}` in the response"
                )));
            }
        }
    }
    Quote::new(
        Basis::SpotPerMwh,
        r.currency.unwrap_or_else(|| currency.to_string()),
        slots,
    )
}

/// The Nord Pool source for one area.
#[derive(Debug, Clone)]
pub struct NordPool {
    /// API base URL ([`BASE`] or a test server).
    pub base_url: String,
    /// Delivery area (SE3, NO1, FI, DK1, UK, ...).
    pub area: String,
    /// Currency to ask for (EUR, SEK, NOK, DKK, GBP, ...).
    pub currency: String,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl NordPool {
    /// A source for one area and currency.
    pub fn new(
        base_url: impl Into<String>,
        area: impl Into<String>,
        currency: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        NordPool {
            base_url: base_url.into(),
            area: area.into(),
            currency: currency.into(),
            timeout,
            client: http::client(timeout),
        }
    }

    /// Fetches one CET delivery day; `None` when it is not published yet.
    async fn day(&self, date: NaiveDate) -> Result<Option<Quote>, SourceError> {
        let url = format!("{}/api/DayAheadPrices", self.base_url.trim_end_matches('/'));
        let req = self.client.get(url).query(&[
            ("date", date.format("%Y-%m-%d").to_string()),
            ("market", "DayAhead".to_string()),
            ("deliveryArea", self.area.clone()),
            ("currency", self.currency.clone()),
        ]);
        let body = http::send(req, self.timeout).await?;
        if body.status.as_u16() == 204 || body.text.trim().is_empty() {
            return Ok(None);
        }
        parse(&body.text, &self.area, &self.currency).map(Some)
    }
}

impl PriceSource for NordPool {
    fn id(&self) -> String {
        format!("nordpool:{}:{}", self.area, self.currency)
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            // Delivery days are CET days; Oslo shares the zone rules.
            let first = from.with_timezone(&Oslo).date_naive();
            let last = (to - TimeDelta::seconds(1))
                .with_timezone(&Oslo)
                .date_naive();
            let mut slots = Vec::new();
            let mut currency = self.currency.clone();
            let mut day = first;
            while day <= last {
                match self.day(day).await? {
                    Some(q) => {
                        currency = q.currency;
                        slots.extend(q.slots.into_iter().filter(|s| s.end > from && s.start < to));
                    }
                    None => break,
                }
                day += TimeDelta::days(1);
            }
            if slots.is_empty() {
                return Err(SourceError::NotPublished);
            }
            Quote::new(Basis::SpotPerMwh, currency, slots)
        })
    }
}
