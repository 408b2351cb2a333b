//! Names the field behind a JSON error. serde reports only a position;
//! people fixing a request want the field. Runs only after a failure, so
//! the fast path stays a single typed parse.
//!
//! A document that is not even valid JSON (a number beyond f64 such as
//! `1e309`, a stray character) is mapped back from serde's line and column
//! to the path of the value being read there.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::PlanError;
use crate::request::TieBreak;

/// Explains why `text` is not a valid request, given serde's error.
pub(crate) fn diagnose(text: &str, err: serde_json::Error) -> PlanError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let path = match e.classify() {
                // a truncated document: the fault is the end, not a field
                serde_json::error::Category::Eof => None,
                _ => index_of(text, e.line(), e.column()).and_then(|at| path_at(text, at)),
            };
            return match path {
                Some(path) => PlanError::invalid(path, e.to_string()),
                None => PlanError::invalid("request", format!("not valid JSON: {e}")),
            };
        }
    };
    let Some(obj) = value.as_object() else {
        return PlanError::invalid("request", "must be a JSON object");
    };
    check_request(obj).unwrap_or_else(|| PlanError::invalid("request", err.to_string()))
}

pub(crate) fn field<T: DeserializeOwned>(
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
        .or_else(|| field::<bool>(obj, "charging_now", "charging_now", false))
        .or_else(|| field::<Option<u32>>(obj, "min_pause_minutes", "min_pause_minutes", false))
        .or_else(|| {
            field::<Option<u32>>(
                obj,
                "finish_by_departure_minutes",
                "finish_by_departure_minutes",
                false,
            )
        })
        .or_else(|| check_prices(obj))
}

pub(crate) fn check_prices(obj: &Map<String, Value>) -> Option<PlanError> {
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

/// The byte index of serde_json's (1-based line, column) in `text`: the
/// column counts bytes from the start of the line.
fn index_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    Some((start + column).min(text.len()))
}

/// One open container while scanning.
enum Frame {
    /// An object, with the key of the member being read.
    Object { key: Option<String>, want_key: bool },
    /// An array, with the index of the element being read.
    Array { index: usize },
}

fn path_of(stack: &[Frame]) -> String {
    let mut s = String::new();
    for f in stack {
        match f {
            Frame::Object { key: Some(k), .. } => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => s.push_str(&format!("[{index}]")),
        }
    }
    s
}

/// The path (`prices[2].price_per_kwh`) of the last value that starts
/// before byte `at`: where serde stopped reading. None outside any member.
fn path_at(text: &str, at: usize) -> Option<String> {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut last: Option<String> = None;
    let mut i = 0;
    while i < at.min(b.len()) {
        let c = b[i];
        let key_next = matches!(stack.last(), Some(Frame::Object { want_key: true, .. }));
        match c {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if key_next {
                    let key = text.get(start..i.min(b.len())).unwrap_or("").to_string();
                    if let Some(Frame::Object { key: k, want_key }) = stack.last_mut() {
                        *k = Some(key);
                        *want_key = false;
                    }
                } else {
                    last = Some(path_of(&stack));
                }
                i += 1;
                continue;
            }
            b'{' | b'[' => {
                last = Some(path_of(&stack));
                stack.push(if c == b'{' {
                    Frame::Object {
                        key: None,
                        want_key: true,
                    }
                } else {
                    Frame::Array { index: 0 }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { key, want_key }) => {
                    *key = None;
                    *want_key = true;
                }
                None => {}
            },
            b':' | b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => {
                // a number or literal: up to the next delimiter
                last = Some(path_of(&stack));
                while i + 1 < b.len() && !b",]} \t\n\r".contains(&b[i + 1]) {
                    i += 1;
                }
            }
        }
        i += 1;
    }
    last.filter(|p| !p.is_empty())
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
        assert_eq!(
            field_of(&ok.replace(
                "\"max_power_kw\"",
                "\"min_pause_minutes\":-5,\"max_power_kw\""
            )),
            "min_pause_minutes"
        );
        assert_eq!(
            field_of(&ok.replace("\"max_power_kw\"", "\"charging_now\":1,\"max_power_kw\"")),
            "charging_now"
        );
    }

    #[test]
    fn numbers_beyond_f64_name_their_field() {
        let ok = r#"{"now":"2024-03-01T17:23:00Z","deadline":"2024-03-02T07:00:00Z",
            "battery_kwh":75.0,"soc_percent":30.0,"target_percent":80.0,
            "max_power_kw":11.0,"efficiency":0.9,
            "prices":[{"start":"2024-03-01T17:00:00Z","end":"2024-03-01T18:00:00Z","price_per_kwh":0.2134},
                      {"start":"2024-03-01T18:00:00Z","end":"2024-03-01T19:00:00Z","price_per_kwh":0.2}]}"#;
        assert!(PlanRequest::from_json(ok).is_ok());
        assert_eq!(field_of(&ok.replace("75.0", "1e309")), "battery_kwh");
        assert_eq!(field_of(&ok.replace("30.0", "-1e309")), "soc_percent");
        assert_eq!(field_of(&ok.replace("0.9", "2e400")), "efficiency");
        assert_eq!(
            field_of(&ok.replace("0.2}", "1e309}")),
            "prices[1].price_per_kwh"
        );
        assert_eq!(
            field_of(&ok.replace(
                "\"max_power_kw\"",
                "\"opportunistic_price\":\n1e999 ,\"max_power_kw\""
            )),
            "opportunistic_price"
        );
        match PlanRequest::from_json(&ok.replace("75.0", "1e309")) {
            Err(PlanError::Invalid { reason, .. }) => {
                assert!(reason.contains("number out of range"), "{reason}")
            }
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }
}
