//! Fast (de)serialisation of UTC instants. A day of quarter-hour prices is
//! a few hundred timestamps per request; parsing the common
//! `YYYY-MM-DDTHH:MM:SSZ` form by hand keeps `plan --batch` fast. Any other
//! RFC 3339 form (offsets, fractions) goes through chrono.

use chrono::{DateTime, Utc};
use serde::{de, Deserializer, Serialize, Serializer};

/// Serialises as chrono does: RFC 3339 with `Z`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    t.serialize(s)
}

/// Reads an RFC 3339 instant.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(Visitor)
}

struct Visitor;

impl de::Visitor<'_> for Visitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 date and time string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
        if let Some(t) = parse_utc(s.as_bytes()) {
            return Ok(t);
        }
        s.parse::<DateTime<chrono::FixedOffset>>()
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| E::custom(format!("`{s}` is not an RFC 3339 time: {e}")))
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly, else None.
fn parse_utc(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    // days from 1970-01-01 (Howard Hinnant's days_from_civil)
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    DateTime::from_timestamp(days * 86_400 + h * 3600 + mi * 60 + s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::Visitor as _;

    #[test]
    fn fast_path_agrees_with_chrono() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2024-03-31T01:00:00Z",
            "2000-12-31T12:34:56Z",
            "2100-03-01T00:00:00Z",
        ] {
            let want: DateTime<Utc> = s.parse().unwrap();
            assert_eq!(parse_utc(s.as_bytes()), Some(want), "{s}");
        }
        for s in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00+01:00",
        ] {
            assert_eq!(parse_utc(s.as_bytes()), None, "{s}");
        }
        // other forms still parse, through chrono
        let v: DateTime<Utc> = Visitor
            .visit_str::<de::value::Error>("2024-01-01T01:00:00+01:00")
            .unwrap();
        assert_eq!(v, "2024-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(Visitor.visit_str::<de::value::Error>("soon").is_err());
    }
}
