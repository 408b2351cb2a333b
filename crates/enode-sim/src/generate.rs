//! Generated scenarios: many users with seeded variety, for load tests
//! that need a thousand users without writing them down.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{LocationSpec, Scenario, UserSpec, VehicleSpec, AWAY};

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
