//! Octopus Energy unit rates (Agile: half-hourly), consumer prices in pence
//! per kWh including VAT, no key needed.
//!
//! `GET {base}/v1/products/{product}/electricity-tariffs/{tariff}/standard-unit-rates/?period_from=..Z&period_to=..Z`
//! answers `{count, next, previous, results:[{valid_from, valid_to, value_exc_vat, value_inc_vat}]}`
//! newest first. `valid_to` is null for an open-ended rate, which is then
//! clipped to the requested period. Prices become GBP per kWh.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{http, Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};

/// The public API base URL.
pub const BASE: &str = "https://api.octopus.energy";

/// A page of unit rates.
#[derive(Deserialize)]
struct Page {
    /// URL of the next page, if any.
    next: Option<String>,
    /// The rates, newest first.
    results: Vec<Rate>,
}

/// One unit rate.
#[derive(Deserialize)]
struct Rate {
    /// Start of validity.
    valid_from: DateTime<Utc>,
    /// End of validity; `None` when open-ended.
    valid_to: Option<DateTime<Utc>>,
    /// Pence per kWh incl. VAT.
    value_inc_vat: f64,
}

/// Pages followed at most; two days of half-hours fit in one page.
const MAX_PAGES: usize = 5;

fn malformed(msg: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed(format!("octopus: {msg}"))
}

/// Parses one page into GBP/kWh slots clipped to `[from, to)`, and the next
/// page's URL.
fn parse_page(
    body: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<Slot>, Option<String>), SourceError> {
    let page: Page = serde_json::from_str(body).map_err(malformed)?;
    let slots = page
        .results
        .iter()
        .filter_map(|r| {
            let start = r.valid_from.max(from);
            let end = r.valid_to.unwrap_or(to).min(to);
            (start < end).then_some(Slot {
                start,
                end,
                price: r.value_inc_vat / 100.0,
            })
        })
        .collect();
    Ok((slots, page.next))
}

/// Parses a unit-rates response into a consumer quote in GBP/kWh for `[from, to)`.
pub fn parse(body: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Quote, SourceError> {
    let (slots, _) = parse_page(body, from, to)?;
    Quote::new(Basis::ConsumerPerKwh, "GBP", slots)
}

/// The Octopus source for one tariff.
#[derive(Debug, Clone)]
pub struct Octopus {
    /// API base URL ([`BASE`] or a test server).
    pub base_url: String,
    /// Product code, e.g. `AGILE-24-10-01`.
    pub product: String,
    /// Tariff code, e.g. `E-1R-AGILE-24-10-01-C` (the last letter is the region).
    pub tariff: String,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl Octopus {
    /// A source for one product and tariff code.
    pub fn new(
        base_url: impl Into<String>,
        product: impl Into<String>,
        tariff: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Octopus {
            base_url: base_url.into(),
            product: product.into(),
            tariff: tariff.into(),
            timeout,
            client: http::client(timeout),
        }
    }
}

impl PriceSource for Octopus {
    fn id(&self) -> String {
        format!("octopus:{}", self.tariff)
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            let url = format!(
                "{}/v1/products/{}/electricity-tariffs/{}/standard-unit-rates/",
                self.base_url.trim_end_matches('/'),
                self.product,
                self.tariff
            );
            let fmt = "%Y-%m-%dT%H:%M:%SZ";
            let mut req = self.client.get(url).query(&[
                ("period_from", from.format(fmt).to_string()),
                ("period_to", to.format(fmt).to_string()),
                ("page_size", "1500".to_string()),
            ]);
            let mut slots = Vec::new();
            for _ in 0..MAX_PAGES {
                let body = http::send(req, self.timeout).await?;
                let (page, next) = parse_page(&body.text, from, to)?;
                slots.extend(page);
                match next {
                    Some(next) => req = self.client.get(next),
                    None => break,
                }
            }
            if slots.is_empty() {
                return Err(SourceError::NotPublished);
            }
            Quote::new(Basis::ConsumerPerKwh, "GBP", slots)
        })
    }
}
