//! The `[prices]` section: which provider, its settings, the tariff formula,
//! time zone, currency and fetch timing. [`RawPricesConfig`] is the TOML as
//! written; [`RawPricesConfig::validate`] checks it before anything connects
//! and returns the first problem with the span of the offending value.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use super::schedule::{check_cron, FeedSettings};
use super::tariff::Tariff;
use super::tou::{TouSchedule, TouSource, Window};
use super::{awattar, energidataservice, entsoe, file, nordpool, octopus, tibber, PriceSource};
use crate::config::{bounded_duration, Env, FieldError};
use crate::limits;
use crate::secret::Secret;

type S<T> = Option<Spanned<T>>;

/// `[prices]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricesConfig {
    /// `awattar`, `entsoe`, `nordpool`, `tibber`, `energidataservice`, `octopus`, `tou` or `file`.
    pub provider: S<String>,
    /// IANA zone of the user (charts, evening warning, `tou` windows).
    pub time_zone: S<String>,
    /// ISO 4217 currency shown with prices.
    pub currency: S<String>,
    /// Upper bound on every price request, e.g. "20s".
    pub request_timeout: S<String>,
    /// UTC cron expression, 6 fields, seconds first.
    pub refresh_cron: S<String>,
    /// Local time (market zone) when tomorrow's prices are usually out, "HH:MM".
    pub publication_time: S<String>,
    /// First retry interval, e.g. "10m".
    pub retry_every: S<String>,
    /// Longest retry interval, e.g. "1h".
    pub retry_max: S<String>,
    /// Local time after which a missing tomorrow is a warning, "HH:MM".
    pub warn_after: S<String>,
    /// `[prices.tariff]`
    pub tariff: Option<RawTariff>,
    /// `[prices.awattar]`
    pub awattar: Option<RawAwattar>,
    /// `[prices.entsoe]`
    pub entsoe: Option<RawEntsoe>,
    /// `[prices.nordpool]`
    pub nordpool: Option<RawArea>,
    /// `[prices.tibber]`
    pub tibber: Option<RawTibber>,
    /// `[prices.energidataservice]`
    pub energidataservice: Option<RawArea>,
    /// `[prices.octopus]`
    pub octopus: Option<RawOctopus>,
    /// `[prices.tou]`
    pub tou: Option<RawTou>,
    /// `[prices.file]`
    pub file: Option<RawFile>,
}

/// `[prices.tariff]`: the parts of the formula.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTariff {
    /// Factor on the spot price (default 1).
    pub multiplier: S<f64>,
    /// Markup per kWh before VAT (default 0).
    pub markup_per_kwh: S<f64>,
    /// VAT fraction, 0.19 for 19 % (default 0).
    pub vat: S<f64>,
    /// Flat grid fee per kWh before VAT (default 0).
    pub grid_fee_per_kwh: S<f64>,
    /// Time-of-use grid fee windows, overriding the flat fee inside them.
    #[serde(default)]
    pub grid_fee_windows: Vec<RawWindow>,
}

/// One time-of-use window as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Weekdays (`mon` .. `sun`); all when absent.
    pub days: S<Vec<String>>,
    /// Local start, "HH:MM".
    pub from: Spanned<String>,
    /// Local end, "HH:MM"; at or before `from` wraps past midnight.
    pub to: Spanned<String>,
    /// Price (or fee) per kWh inside the window.
    #[serde(alias = "fee_per_kwh")]
    pub price_per_kwh: Spanned<f64>,
}

/// `[prices.awattar]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAwattar {
    /// `DE` (default) or `AT`.
    pub country: S<String>,
    /// Override of the API base URL.
    pub base_url: S<String>,
}

/// `[prices.entsoe]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntsoe {
    /// Zone name (`DE-LU`, `AT`, `SE3`, ...) or EIC code.
    pub zone: Spanned<String>,
    /// File holding the security token.
    pub token_file: S<String>,
    /// Environment variable holding the security token.
    pub token_env: S<String>,
    /// Override of the API base URL.
    pub base_url: S<String>,
}

/// `[prices.nordpool]` and `[prices.energidataservice]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArea {
    /// Delivery/price area (SE3, DK1, NO2, FI, ...).
    pub area: Spanned<String>,
    /// Override of the API base URL.
    pub base_url: S<String>,
}

/// `[prices.tibber]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTibber {
    /// File holding the personal access token.
    pub token_file: S<String>,
    /// Environment variable holding the token.
    pub token_env: S<String>,
    /// Home id; the account's first home when absent.
    pub home_id: S<String>,
    /// Override of the API base URL.
    pub base_url: S<String>,
}

