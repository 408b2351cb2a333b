//! Prices from a local file, the way to plug in anything else: a script
//! writes the file, the daemon re-reads it when it changes.
//!
//! Formats, chosen by the header (CSV) or the extension `.json`:
//! - `start_utc,price_eur_per_mwh`: hourly spot prices (as in the shared
//!   day-ahead series); a slot ends at the next start, or after an hour.
//! - `start,end,price_per_kwh`: consumer prices, any slot lengths.
//! - JSON: `{"basis": "spot_per_mwh" | "consumer_per_kwh", "currency": "EUR",
//!   "slots": [{"start": "..Z", "end": "..Z", "price": 0.31}]}`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};

use super::{slots_from_starts, Basis, BoxFuture, PriceSource, Quote, Slot, SourceError};

fn malformed(path: &Path, msg: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed(format!("{}: {msg}", path.display()))
}

fn time(path: &Path, s: &str) -> Result<DateTime<Utc>, SourceError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            malformed(
                path,
                format!(
                    "bad time `{}` (use RFC 3339, e.g. 2024-06-14T22:00:00Z)",
                    s.trim()
                ),
            )
        })
}

fn number(path: &Path, s: &str) -> Result<f64, SourceError> {
    s.trim()
        .parse()
        .map_err(|_| malformed(path, format!("bad price `{}`", s.trim())))
}

/// Parses file contents; `currency` applies to CSV files.
pub fn parse(path: &Path, text: &str, currency: &str) -> Result<Quote, SourceError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return serde_json::from_str::<Quote>(text)
            .map_err(|e| malformed(path, e))
            .and_then(|q| {
                Quote::new(q.basis, q.currency, q.slots).map_err(|e| malformed(path, e))
            });
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header = lines.next().ok_or_else(|| malformed(path, "empty file"))?;
    let header: Vec<String> = header.split(',').map(|h| h.trim().to_lowercase()).collect();
    let rows = lines.map(|l| l.split(',').collect::<Vec<_>>());
    let quote =
        match header
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["start_utc", "price_eur_per_mwh"] => {
                let mut points = Vec::new();
                for r in rows {
                    let [t, p] = r.as_slice() else {
                        return Err(malformed(path, "expected 2 columns"));
                    };
                    points.push((time(path, t)?, number(path, p)?));
                }
                Quote::new(
                    Basis::SpotPerMwh,
                    currency,
                    slots_from_starts(points, TimeDelta::hours(1)),
                )
            }
            ["start", "end", "price_per_kwh"] => {
                let mut slots = Vec::new();
                for r in rows {
                    let [s, e, p] = r.as_slice() else {
                        return Err(malformed(path, "expected 3 columns"));
                    };
                    slots.push(Slot {
                        start: time(path, s)?,
                        end: time(path, e)?,
                        price: number(path, p)?,
                    });
                }
                Quote::new(Basis::ConsumerPerKwh, currency, slots)
            }
            _ => return Err(malformed(
                path,
                "unknown header (use `start_utc,price_eur_per_mwh` or `start,end,price_per_kwh`)",
            )),
        };
    quote.map_err(|e| malformed(path, e))
}

/// What identifies one version of the file.
type Stamp = (Option<SystemTime>, u64);

/// The `file` source. It re-reads the file only when its modification time
/// or size changed, and otherwise answers from the last read.
#[derive(Debug)]
pub struct FileSource {
    /// The file.
    pub path: PathBuf,
    /// Currency of CSV prices.
    pub currency: String,
    /// How often the schedule looks at the file.
    pub poll: Duration,
    /// The last read: its stamp and result.
    last: Mutex<Option<(Stamp, Quote)>>,
}

impl FileSource {
    /// A source for `path`, looked at every `poll`.
    pub fn new(path: impl Into<PathBuf>, currency: impl Into<String>, poll: Duration) -> Self {
        FileSource {
            path: path.into(),
            currency: currency.into(),
            poll,
            last: Mutex::new(None),
        }
    }

    /// Reads the file if it changed since the last read.
    pub fn read(&self) -> Result<Quote, SourceError> {
        let io = |source| SourceError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, q)) = last.as_ref() {
            if *s == stamp {
                return Ok(q.clone());
            }
        }
        if meta.len() > crate::limits::PRICE_FILE_MAX {
            return Err(malformed(
                &self.path,
                format!("larger than {} bytes", crate::limits::PRICE_FILE_MAX),
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(io)?;
        let quote = parse(&self.path, &text, &self.currency)?;
        *last = Some((stamp, quote.clone()));
        Ok(quote)
    }
}

impl PriceSource for FileSource {
    fn id(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn fetch(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Quote, SourceError>> {
        let result = self.read().map(|mut q| {
            q.slots.retain(|s| s.end > from && s.start < to);
            q
        });
        Box::pin(async move { result })
    }

    fn poll_every(&self) -> Option<Duration> {
        Some(self.poll)
    }
}
