//! ENTSO-E Transparency Platform: the A44 day-ahead price document.
//!
//! `GET {base}/api?securityToken=..&documentType=A44&in_Domain=<EIC>&out_Domain=<EIC>&periodStart=yyyyMMddHHmm&periodEnd=..`
//! The token travels in the query string (the platform's only way), so the
//! URL is never logged and transport errors drop it (see [`super::http`]).
//!
//! A document may carry several TimeSeries for one day: since the 15-minute
//! market (2025-10-01) and in earlier parallel runs, the SDAC result is the
//! one with `classificationSequence_AttributeInstanceComponent.position` 1.
//! Periods are PT15M or PT60M, and with curve type A03 a point that repeats
//! the previous price is omitted: it is filled with the previous point's price.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::{http, Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};
use crate::secret::Secret;

/// The most slots one A44 period may have: a week of quarter-hours (a
/// document covers a day or two).
const MAX_PERIOD_SLOTS: i64 = 7 * 96;

/// The public API base URL.
pub const BASE: &str = "https://web-api.tp.entsoe.eu";

/// Common bidding zones and their EIC codes, so the config can say `DE-LU`.
pub const ZONES: &[(&str, &str)] = &[
    ("AT", "10YAT-APG------L"),
    ("BE", "10YBE----------2"),
    ("CH", "10YCH-SWISSGRIDZ"),
    ("CZ", "10YCZ-CEPS-----N"),
    ("DE-LU", "10Y1001A1001A82H"),
    ("DK1", "10YDK-1--------W"),
    ("DK2", "10YDK-2--------M"),
    ("EE", "10Y1001A1001A39I"),
    ("ES", "10YES-REE------0"),
    ("FI", "10YFI-1--------U"),
    ("FR", "10YFR-RTE------C"),
    ("NL", "10YNL----------L"),
    ("NO1", "10YNO-1--------2"),
    ("NO2", "10YNO-2--------T"),
    ("NO3", "10YNO-3--------J"),
    ("NO4", "10YNO-4--------9"),
    ("NO5", "10Y1001A1001A48H"),
    ("PL", "10YPL-AREA-----S"),
    ("PT", "10YPT-REN------W"),
    ("SE1", "10Y1001A1001A44P"),
    ("SE2", "10Y1001A1001A45N"),
    ("SE3", "10Y1001A1001A46L"),
    ("SE4", "10Y1001A1001A47J"),
];

/// The EIC code of a zone name from [`ZONES`] (case-insensitive), or the
/// argument itself when it already looks like an EIC code (16 characters).
pub fn zone_eic(zone: &str) -> Option<String> {
    ZONES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(zone))
        .map(|(_, eic)| eic.to_string())
        .or_else(|| (zone.len() == 16 && zone.starts_with("10Y")).then(|| zone.to_string()))
}

/// `Publication_MarketDocument`, the fields we read.
#[derive(Deserialize)]
struct Document {
    /// One series per day and classification.
    #[serde(rename = "TimeSeries", default)]
    series: Vec<TimeSeries>,
}

/// One TimeSeries.
#[derive(Deserialize)]
struct TimeSeries {
    /// 1 for the SDAC result where several auctions are published.
    #[serde(rename = "classificationSequence_AttributeInstanceComponent.position")]
    classification: Option<u32>,
    /// Currency of the prices.
    #[serde(rename = "currency_Unit.name")]
    currency: Option<String>,
    /// The periods (usually one per day).
    #[serde(rename = "Period", default)]
    periods: Vec<Period>,
}

/// One Period of a TimeSeries.
#[derive(Deserialize)]
struct Period {
    /// Start and end of the period.
    #[serde(rename = "timeInterval")]
    interval: Interval,
    /// `PT15M`, `PT30M` or `PT60M`.
    resolution: String,
    /// The points; with A03 some are omitted.
    #[serde(rename = "Point", default)]
    points: Vec<Point>,
}

/// A time interval as `2025-10-30T23:00Z`.
#[derive(Deserialize)]
struct Interval {
    /// First instant.
    start: String,
    /// First instant after.
    end: String,
}

/// One point: 1-based position within the period and its price.
#[derive(Deserialize)]
struct Point {
    /// 1-based position.
    position: u32,
    /// Price per MWh.
    #[serde(rename = "price.amount")]
    price: f64,
}

/// `Acknowledgement_MarketDocument`: the platform's answer when nothing
/// matches (prices not published yet) or the request is wrong.
#[derive(Deserialize)]
struct Acknowledgement {
    /// The reasons given.
    #[serde(rename = "Reason", default)]
    reasons: Vec<Reason>,
}

/// One reason of an acknowledgement.
#[derive(Deserialize)]
struct Reason {
    /// `999` for "no matching data".
    code: Option<String>,
    /// Human-readable text.
    text: Option<String>,
}