/// `[prices.octopus]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOctopus {
    /// Product code, e.g. "AGILE-24-10-01".
    pub product: Spanned<String>,
    /// Tariff code, e.g. "E-1R-AGILE-24-10-01-C".
    pub tariff: Spanned<String>,
    /// Override of the API base URL.
    pub base_url: S<String>,
}

/// `[prices.tou]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTou {
    /// Price outside every window; such times are unpriced when absent.
    pub default_price_per_kwh: S<f64>,
    /// The windows, first match wins.
    #[serde(default)]
    pub windows: Vec<RawWindow>,
}

/// `[prices.file]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The CSV or JSON file (relative to the config file's directory).
    pub path: Spanned<String>,
    /// How often to look for changes, e.g. "1m" (default).
    pub poll_every: S<String>,
}

/// The provider and its validated settings.
#[derive(Debug, Clone)]
pub enum Provider {
    /// aWATTar.
    Awattar {
        /// API base URL.
        base_url: String,
    },
    /// ENTSO-E Transparency Platform.
    Entsoe {
        /// API base URL.
        base_url: String,
        /// EIC code of the zone.
        eic: String,
        /// Security token.
        token: Secret,
    },
    /// Nord Pool.
    NordPool {
        /// API base URL.
        base_url: String,
        /// Delivery area.
        area: String,
    },
    /// Tibber.
    Tibber {
        /// API base URL.
        base_url: String,
        /// Personal access token.
        token: Secret,
        /// Home id, or the first home.
        home_id: Option<String>,
    },
    /// Energi Data Service.
    EnergiDataService {
        /// API base URL.
        base_url: String,
        /// Price area.
        area: String,
    },
    /// Octopus Energy.
    Octopus {
        /// API base URL.
        base_url: String,
        /// Product code.
        product: String,
        /// Tariff code.
        tariff: String,
    },
    /// Fixed time-of-use tariff.
    Tou(TouSchedule),
    /// A local file.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// How often to look for changes.
        poll: Duration,
    },
}

/// The validated `[prices]` section.
#[derive(Debug, Clone)]
pub struct PricesConfig {
    /// Where prices come from.
    pub provider: Provider,
    /// The user's zone.
    pub tz: Tz,
    /// Currency shown with prices.
    pub currency: String,
    /// Upper bound on every price request.
    pub request_timeout: Duration,
    /// UTC cron expression for periodic fetches (6 fields).
    pub refresh_cron: String,
    /// Publication and retry timing.
    pub feed: FeedSettings,
    /// The tariff formula.
    pub tariff: Tariff,
}

impl PricesConfig {
    /// Builds the configured price source.
    pub fn source(&self) -> Arc<dyn PriceSource> {
        let t = self.request_timeout;
        let cur = self.currency.clone();
        match &self.provider {
            Provider::Awattar { base_url } => Arc::new(awattar::Awattar::new(base_url, t)),
            Provider::Entsoe {
                base_url,
                eic,
                token,
            } => Arc::new(entsoe::Entsoe::new(base_url, eic, token.clone(), t)),
            Provider::NordPool { base_url, area } => {
                Arc::new(nordpool::NordPool::new(base_url, area, cur, t))
            }
            Provider::Tibber {
                base_url,
                token,
                home_id,
            } => Arc::new(tibber::Tibber::new(
                base_url,
                token.clone(),
                home_id.clone(),
                cur,
                t,
            )),
            Provider::EnergiDataService { base_url, area } => Arc::new(
                energidataservice::EnergiDataService::new(base_url, area, cur, t),
            ),
            Provider::Octopus {
                base_url,
                product,
                tariff,
            } => Arc::new(octopus::Octopus::new(base_url, product, tariff, t)),
            Provider::Tou(schedule) => Arc::new(TouSource {
                schedule: schedule.clone(),
                currency: cur,
            }),
            Provider::File { path, poll } => Arc::new(file::FileSource::new(path, cur, *poll)),
        }
    }
}

fn err<T>(s: &Spanned<T>, message: impl Into<String>, help: impl Into<String>) -> FieldError {
    FieldError::at(s.span(), message, help)
}

fn missing(message: impl Into<String>, help: impl Into<String>) -> FieldError {
    FieldError {
        span: None,
        message: message.into(),
        help: help.into(),
    }
}

