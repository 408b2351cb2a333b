//! Times as people write and read them: local times in the configured
//! zone. Overrides and trips take them as input ("10:00", "tomorrow 07:30",
//! "2026-12-24 08:00", or RFC 3339); the explanation, the CLI's tables and
//! the status page print instants with [`short`]. Everything stored stays
//! UTC; only this module turns local wall-clock text into instants and back.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::daemon::policy::local_instant;

/// The longest time text accepted (anything longer is not one of the forms).
pub const MAX_TIME_TEXT: usize = 64;
/// How far ahead a time given for an override or trip may lie.
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(14);

/// Why a time text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not one of the accepted forms.
    #[error("cannot read {0:?} as a time: use HH:MM, \"tomorrow HH:MM\", \"YYYY-MM-DD HH:MM\" or RFC 3339")]
    Form(String),
    /// In the past.
    #[error("{0} is in the past")]
    Past(String),
    /// Too far ahead.
    #[error("{0} is more than 14 days ahead")]
    TooFar(String),
}

/// Reads a time given by a person, local to `tz`, relative to `now`:
/// "HH:MM" is its next occurrence (today, or tomorrow when it has passed),
/// "tomorrow HH:MM", "YYYY-MM-DD HH:MM" (or with a `T`), or an RFC 3339
/// instant. A local time that does not exist (the DST gap) moves past the
/// gap; one that exists twice takes the earlier instant. The result must be
/// after `now` and at most [`MAX_AHEAD`] ahead.
pub fn parse(text: &str, tz: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let form = || TimeError::Form(crate::limits::clip(text));
    if text.len() > MAX_TIME_TEXT {
        return Err(form());
    }
    let t = text.trim();
    let today = now.with_timezone(&tz).date_naive();
    let at = if let Ok(i) = DateTime::parse_from_rfc3339(t) {
        i.with_timezone(&Utc)
    } else if let Some(rest) = t.strip_prefix("tomorrow ") {
        let time = hhmm(rest.trim()).ok_or_else(form)?;
        local_instant(tz, (today + TimeDelta::days(1)).and_time(time))
    } else if let Some(time) = hhmm(t) {
        let at = local_instant(tz, today.and_time(time));
        if at > now {
            at
        } else {
            local_instant(tz, (today + TimeDelta::days(1)).and_time(time))
        }
    } else {
        let naive = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
            .ok_or_else(form)?;
        local_instant(tz, naive)
    };
    if at <= now {
        return Err(TimeError::Past(short(at, now, tz)));
    }
    if at - now > MAX_AHEAD {
        return Err(TimeError::TooFar(short(at, now, tz)));
    }
    Ok(at)
}

/// "HH:MM" (or "H:MM").
fn hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// An instant for people, in `tz`: "07:00" today, "tomorrow 07:00",
/// "yesterday 23:15", else "Thu 24 Dec 07:00" (with the year when it is
/// not `now`'s).
pub fn short(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let today: NaiveDate = now.with_timezone(&tz).date_naive();
    let day = local.date_naive();
    let time = local.format("%H:%M");
    if day == today {
        time.to_string()
    } else if Some(day) == today.succ_opt() {
        format!("tomorrow {time}")
    } else if Some(day) == today.pred_opt() {
        format!("yesterday {time}")
    } else if local.format("%Y").to_string() == now.with_timezone(&tz).format("%Y").to_string() {
        local.format("%a %d %b %H:%M").to_string()
    } else {
        local.format("%a %d %b %Y %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn the_forms_people_write() {
        // 2026-12-02 10:00 UTC is 11:00 in Berlin.
        let now = utc(2026, 12, 2, 10, 0);
        assert_eq!(parse("12:30", BERLIN, now), Ok(utc(2026, 12, 2, 11, 30)));
        // 10:00 has passed today: tomorrow's.
        assert_eq!(parse("10:00", BERLIN, now), Ok(utc(2026, 12, 3, 9, 0)));
        assert_eq!(
            parse("tomorrow 07:30", BERLIN, now),
            Ok(utc(2026, 12, 3, 6, 30))
        );
        assert_eq!(
            parse("2026-12-10 08:00", BERLIN, now),
            Ok(utc(2026, 12, 10, 7, 0))
        );
        assert_eq!(
            parse("2026-12-03T08:00:00Z", BERLIN, now),
            Ok(utc(2026, 12, 3, 8, 0))
        );
    }

    #[test]
    fn wrong_past_and_far_times_are_refused() {
        let now = utc(2026, 12, 2, 10, 0);
        assert!(matches!(
            parse("soon", BERLIN, now),
            Err(TimeError::Form(_))
        ));
        assert!(matches!(
            parse("25:00", BERLIN, now),
            Err(TimeError::Form(_))
        ));
        assert!(matches!(
            parse(&"1".repeat(100), BERLIN, now),
            Err(TimeError::Form(_))
        ));
        assert!(matches!(
            parse("2026-12-01 08:00", BERLIN, now),
            Err(TimeError::Past(_))
        ));
        assert!(matches!(
            parse("2027-01-01 08:00", BERLIN, now),
            Err(TimeError::TooFar(_))
        ));
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_past_it() {
        // 2026-03-29: Berlin skips 02:00-03:00.
        let now = utc(2026, 3, 28, 12, 0);
        assert_eq!(
            parse("tomorrow 02:30", BERLIN, now),
            Ok(utc(2026, 3, 29, 1, 0))
        );
    }

    #[test]
    fn instants_read_as_local_days() {
        let now = utc(2026, 12, 2, 10, 0);
        assert_eq!(short(utc(2026, 12, 2, 22, 0), now, BERLIN), "23:00");
        assert_eq!(short(utc(2026, 12, 3, 6, 0), now, BERLIN), "tomorrow 07:00");
        assert_eq!(
            short(utc(2026, 12, 24, 7, 0), now, BERLIN),
            "Thu 24 Dec 08:00"
        );
        assert_eq!(
            short(utc(2027, 1, 2, 7, 0), now, BERLIN),
            "Sat 02 Jan 2027 08:00"
        );
    }
}
