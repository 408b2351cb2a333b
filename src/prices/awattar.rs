//! aWATTar market data (Germany and Austria): hourly or 15-minute EPEX
//! day-ahead prices in €/MWh, no key needed.
//!
//! `GET {base}/v1/marketdata?start=<ms>&end=<ms>` answers
//! `{"object":"list","data":[{start_timestamp, end_timestamp, marketprice, unit}]}`
//! with epoch milliseconds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{http, Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};

/// Base URL for Germany.
pub const BASE_DE: &str = "https://api.awattar.de";
/// Base URL for Austria.
pub const BASE_AT: &str = "https://api.awattar.at";

/// The response envelope.
#[derive(Deserialize)]
struct Response {
    /// The price entries.
    data: Vec<Entry>,
}

/// One price entry.
#[derive(Deserialize)]
struct Entry {
    /// Slot start, epoch milliseconds.
    start_timestamp: i64,
    /// Slot end, epoch milliseconds.
    end_timestamp: i64,
    /// Price in `unit`.
    marketprice: f64,
    /// Always `Eur/MWh` so far; anything else is refused.
    unit: String,
}

/// Parses a marketdata response into a spot quote in EUR/MWh.
pub fn parse(body: &str) -> Result<Quote, SourceError> {
    let r: Response =
        serde_json::from_str(body).map_err(|e| SourceError::Malformed(format!("awattar: {e}")))?;
    let mut slots = Vec::with_capacity(r.data.len());
    for e in r.data {
        if !e.unit.eq_ignore_ascii_case("eur/mwh") {
            return Err(SourceError::Malformed(format!(
                "awattar: unexpected unit `{}`",
                e.unit
            )));
        }
        let ms = |v: i64| {
            DateTime::from_timestamp_millis(v)
                .ok_or_else(|| SourceError::Malformed(format!("awattar: bad timestamp {v}")))
        };
        slots.push(Slot {
            start: ms(e.start_timestamp)?,
            end: ms(e.end_timestamp)?,
            price: e.marketprice,
        });
    }
    Quote::new(Basis::SpotPerMwh, "EUR", slots)
}

/// The aWATTar source.
#[derive(Debug, Clone)]
pub struct Awattar {
    /// API base URL ([`BASE_DE`] or [`BASE_AT`], or a test server).
    pub base_url: String,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl Awattar {
    /// A source for `base_url` with a request timeout.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Self {
        Awattar {
            base_url: base_url.into(),
            timeout,
            client: http::client(timeout),
        }
    }
}

impl PriceSource for Awattar {
    fn id(&self) -> String {
        format!("awattar:{}", self.base_url.trim_end_matches('/'))
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            let url = format!("{}/v1/marketdata", self.base_url.trim_end_matches('/'));
            let req = self.client.get(url).query(&[
                ("start", from.timestamp_millis().to_string()),
                ("end", to.timestamp_millis().to_string()),
            ]);
            let body = http::send(req, self.timeout).await?;
            let quote = parse(&body.text)?;
            if quote.slots.is_empty() {
                return Err(SourceError::NotPublished);
            }
            Ok(quote)
        })
    }
}
