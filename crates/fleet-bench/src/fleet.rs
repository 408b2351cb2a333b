//! The fleet under test: a seeded commuter scenario for enode-sim, the
//! daemon's config (each vehicle's wallbox power and departure as its
//! deadline), and a store seeded with every user linked.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use enode_sim::{Commute, Scenario, UserTokens};
use smartcharged::model::TokenSet;
use smartcharged::secret::Secret;
use smartcharged::store::Store;
use smartcharged::users::{User, UserId, UserStatus};

/// The time zone of the daemon's deadlines and prices (DE-LU).
pub const ZONE: Tz = chrono_tz::Europe::Berlin;

/// Margin between a deadline and the departure it serves.
const DEADLINE_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// `users` users with `per_user` vehicles each, commuting from `start`.
pub fn scenario(
    users: usize,
    per_user: usize,
    seed: u64,
    start: DateTime<Utc>,
) -> (Scenario, Vec<Commute>) {
    let (mut s, commutes) = Scenario::commuters(users, per_user, seed, start);
    // Real Enode access tokens live an hour; keep that.
    s.access_token_lifetime_secs = 3600;
    (s, commutes)
}

/// `[[policy.vehicles]]` for each vehicle: its charge power (the owner's
/// wallbox) and, for commuters, a deadline 5 minutes before it leaves
/// (rounded down to 5 minutes, local time).
pub fn policy_lines(scenario: &Scenario, commutes: &[Commute]) -> String {
    let mut out = String::new();
    let leaves: std::collections::HashMap<&str, DateTime<Utc>> = commutes
        .iter()
        .filter_map(|c| Some((c.vehicle.as_str(), c.departure?)))
        .collect();
    for v in scenario.users.iter().flat_map(|u| &u.vehicles) {
        let _ = write!(
            out,
            "\n[[policy.vehicles]]\nid = \"{}\"\nmax_power_kw = {}\n",
            v.id, v.charge_kw
        );
        if let Some(leave) = leaves.get(v.id.as_str()) {
            let d = (*leave - DEADLINE_MARGIN).with_timezone(&ZONE);
            let _ = writeln!(
                out,
                "deadline = \"{:02}:{:02}\"",
                d.hour(),
                d.minute() / 5 * 5
            );
        }
    }
    out
}

/// The daemon's config: the demo's (file prices from tests/data, the
/// simulator's endpoints) plus per-vehicle policy, listening on a free port.
pub fn config_text(base_url: &str, store: &Path, prices: &Path, policy: &str) -> String {
    let mut text = smartcharged::demo::config_text(base_url, store, prices, policy);
    text.push_str("\n[http]\nlisten = \"127.0.0.1:0\"\n");
    text
}

/// Writes every user as linked, with the tokens the simulator granted,
/// expiring `expires_in` after `now` (clock time); one flush at the end.
pub fn seed_store(path: &Path, granted: &[UserTokens], now: DateTime<Utc>) -> anyhow::Result<()> {
    let store = Store::open(path).context("cannot open the benchmark store")?;
    let users: Vec<(User, TokenSet)> = granted
        .iter()
        .map(|g| {
            Ok((
                User {
                    id: UserId::new(g.user.clone())?,
                    status: UserStatus::Active,
                    linked_at: now,
                    vendor: None,
                },
                TokenSet {
                    access_token: Secret::new(g.tokens.access_token.clone()),
                    refresh_token: g.tokens.refresh_token.clone().map(Secret::new),
                    expires_at: now + TimeDelta::seconds(g.tokens.expires_in),
                    scopes: vec!["offline_access".into(), "all".into()],
                },
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    store.save_linked_users(users.iter().map(|(u, t)| (u, t)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn config_parses_with_a_deadline_for_each_commuter() {
        let start = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
        let (s, commutes) = scenario(20, 1, 1, start);
        let policy = policy_lines(&s, &commutes);
        let commuters = commutes.iter().filter(|c| c.departure.is_some()).count();
        assert_eq!(policy.matches("deadline = ").count(), commuters);
        let text = config_text(
            "http://127.0.0.1:9",
            Path::new("/tmp/x"),
            Path::new("/tmp/p.csv"),
            &policy,
        );
        let env = |k: &str| (k == "SMARTCHARGED_CLIENT_SECRET").then(|| "s".to_owned());
        let c = smartcharged::config::Config::parse(&text, Path::new("bench.toml"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.http.listen.port(), 0);
        // 07:40 UTC departure is 08:35 CET deadline -> "08:35".
        let mut one = s.clone();
        one.users.truncate(1);
        let c1 = Commute {
            vehicle: one.users[0].vehicles[0].id.clone(),
            plug_in: None,
            departure: Some(Utc.with_ymd_and_hms(2024, 3, 5, 7, 42, 0).unwrap()),
        };
        assert!(policy_lines(&one, &[c1]).contains("deadline = \"08:35\""));
    }
}
