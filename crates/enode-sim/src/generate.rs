//! Generated scenarios: many users with seeded variety, for load tests
//! that need a thousand users without writing them down.

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{
    EventAction, EventSpec, LocationSpec, Scenario, UserSpec, VehicleSpec, When, AWAY,
};

impl Scenario {
    /// `users` users (`user-0001`, ...) with `vehicles_per_user` vehicles
    /// each (`user-0001-v1`, ...), each user with a home location
    /// (`user-0001-home`). Vendors, capacities, charge powers, limits and
    /// start SoC vary with `seed`; about 85 % of vehicles are plugged in at
    /// home, the rest away; about a quarter report numeric strings. No
    /// events: the caller adds what its test needs.
    pub fn generated(users: usize, vehicles_per_user: usize, seed: u64) -> Scenario {
        const MODELS: [(&str, &str, &str, f64); 7] = [
            ("TESLA", "Tesla", "Model 3", 75.0),
            ("BMW", "BMW", "i4", 80.7),
            ("AUDI", "Audi", "Q4 e-tron", 77.0),
            ("VOLKSWAGEN", "Volkswagen", "ID.3", 58.0),
            ("HYUNDAI", "Hyundai", "Kona Electric", 64.0),
            ("PEUGEOT", "Peugeot", "e-208", 50.0),
            ("NISSAN", "Nissan", "Leaf", 40.0),
        ];
        const POWERS: [f64; 4] = [3.7, 7.4, 11.0, 22.0];
        const LIMITS: [f64; 3] = [80.0, 90.0, 100.0];
        let mut rng = StdRng::seed_from_u64(seed);
        let width = users.to_string().len().max(4);
        let users = (1..=users)
            .map(|u| {
                let id = format!("user-{u:0width$}");
                let home = format!("{id}-home");
                let vehicles = (1..=vehicles_per_user)
                    .map(|v| {
                        let (vendor, brand, model, cap) = MODELS[rng.gen_range(0..MODELS.len())];
                        let at_home = rng.gen_bool(0.85);
                        VehicleSpec {
                            id: format!("{id}-v{v}"),
                            vendor: vendor.into(),
                            brand: brand.into(),
                            model: model.into(),
                            year: rng.gen_range(2019..=2025),
                            capacity_kwh: cap,
                            soc: f64::from(rng.gen_range(10u32..=70)),
                            charge_kw: POWERS[rng.gen_range(0..POWERS.len())],
                            charge_limit: LIMITS[rng.gen_range(0..LIMITS.len())],
                            location: Some(if at_home { home.clone() } else { AWAY.into() }),
                            plugged_in: at_home,
                            numeric_strings: rng.gen_bool(0.25),
                            odometer_km: f64::from(rng.gen_range(1_000u32..150_000)),
                            ..VehicleSpec::default()
                        }
                    })
                    .collect();
                let mut loc = LocationSpec::new(home);
                loc.latitude += rng.gen_range(-0.5..0.5);
                loc.longitude += rng.gen_range(-0.5..0.5);
                UserSpec {
                    id,
                    locations: vec![loc],
                    vehicles,
                }
            })
            .collect();
        Scenario {
            seed,
            users,
            ..Scenario::default()
        }
    }
}

/// When a commuter fleet's vehicles come home and leave again.
#[derive(Debug, Clone, PartialEq)]
pub struct Commute {
    /// The vehicle.
    pub vehicle: String,
    /// When it is plugged in at home; `None` for a vehicle that stays away.
    pub plug_in: Option<DateTime<Utc>>,
    /// When it is unplugged and driven away.
    pub departure: Option<DateTime<Utc>>,
}

impl Scenario {
    /// [`Scenario::generated`] with a day of commuting from `start` (noon
    /// UTC of a working day): every vehicle starts unplugged; those at home
    /// come back between 15:00 and 22:00 UTC, most around 17:30, with 15-60 %
    /// left, are plugged in and leave the next morning between 05:00 and
    /// 08:30 UTC; about half start charging on plug-in by themselves. The
    /// rest stay away all day. Returns the scenario and each vehicle's
    /// commute, for the caller's deadlines and report.
    pub fn commuters(
        users: usize,
        vehicles_per_user: usize,
        seed: u64,
        start: DateTime<Utc>,
    ) -> (Scenario, Vec<Commute>) {
        let mut s = Scenario::generated(users, vehicles_per_user, seed);
        s.start = Some(start);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0063_6f6d_6d75_7465);
        let mut commutes = Vec::new();
        for u in &mut s.users {
            for v in &mut u.vehicles {
                let home = v.location.as_deref() != Some(AWAY);
                v.plugged_in = false;
                if !home {
                    commutes.push(Commute {
                        vehicle: v.id.clone(),
                        plug_in: None,
                        departure: None,
                    });
                    continue;
                }
                // Arrival: a triangle-ish spread peaking at 17:30 UTC (sum
                // of two uniforms), within 15:00-22:00.
                let mins = rng.gen_range(0..=210) + rng.gen_range(0..=210);
                let plug = start + TimeDelta::hours(3) + TimeDelta::minutes(mins);
                let leave =
                    start + TimeDelta::hours(17) + TimeDelta::minutes(rng.gen_range(0..=210));
                v.charge_on_plug_in = rng.gen_bool(0.5);
                v.events = vec![
                    EventSpec {
                        at: When::At(plug),
                        action: EventAction::PlugIn,
                        soc: Some(f64::from(rng.gen_range(15u32..=60))),
                        location: None,
                    },
                    EventSpec::new(When::At(leave), EventAction::Unplug),
                ];
                commutes.push(Commute {
                    vehicle: v.id.clone(),
                    plug_in: Some(plug),
                    departure: Some(leave),
                });
            }
        }
        (s, commutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn commuters_come_home_in_the_evening_and_leave_in_the_morning() {
        let start = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
        let (s, commutes) = Scenario::commuters(200, 2, 3, start);
        s.validate().unwrap();
        assert_eq!(commutes.len(), 400);
        let home: Vec<_> = commutes.iter().filter(|c| c.plug_in.is_some()).collect();
        assert!(
            home.len() > 300 && home.len() < 380,
            "{} at home",
            home.len()
        );
        for c in &home {
            let (p, d) = (c.plug_in.unwrap(), c.departure.unwrap());
            assert!(p >= start + TimeDelta::hours(3) && p <= start + TimeDelta::hours(10));
            assert!(
                d >= start + TimeDelta::hours(17) && d <= start + TimeDelta::minutes(20 * 60 + 30)
            );
        }
        assert!(s
            .users
            .iter()
            .flat_map(|u| &u.vehicles)
            .all(|v| !v.plugged_in));
        let again = Scenario::commuters(200, 2, 3, start);
        assert_eq!(again.1, commutes);
    }
}