fn hhmm(s: &Spanned<String>) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(s.get_ref().trim(), "%H:%M").map_err(|_| {
        err(
            s,
            format!("`{}` is not a time of day", s.get_ref()),
            "write local time as \"HH:MM\", e.g. \"12:45\"",
        )
    })
}

fn tz(s: &Spanned<String>) -> Result<Tz, FieldError> {
    s.get_ref().parse().map_err(|_| {
        err(
            s,
            format!("`{}` is not an IANA time zone", s.get_ref()),
            "write e.g. \"Europe/Berlin\"",
        )
    })
}

fn weekday(s: &Spanned<Vec<String>>) -> Result<Vec<Weekday>, FieldError> {
    s.get_ref()
        .iter()
        .map(|d| d.parse::<Weekday>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            err(
                s,
                "unknown weekday",
                "write days as \"mon\", \"tue\", ... \"sun\"",
            )
        })
}

fn windows(raw: &[RawWindow]) -> Result<Vec<Window>, FieldError> {
    raw.iter()
        .map(|w| {
            Ok(Window {
                days: w
                    .days
                    .as_ref()
                    .map(weekday)
                    .transpose()?
                    .unwrap_or_default(),
                from: hhmm(&w.from)?,
                to: hhmm(&w.to)?,
                price: finite(&w.price_per_kwh)?,
            })
        })
        .collect()
}

fn finite(s: &Spanned<f64>) -> Result<f64, FieldError> {
    if s.get_ref().is_finite() {
        Ok(*s.get_ref())
    } else {
        Err(err(
            s,
            "not a finite number",
            "write a plain number such as 0.25",
        ))
    }
}

fn text(s: &Spanned<String>, what: &str) -> Result<String, FieldError> {
    let v = s.get_ref().trim();
    if v.is_empty() {
        return Err(err(
            s,
            format!("{what} is empty"),
            format!("set the {what}"),
        ));
    }
    Ok(v.to_string())
}

/// Reads a token from `token_file` (relative to `base`) or `token_env`:
/// exactly one of them, never inline in the config.
fn token(
    file: &S<String>,
    var: &S<String>,
    base: &Path,
    env: Env<'_>,
    provider: &str,
) -> Result<Secret, FieldError> {
    match (file, var) {
        (Some(f), None) => {
            let path = base.join(f.get_ref());
            let t = crate::limits::read_secret_file(&path).map_err(|e| {
                err(
                    f,
                    format!("cannot read token_file {}: {e}", path.display()),
                    "make the file readable by the daemon, or use a systemd credential",
                )
            })?;
            let t = t.trim();
            if t.is_empty() {
                return Err(err(
                    f,
                    format!("token_file {} is empty", path.display()),
                    "put the token in the file",
                ));
            }
            Ok(Secret::new(t))
        }
        (None, Some(v)) => match env(v.get_ref())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        {
            Some(t) => Ok(Secret::new(t)),
            None => Err(err(
                v,
                format!("environment variable {} is not set", v.get_ref()),
                "export it in the service's environment",
            )),
        },
        (Some(f), Some(_)) => Err(err(
            f,
            "both token_file and token_env are set",
            "keep one of them",
        )),
        (None, None) => Err(missing(
            format!("[prices.{provider}] needs token_file or token_env"),
            "point token_file at a file holding the token",
        )),
    }
}

/// Per-provider defaults: market zone, publication time, end of tomorrow's
/// delivery day, and currency.
fn defaults(provider: &str, user_tz: Tz) -> (Tz, &'static str, &'static str, &'static str) {
    use chrono_tz::Europe;
    match provider {
        "awattar" => (Europe::Berlin, "14:00", "00:00", "EUR"),
        "entsoe" => (Europe::Brussels, "12:45", "00:00", "EUR"),
        "nordpool" => (Europe::Oslo, "12:45", "00:00", "EUR"),
        "energidataservice" => (Europe::Copenhagen, "13:00", "00:00", "EUR"),
        "tibber" => (user_tz, "13:15", "00:00", "EUR"),
        "octopus" => (Europe::London, "16:00", "23:00", "GBP"),
        _ => (user_tz, "00:00", "00:00", "EUR"),
    }
}

impl RawPricesConfig {
    /// Validates with the process environment, relative paths resolving
    /// against the working directory.
    pub fn validate(self) -> Result<PricesConfig, FieldError> {
        self.validate_with(Path::new("."), &crate::config::process_env)
    }

