//! Energi Data Service (Energinet): day-ahead prices for DK1, DK2 and the
//! neighbouring areas (SE3, SE4, NO2, DE ...), no key needed.
//!
//! `GET {base}/dataset/DayAheadPrices?start=..&end=..&filter={"PriceArea":["DK1"]}&timezone=utc`
//! answers `{"records":[{TimeUTC, PriceArea, DayAheadPriceEUR, DayAheadPriceDKK}]}`
//! (15-minute since 2025-10-01). The older `Elspotprices` dataset (hourly,
//! `HourUTC`, `SpotPriceEUR`), its CSV export (`;`, decimal comma, newest
//! first) and the retired GraphQL answer are read too, so the long history
//! people have downloaded can be replayed. Only UTC columns are used: the
//! local `HourDK` repeats 02:00 on the fall-back day and lacks it in spring.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;

use super::{http, slots_from_starts, Basis, BoxFuture, PriceSource, Quote, SourceError};

/// The public API base URL.
pub const BASE: &str = "https://api.energidataservice.dk";

fn malformed(msg: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed(format!("energi data service: {msg}"))
}

/// Parses `2024-03-31T01:00:00`, `2024-03-31 01:00`, with or without `+00:00`.
fn parse_utc(s: &str) -> Result<DateTime<Utc>, SourceError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| t.and_utc())
    .ok_or_else(|| malformed(format!("bad time `{s}`")))
}

/// Reads one record's start and price in `currency` (EUR or DKK) from
/// either dataset's field names.
fn record(r: &Value, currency: &str) -> Result<Option<(DateTime<Utc>, f64)>, SourceError> {
    let time = r
        .get("TimeUTC")
        .or_else(|| r.get("HourUTC"))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("record without TimeUTC/HourUTC"))?;
    let cur = currency.to_uppercase();
    let price = r
        .get(format!("DayAheadPrice{cur}"))
        .or_else(|| r.get(format!("SpotPrice{cur}")))
        .and_then(Value::as_f64);
    // A null price is an hour the area did not publish; leave it unpriced.
    price.map(|p| parse_utc(time).map(|t| (t, p))).transpose()
}

/// Parses a REST (`records`) or retired GraphQL (`data.elspotprices`)
/// answer. Records of other areas are skipped when they name one.
pub fn parse(body: &str, area: &str, currency: &str) -> Result<Quote, SourceError> {
    let v: Value = serde_json::from_str(body).map_err(malformed)?;
    let records = v
        .get("records")
        .or_else(|| v.pointer("/data/elspotprices"))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no records in the response"))?;
    let mut points = Vec::new();
    for r in records {
        let other_area = r
            .get("PriceArea")
            .and_then(Value::as_str)
            .is_some_and(|a| !a.eq_ignore_ascii_case(area));
        if !other_area {
            points.extend(record(r, currency)?);
        }
    }
    Quote::new(
        Basis::SpotPerMwh,
        currency.to_uppercase(),
        slots_from_starts(points, TimeDelta::hours(1)),
    )
}

/// Parses the CSV export (`HourUTC;HourDK;PriceArea;SpotPriceDKK;SpotPriceEUR`,
/// decimal comma, any row order) for one area.
pub fn parse_csv(text: &str, area: &str, currency: &str) -> Result<Quote, SourceError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| malformed("empty csv"))?
        .trim_start_matches('\u{feff}')
        .split(';')
        .collect();
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let cur = currency.to_uppercase();
    let (Some(t), Some(a), Some(p)) = (
        col(&["HourUTC", "TimeUTC"]),
        col(&["PriceArea"]),
        col(&[&format!("SpotPrice{cur}"), &format!("DayAheadPrice{cur}")]),
    ) else {
        return Err(malformed(format!(
            "csv header lacks HourUTC, PriceArea or the {cur} price"
        )));
    };
    let mut points = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(';').collect();
        let field = |i: usize| {
            f.get(i)
                .map(|s| s.trim())
                .ok_or_else(|| malformed(format!("short line `{line}`")))
        };
        if !field(a)?.eq_ignore_ascii_case(area) || field(p)?.is_empty() {
            continue;
        }
        let price: f64 = field(p)?
            .replace(',', ".")
            .parse()
            .map_err(|_| malformed(format!("bad price in `{line}`")))?;
        points.push((parse_utc(field(t)?)?, price));
    }
    Quote::new(
        Basis::SpotPerMwh,
        cur,
        slots_from_starts(points, TimeDelta::hours(1)),
    )
}

/// The Energi Data Service source for one area.
#[derive(Debug, Clone)]
pub struct EnergiDataService {
    /// API base URL ([`BASE`] or a test server).
    pub base_url: String,
    /// Dataset name (`DayAheadPrices`; `Elspotprices` for history).
    pub dataset: String,
    /// Price area (DK1, DK2, SE3, ...).
    pub area: String,
    /// EUR or DKK.
    pub currency: String,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl EnergiDataService {
    /// A source for one area of the `DayAheadPrices` dataset.
    pub fn new(
        base_url: impl Into<String>,
        area: impl Into<String>,
        currency: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        EnergiDataService {
            base_url: base_url.into(),
            dataset: "DayAheadPrices".into(),
            area: area.into(),
            currency: currency.into(),
            timeout,
            client: http::client(timeout),
        }
    }
}

impl PriceSource for EnergiDataService {
    fn id(&self) -> String {
        format!("energidataservice:{}:{}", self.area, self.currency)
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            let url = format!(
                "{}/dataset/{}",
                self.base_url.trim_end_matches('/'),
                self.dataset
            );
            let fmt = "%Y-%m-%dT%H:%M";
            let req = self.client.get(url).query(&[
                ("start", from.format(fmt).to_string()),
                ("end", to.format(fmt).to_string()),
                ("filter", format!("{{\"PriceArea\":[\"{}\"]}}", self.area)),
                ("timezone", "utc".to_string()),
                ("limit", "0".to_string()),
            ]);
            let body = http::send(req, self.timeout).await?;
            let quote = parse(&body.text, &self.area, &self.currency)?;
            if quote.slots.is_empty() {
                return Err(SourceError::NotPublished);
            }
            Ok(quote)
        })
    }
}
