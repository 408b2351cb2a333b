//! Names the field behind a JSON error. serde reports only a position;
//! people fixing a request want the field. Runs only after a failure, so
//! the fast path stays a single typed parse.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::PlanError;
use crate::request::TieBreak;

/// Explains why `text` is not a valid request, given serde's error.
pub(crate) fn diagnose(text: &str, err: serde_json::Error) -> PlanError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return PlanError::invalid("request", format!("not valid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return PlanError::invalid("request", "must be a JSON object");
    };
    check_request(obj).unwrap_or_else(|| PlanError::invalid("request", err.to_string()))
}

fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    name: &str,
    path: &str,
    required: bool,
) -> Option<PlanError> {
    match obj.get(name) {
        None if required => Some(PlanError::invalid(path, "is missing")),
        None => None,
        Some(v) => T::deserialize(v)
            .err()
            .map(|e| PlanError::invalid(path, e.to_string())),
    }
}

fn check_request(obj: &Map<String, Value>) -> Option<PlanError> {
    type Time = DateTime<Utc>;
    field::<Time>(obj, "now", "now", true)
        .or_else(|| field::<Time>(obj, "deadline", "deadline", true))
        .or_else(|| {
            [
                "battery_kwh",
                "soc_percent",
                "target_percent",
                "max_power_kw",
                "efficiency",
            ]
            .iter()
            .find_map(|f| field::<f64>(obj, f, f, true))
        })
        .or_else(|| field::<f64>(obj, "min_soc_percent", "min_soc_percent", false))
        .or_else(|| field::<Option<u32>>(obj, "max_blocks", "max_blocks", false))
        .or_else(|| field::<Option<u32>>(obj, "min_block_minutes", "min_block_minutes", false))
        .or_else(|| {
            field::<Option<f64>>(obj, "charge_limit_percent", "charge_limit_percent", false)
        })
        .or_else(|| field::<Option<f64>>(obj, "opportunistic_price", "opportunistic_price", false))
        .or_else(|| field::<TieBreak>(obj, "tie_break", "tie_break", false))
        .or_else(|| check_prices(obj))
}

fn check_prices(obj: &Map<String, Value>) -> Option<PlanError> {
    let Some(prices) = obj.get("prices") else {
        return Some(PlanError::invalid("prices", "is missing"));
    };
    let Some(slots) = prices.as_array() else {
        return Some(PlanError::invalid("prices", "must be an array of slots"));
    };
    slots.iter().enumerate().find_map(|(i, slot)| {
        let Some(s) = slot.as_object() else {
            return Some(PlanError::invalid(
                format!("prices[{i}]"),
                "must be an object",
            ));
        };
        field::<DateTime<Utc>>(s, "start", &format!("prices[{i}].start"), true)
            .or_else(|| field::<DateTime<Utc>>(s, "end", &format!("prices[{i}].end"), true))
            .or_else(|| {
                field::<f64>(
                    s,
                    "price_per_kwh",
                    &format!("prices[{i}].price_per_kwh"),
                    true,
                )
            })
    })
}

#[cfg(test)]
mod tests {
    use crate::{PlanError, PlanRequest};

    fn field_of(text: &str) -> String {
        match PlanRequest::from_json(text) {
            Err(PlanError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let ok = r#"{"now":"2024-03-01T17:23:00Z","deadline":"2024-03-02T07:00:00Z",
            "battery_kwh":75.0,"soc_percent":30.0,"target_percent":80.0,
            "max_power_kw":11.0,"efficiency":0.9,
            "prices":[{"start":"2024-03-01T17:00:00Z","end":"2024-03-01T18:00:00Z","price_per_kwh":0.2134}]}"#;
        assert!(PlanRequest::from_json(ok).is_ok());
        assert_eq!(field_of(&ok.replace("75.0", "\"big\"")), "battery_kwh");
        assert_eq!(
            field_of(&ok.replace("\"efficiency\":0.9,", "")),
            "efficiency"
        );
        assert_eq!(
            field_of(&ok.replace("2024-03-01T18:00:00Z", "soon")),
            "prices[0].end"
        );
        assert_eq!(
            field_of(&ok.replace("\"max_power_kw\"", "\"max_blocks\":-1,\"max_power_kw\"")),
            "max_blocks"
        );
        assert_eq!(field_of("[1, 2]"), "request");
        assert_eq!(field_of("{\"now\": "), "request");
    }
}