    /// Validates; relative paths resolve against `base` (the config file's
    /// directory) and token variables are looked up with `env`.
    pub fn validate_with(self, base: &Path, env: Env<'_>) -> Result<PricesConfig, FieldError> {
        let p = self.provider.as_ref().ok_or_else(|| missing("[prices] has no provider", "set provider = \"entsoe\" (or awattar, nordpool, tibber, energidataservice, octopus, tou, file)"))?;
        let name = p.get_ref().trim().to_lowercase();
        let user_tz = match &self.time_zone {
            Some(s) => tz(s)?,
            None => {
                return Err(missing(
                    "[prices] has no time_zone",
                    "set time_zone = \"Europe/Berlin\" (your IANA zone)",
                ))
            }
        };
        let (market_tz, publication, ends, default_currency) = defaults(&name, user_tz);
        let section = |present: bool| -> Result<(), FieldError> {
            if present {
                Ok(())
            } else {
                Err(err(
                    p,
                    format!("provider `{name}` needs a [prices.{name}] section"),
                    "see config/prices-examples.toml",
                ))
            }
        };
        let url = |s: &S<String>, default: &str| -> Result<String, FieldError> {
            let Some(u) = s.as_ref() else {
                return Ok(default.to_string());
            };
            match url::Url::parse(u.get_ref().trim()) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
                {
                    Ok(u.get_ref().trim().trim_end_matches('/').to_string())
                }
                _ => Err(err(
                    u,
                    format!(
                        "base_url `{}` is not an http(s) URL",
                        limits::clip(u.get_ref())
                    ),
                    format!("write an absolute URL with a host, e.g. \"{default}\""),
                )),
            }
        };
        let provider = match name.as_str() {
            "awattar" => {
                let a = self.awattar.as_ref();
                let country = a.and_then(|a| a.country.as_ref());
                let default = match country.map(|c| c.get_ref().to_uppercase()).as_deref() {
                    None | Some("DE") => awattar::BASE_DE,
                    Some("AT") => awattar::BASE_AT,
                    Some(_) => {
                        return Err(err(
                            country.expect("some"),
                            "unknown aWATTar country",
                            "use \"DE\" or \"AT\"",
                        ))
                    }
                };
                Provider::Awattar {
                    base_url: url(&a.and_then(|a| a.base_url.clone()), default)?,
                }
            }
            "entsoe" => {
                section(self.entsoe.is_some())?;
                let e = self.entsoe.as_ref().expect("checked");
                let eic = entsoe::zone_eic(e.zone.get_ref().trim())
                    .ok_or_else(|| err(&e.zone, format!("unknown zone `{}`", e.zone.get_ref()), "use a zone such as \"DE-LU\", \"AT\", \"NL\", \"SE3\", or a 16-character EIC code"))?;
                Provider::Entsoe {
                    base_url: url(&e.base_url, entsoe::BASE)?,
                    eic,
                    token: token(&e.token_file, &e.token_env, base, env, "entsoe")?,
                }
            }
            "nordpool" | "energidataservice" => {
                let raw = if name == "nordpool" {
                    &self.nordpool
                } else {
                    &self.energidataservice
                };
                section(raw.is_some())?;
                let r = raw.as_ref().expect("checked");
                let area = text(&r.area, "area")?.to_uppercase();
                if name == "nordpool" {
                    Provider::NordPool {
                        base_url: url(&r.base_url, nordpool::BASE)?,
                        area,
                    }
                } else {
                    Provider::EnergiDataService {
                        base_url: url(&r.base_url, energidataservice::BASE)?,
                        area,
                    }
                }
            }
            "tibber" => {
                section(self.tibber.is_some())?;
                let t = self.tibber.as_ref().expect("checked");
                Provider::Tibber {
                    base_url: url(&t.base_url, tibber::BASE)?,
                    token: token(&t.token_file, &t.token_env, base, env, "tibber")?,
                    home_id: t.home_id.as_ref().map(|h| text(h, "home_id")).transpose()?,
                }
            }
            "octopus" => {
                section(self.octopus.is_some())?;
                let o = self.octopus.as_ref().expect("checked");
                Provider::Octopus {
                    base_url: url(&o.base_url, octopus::BASE)?,
                    product: text(&o.product, "product")?,
                    tariff: text(&o.tariff, "tariff")?,
                }
            }
            "tou" => {
                section(self.tou.is_some())?;
                let t = self.tou.as_ref().expect("checked");
                if t.windows.is_empty() && t.default_price_per_kwh.is_none() {
                    return Err(err(
                        p,
                        "[prices.tou] has no windows and no default price",
                        "add [[prices.tou.windows]] or default_price_per_kwh",
                    ));
                }
                Provider::Tou(TouSchedule {
                    tz: user_tz,
                    windows: windows(&t.windows)?,
                    default: t.default_price_per_kwh.as_ref().map(finite).transpose()?,
                })
            }
            "file" => {
                section(self.file.is_some())?;
                let f = self.file.as_ref().expect("checked");
                // Not read here: a daemon restarted while a script is
                // rewriting the file must start on its cached prices.
                // `check-config` reads it and refuses a missing one.
                let path = base.join(text(&f.path, "path")?);
                Provider::File {
                    path,
                    poll: f
                        .poll_every
                        .as_ref()
                        .map(|s| bounded_duration(s, &limits::PRICE_FILE_POLL))
                        .transpose()?
                        .unwrap_or(Duration::from_secs(60)),
                }
            }
            other => {
                return Err(err(p, format!("unknown provider `{other}`"), "use awattar, entsoe, nordpool, tibber, energidataservice, octopus, tou or file"));
            }
        };
        let currency = match &self.currency {
            Some(c) if c.get_ref().trim().len() == 3 => c.get_ref().trim().to_uppercase(),
            Some(c) => {
                return Err(err(
                    c,
                    format!("`{}` is not a currency code", c.get_ref()),
                    "write an ISO 4217 code such as \"EUR\"",
                ))
            }
            None => default_currency.to_string(),
        };
        if name == "octopus" && currency != "GBP" {
            let c = self.currency.as_ref().expect("non-default");
            return Err(err(
                c,
                "octopus prices are in GBP",
                "remove currency or set it to \"GBP\"",
            ));
        }
        if name == "energidataservice" && currency != "EUR" && currency != "DKK" {
            let c = self.currency.as_ref().expect("non-default");
            return Err(err(
                c,
                "energi data service publishes EUR and DKK only",
                "set currency to \"EUR\" or \"DKK\"",
            ));
        }
        let refresh_cron = match &self.refresh_cron {
            Some(c) => {
                check_cron(c.get_ref()).map_err(|why| {
                    err(
                        c,
                        why,
                        "write 6 UTC fields, seconds first, e.g. \"0 5 * * * *\"",
                    )
                })?;
                c.get_ref().clone()
            }
            None => "0 5 * * * *".to_string(),
        };
        let dur = |s: &S<String>, bounds: &limits::Bounds, d: u64| {
            s.as_ref()
                .map(|s| bounded_duration(s, bounds))
                .transpose()
                .map(|v| v.unwrap_or(Duration::from_secs(d)))
        };
        let time = |s: &S<String>, d: &str| {
            s.as_ref().map(hhmm).transpose().map(|v| {
                v.unwrap_or_else(|| NaiveTime::parse_from_str(d, "%H:%M").expect("default time"))
            })
        };
        let feed = FeedSettings {
            market_tz,
            publication: time(&self.publication_time, publication)?,
            tomorrow_ends: time(&None, ends)?,
            retry_every: dur(&self.retry_every, &limits::PRICE_RETRY_EVERY, 600)?,
            retry_max: dur(&self.retry_max, &limits::PRICE_RETRY_MAX, 3600)?,
            tz: user_tz,
            warn_after: time(&self.warn_after, "18:00")?,
        };
        let t = self.tariff.unwrap_or_default();
        let num = |s: &S<f64>, d: f64| s.as_ref().map(finite).transpose().map(|v| v.unwrap_or(d));
        let vat = num(&t.vat, 0.0)?;
        if let Some(v) = t.vat.as_ref().filter(|_| !(0.0..1.0).contains(&vat)) {
            return Err(err(
                v,
                format!("vat {vat} is not a fraction"),
                "write 19 % as 0.19",
            ));
        }
        let tariff = Tariff {
            multiplier: num(&t.multiplier, 1.0)?,
            markup_per_kwh: num(&t.markup_per_kwh, 0.0)?,
            vat,
            grid_fee: TouSchedule {
                tz: user_tz,
                windows: windows(&t.grid_fee_windows)?,
                default: Some(num(&t.grid_fee_per_kwh, 0.0)?),
            },
            currency: currency.clone(),
        };
        Ok(PricesConfig {
            provider,
            tz: user_tz,
            currency,
            request_timeout: dur(&self.request_timeout, &limits::PRICE_REQUEST_TIMEOUT, 20)?,
            refresh_cron,
            feed,
            tariff,
        })
    }
}
