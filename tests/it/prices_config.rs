//! The `[prices]` section: every example in config/prices-examples.toml
//! validates, and bad values are reported at their span with help.

use serde::Deserialize;
use smartcharged::config::FieldError;
use smartcharged::prices::config::{PricesConfig, Provider, RawPricesConfig};

#[derive(Deserialize)]
struct Doc {
    prices: RawPricesConfig,
}

fn env(name: &str) -> Option<String> {
    match name {
        "ENTSOE_TOKEN" => Some("entsoe-secret".into()),
        "TIBBER_TOKEN" => Some("tibber-secret".into()),
        _ => None,
    }
}

fn validate(text: &str) -> Result<PricesConfig, FieldError> {
    let doc: Doc = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    doc.prices
        .validate_with(std::path::Path::new("/etc/smartcharged"), &env)
}

/// The examples file, split into its provider blocks.
fn examples() -> Vec<(String, String)> {
    let path = format!("{}/config/prices-examples.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    text.split("# --- provider: ")
        .skip(1)
        .map(|block| {
            let (first, rest) = block.split_once('\n').unwrap();
            (first.trim_end_matches(" ---").to_string(), rest.to_string())
        })
        .collect()
}

#[test]
fn every_provider_has_a_valid_example() {
    let found: Vec<String> = examples().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        found,
        [
            "entsoe",
            "awattar",
            "nordpool",
            "energidataservice",
            "tibber",
            "octopus",
            "tou",
            "file"
        ]
    );
    for (name, block) in examples() {
        let cfg = validate(&block).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(cfg.source().id().split(':').next().unwrap(), name, "{name}");
    }
}

#[test]
fn example_values_arrive_validated() {
    let (_, entsoe) = examples().into_iter().find(|(n, _)| n == "entsoe").unwrap();
    let cfg = validate(&entsoe).unwrap();
    let Provider::Entsoe { eic, token, .. } = &cfg.provider else {
        panic!("{:?}", cfg.provider)
    };
    assert_eq!(eic, "10Y1001A1001A82H");
    assert_eq!(token.expose(), "entsoe-secret");
    assert!(!format!("{cfg:?}").contains("entsoe-secret"));
    assert_eq!(cfg.tariff.vat, 0.19);
    assert_eq!(cfg.tariff.grid_fee.windows.len(), 2);
    assert_eq!(cfg.feed.retry_every, std::time::Duration::from_secs(600));
    assert_eq!(cfg.refresh_cron, "0 5 * * * *");
    let (_, octopus) = examples()
        .into_iter()
        .find(|(n, _)| n == "octopus")
        .unwrap();
    let cfg = validate(&octopus).unwrap();
    assert_eq!(cfg.currency, "GBP");
    assert_eq!(cfg.feed.market_tz, chrono_tz::Europe::London);
    assert_eq!(cfg.feed.tomorrow_ends.format("%H:%M").to_string(), "23:00");
}

/// Asserts a validation error whose span covers `needle` and whose message
/// contains `message`.
fn assert_error(text: &str, needle: &str, message: &str) {
    let e = validate(text).unwrap_err();
    let span = e.span.clone().unwrap_or_else(|| panic!("no span: {e:?}"));
    assert_eq!(&text[span], needle, "{e:?}");
    assert!(e.message.contains(message), "{e:?}");
    assert!(!e.help.is_empty());
}

#[test]
fn bad_values_are_reported_at_their_span() {
    let base = "[prices]\ntime_zone = \"Europe/Berlin\"\n";
    assert_error(
        &format!("{base}provider = \"spotty\"\n"),
        "\"spotty\"",
        "unknown provider",
    );
    assert_error(
        "[prices]\nprovider = \"awattar\"\ntime_zone = \"Mars/Olympus\"\n",
        "\"Mars/Olympus\"",
        "not an IANA time zone",
    );
    assert_error(
        &format!("{base}provider = \"awattar\"\n[prices.tariff]\nvat = 19\n"),
        "19",
        "not a fraction",
    );
    assert_error(
        &format!("{base}provider = \"entsoe\"\n[prices.entsoe]\nzone = \"XX\"\ntoken_env = \"ENTSOE_TOKEN\"\n"),
        "\"XX\"",
        "unknown zone",
    );
    assert_error(
        &format!("{base}provider = \"tibber\"\n[prices.tibber]\ntoken_env = \"NOPE\"\n"),
        "\"NOPE\"",
        "not set",
    );
    assert_error(
        &format!("{base}provider = \"awattar\"\nrefresh_cron = \"0 * * * *\"\n"),
        "\"0 * * * *\"",
        "6 fields",
    );
    assert_error(
        &format!("{base}provider = \"awattar\"\npublication_time = \"25:00\"\n"),
        "\"25:00\"",
        "not a time of day",
    );
    assert_error(
        &format!("{base}provider = \"nordpool\"\n"),
        "\"nordpool\"",
        "needs a [prices.nordpool] section",
    );
    assert_error(
        &format!("{base}provider = \"octopus\"\ncurrency = \"EUR\"\n[prices.octopus]\nproduct = \"P\"\ntariff = \"T\"\n"),
        "\"EUR\"",
        "GBP",
    );
    let missing = validate(&format!(
        "{base}provider = \"entsoe\"\n[prices.entsoe]\nzone = \"AT\"\n"
    ))
    .unwrap_err();
    assert!(
        missing.message.contains("token_file or token_env"),
        "{missing:?}"
    );
    let unknown: Result<Doc, _> =
        toml::from_str(&format!("{base}provider = \"awattar\"\nprovder = 1\n"));
    assert!(unknown
        .err()
        .unwrap()
        .message()
        .contains("unknown field `provder`"));
}