fn malformed(msg: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed(format!("entso-e: {msg}"))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, SourceError> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ"))
        .map(|t| t.and_utc())
        .map_err(|_| malformed(format!("bad time `{s}`")))
}

fn parse_resolution(s: &str) -> Result<TimeDelta, SourceError> {
    match s.trim() {
        "PT15M" => Ok(TimeDelta::minutes(15)),
        "PT30M" => Ok(TimeDelta::minutes(30)),
        "PT60M" | "PT1H" => Ok(TimeDelta::hours(1)),
        other => Err(malformed(format!("unsupported resolution `{other}`"))),
    }
}

/// Parses an A44 document into a spot quote: the SDAC series only, each
/// period expanded to every position with omitted points filled.
pub fn parse(body: &str) -> Result<Quote, SourceError> {
    if body.contains("Acknowledgement_MarketDocument") {
        let ack: Acknowledgement = quick_xml::de::from_str(body).map_err(malformed)?;
        if ack.reasons.iter().any(|r| r.code.as_deref() == Some("999")) {
            return Err(SourceError::NotPublished);
        }
        let text: Vec<String> = ack.reasons.into_iter().filter_map(|r| r.text).collect();
        return Err(SourceError::Rejected {
            status: 200,
            detail: text.join("; "),
        });
    }
    let doc: Document = quick_xml::de::from_str(body).map_err(malformed)?;
    let classified = doc.series.iter().any(|s| s.classification.is_some());
    let mut currency = None;
    // Keyed by start so a day published in two series is taken once.
    let mut slots: BTreeMap<DateTime<Utc>, Slot> = BTreeMap::new();
    for series in doc
        .series
        .iter()
        .filter(|s| !classified || s.classification == Some(1))
    {
        currency = currency.or(series.currency.clone());
        for p in &series.periods {
            let start = parse_time(&p.interval.start)?;
            let end = parse_time(&p.interval.end)?;
            let step = parse_resolution(&p.resolution)?;
            // A period is at most a few days of slots; an end before its
            // start (or centuries after it) would otherwise wrap or build
            // billions of slots.
            let count = (end - start).num_seconds() / step.num_seconds();
            if !(1..=MAX_PERIOD_SLOTS).contains(&count) {
                return Err(malformed(format!(
                    "period {start} to {end} is not 1 to {MAX_PERIOD_SLOTS} slots long"
                )));
            }
            let count = count as u32;
            let given: BTreeMap<u32, f64> =
                p.points.iter().map(|pt| (pt.position, pt.price)).collect();
            let mut last = None;
            for pos in 1..=count {
                let Some(price) = given.get(&pos).copied().or(last) else {
                    return Err(malformed(format!("period starting {start} has no point 1")));
                };
                last = Some(price);
                let s = start + step * (pos as i32 - 1);
                slots.insert(
                    s,
                    Slot {
                        start: s,
                        end: s + step,
                        price,
                    },
                );
            }
        }
    }
    Quote::new(
        Basis::SpotPerMwh,
        currency.unwrap_or_else(|| "EUR".into()),
        slots.into_values().collect(),
    )
}

/// The ENTSO-E source for one bidding zone.
#[derive(Debug, Clone)]
pub struct Entsoe {
    /// API base URL ([`BASE`] or a test server).
    pub base_url: String,
    /// EIC code of the bidding zone.
    pub eic: String,
    /// The security token (query parameter `securityToken`).
    pub token: Secret,
    /// Upper bound on a request.
    pub timeout: Duration,
    /// The shared HTTP client.
    pub client: reqwest::Client,
}

impl Entsoe {
    /// A source for one zone.
    pub fn new(
        base_url: impl Into<String>,
        eic: impl Into<String>,
        token: Secret,
        timeout: Duration,
    ) -> Self {
        Entsoe {
            base_url: base_url.into(),
            eic: eic.into(),
            token,
            timeout,
            client: http::client(timeout),
        }
    }
}

impl PriceSource for Entsoe {
    fn id(&self) -> String {
        format!("entsoe:{}", self.eic)
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        Box::pin(async move {
            let url = format!("{}/api", self.base_url.trim_end_matches('/'));
            let fmt = "%Y%m%d%H%M";
            let req = self.client.get(url).query(&[
                ("securityToken", self.token.expose()),
                ("documentType", "A44"),
                ("in_Domain", &self.eic),
                ("out_Domain", &self.eic),
                ("periodStart", &from.format(fmt).to_string()),
                ("periodEnd", &to.format(fmt).to_string()),
            ]);
            match http::send(req, self.timeout).await {
                Ok(body) => parse(&body.text),
                // The platform also answers "no matching data" with a 400
                // and an acknowledgement document.
                Err(SourceError::Rejected { detail, .. }) if detail.contains("Acknowledgement") => {
                    Err(SourceError::NotPublished)
                }
                Err(e) => Err(e),
            }
        })
    }
}
