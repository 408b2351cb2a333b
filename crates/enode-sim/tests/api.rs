//! The Enode API: field[] semantics, payload quirks, scopes, charging
//! under paused time, commands to unplugged or away vehicles.

mod common;

use std::time::Duration;

use common::*;
use enode_sim::{EventAction, EventSpec, LocationSpec, Scenario, UserSpec, VehicleSpec, When};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// One user "u" at "home" with a 50 kWh, 10 kW car at 40 % of 80 %,
/// plugged in but not charging, and a second car away. Tokens live a day
/// so that the tests can move time freely.
fn scenario() -> Scenario {
    let mut u = UserSpec::new("u");
    u.locations.push(LocationSpec::new("home"));
    u.vehicles.push(VehicleSpec {
        capacity_kwh: 50.0,
        charge_kw: 10.0,
        soc: 40.0,
        charge_limit: 80.0,
        charge_on_plug_in: false,
        ..VehicleSpec::new("car")
    });
    u.vehicles.push(VehicleSpec {
        location: Some("away".into()),
        plugged_in: false,
        numeric_strings: true,
        ..VehicleSpec::new("away-car")
    });
    let mut other = UserSpec::new("other");
    other.vehicles.push(VehicleSpec::new("not-yours"));
    Scenario {
        users: vec![u, other],
        access_token_lifetime_secs: 86_400,
        ..Scenario::default()
    }
}

async fn command(
    sim: &enode_sim::Sim,
    http: &reqwest::Client,
    token: &str,
    id: &str,
    action: &str,
) -> reqwest::Response {
    http.post(format!("{}/vehicles/{id}/charging", sim.base_url()))
        .bearer_auth(token)
        .json(&json!({ "action": action }))
        .send()
        .await
        .unwrap()
}

async fn charge_state(
    sim: &enode_sim::Sim,
    http: &reqwest::Client,
    token: &str,
    id: &str,
) -> Value {
    let r = get(sim, http, token, &format!("/vehicles/{id}/charge-state")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn vehicles_without_fields_are_ids_only() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "offline_access all").await;
    let list: Value = get(&sim, &http, &t.access_token, "/vehicles")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([{"id": "car"}, {"id": "away-car"}]));
    let one: Value = get(&sim, &http, &t.access_token, "/vehicles/car")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, json!({"id": "car"}));
}

#[tokio::test(start_paused = true)]
async fn fields_bring_their_objects_and_quirks() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "offline_access all").await;
    let path = "/vehicles?field[]=chargeState&field[]=smartChargingPolicy&field[]=location&field[]=information";
    let list: Value = get(&sim, &http, &t.access_token, path)
        .await
        .json()
        .await
        .unwrap();
    let car = &list[0];
    assert_eq!(car["id"], "car");
    assert_eq!(car["chargingLocationId"], "home");
    assert_eq!(car["isReachable"], true);
    assert!(car["lastSeen"].is_string());
    assert!(
        car["vendor"].is_string(),
        "an extra field the client must ignore"
    );
    let cs = &car["chargeState"];
    assert_eq!(cs["batteryLevel"], 40.0);
    assert_eq!(cs["batteryCapacity"], 50.0);
    assert_eq!(cs["chargeLimit"], 80.0);
    assert_eq!(cs["isPluggedIn"], true);
    assert_eq!(cs["isCharging"], false);
    assert!(cs["chargeRate"].is_null(), "null unless charging");
    assert!(cs["chargeTimeRemaining"].is_null(), "null unless charging");
    assert_eq!(cs["isChargingReasons"], json!(["DEFAULT"]));
    assert!(cs["powerDeliveryState"].is_string());
    assert_eq!(
        car["smartChargingPolicy"],
        json!({"deadline": "07:00", "isEnabled": false})
    );
    assert_eq!(car["information"]["brand"], "Tesla");
    assert!(car["location"]["latitude"].is_number());
    assert!(car.get("odometer").is_none(), "not asked for");

    let away = &list[1];
    assert!(away["chargingLocationId"].is_null());
    assert_eq!(
        away["chargeState"]["batteryLevel"], "40.0",
        "numeric string quirk"
    );
    assert!(away["chargeState"]["range"].is_string());

    // Percent-encoded brackets mean the same.
    let r = get(
        &sim,
        &http,
        &t.access_token,
        "/vehicles/car?field%5B%5D=odometer",
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert!(v["odometer"]["distance"].is_number());
    assert!(v.get("chargeState").is_none());

    let r = get(
        &sim,
        &http,
        &t.access_token,
        "/vehicles?field[]=tyrePressure",
    )
    .await;
    problem(r, 400).await;
}

#[tokio::test(start_paused = true)]
async fn scopes_and_ownership_are_enforced() {
    let (sim, http) = start(scenario()).await;
    let narrow = link(&sim, &http, "u", "vehicle:charge_state").await;
    assert_eq!(
        get(
            &sim,
            &http,
            &narrow.access_token,
            "/vehicles/car/charge-state"
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&sim, &http, &narrow.access_token, "/vehicles")
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        command(&sim, &http, &narrow.access_token, "car", "START").await,
        403,
    )
    .await;
    problem(
        get(&sim, &http, &narrow.access_token, "/charging-locations").await,
        403,
    )
    .await;

    let t = link(&sim, &http, "u", "all").await;
    let p = problem(
        get(&sim, &http, &t.access_token, "/vehicles/not-yours").await,
        404,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("not-yours"));
    problem(get(&sim, &http, &t.access_token, "/nowhere").await, 404).await;
    let locs: Value = get(&sim, &http, &t.access_token, "/charging-locations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(locs[0]["id"], "home");

    let ct = client_token(&sim, &http).await;
    problem(get(&sim, &http, &ct, "/vehicles").await, 403).await;
    problem(get(&sim, &http, "sim_at_forged", "/vehicles").await, 401).await;
    let s = sim.handle.stats();
    assert_eq!(s.violations.unknown_token, 1);
    assert_eq!(s.count("GET /vehicles", 403), 1);
    assert_eq!(s.count("unmatched", 404), 1);
}

#[tokio::test(start_paused = true)]
async fn charging_raises_soc_at_the_charge_rate_until_the_limit() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "offline_access all").await;
    let tok = &t.access_token;
    let r = command(&sim, &http, tok, "car", "START").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let started = sim.handle.now();

    // 10 kW into 50 kWh: 20 % per hour.
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    let cs = charge_state(&sim, &http, tok, "car").await;
    let hours = (sim.handle.now() - started).num_milliseconds() as f64 / 3.6e6;
    let expected = 40.0 + 20.0 * hours;
    let level = cs["batteryLevel"].as_f64().unwrap();
    assert!((level - expected).abs() <= 0.051, "{level} vs {expected}");
    assert!((sim.handle.vehicle("car").unwrap().soc - expected).abs() < 1e-6);
    assert_eq!(cs["isCharging"], true);
    assert_eq!(cs["chargeRate"], 10.0);
    assert_eq!(cs["chargeTimeRemaining"], 90);
    assert_eq!(cs["isChargingReasons"], json!(["DEFAULT"]));

    // Two hours after the start it reached its limit and stopped.
    tokio::time::advance(Duration::from_secs(3 * 3600)).await;
    let cs = charge_state(&sim, &http, tok, "car").await;
    assert_eq!(cs["batteryLevel"], 80.0);
    assert_eq!(cs["isCharging"], false);
    assert!(cs["chargeRate"].is_null());
    assert_eq!(cs["isChargingReasons"], json!(["FULLY_CHARGED"]));
    let snap = sim.handle.vehicle("car").unwrap();
    assert!((snap.energy_kwh - 20.0).abs() < 1e-6, "{}", snap.energy_kwh);
    assert_eq!(snap.segments.len(), 1);
    assert_eq!(
        snap.segments[0].to - snap.segments[0].from,
        chrono::TimeDelta::hours(2)
    );
    assert_eq!(sim.handle.stats().commands["car"].start, 1);
}

#[tokio::test(start_paused = true)]
async fn stop_holds_the_level_and_the_driver_is_visible() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "all").await;
    let tok = &t.access_token;
    command(&sim, &http, tok, "car", "START").await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(command(&sim, &http, tok, "car", "STOP").await.status(), 204);
    let at_stop = sim.handle.vehicle("car").unwrap().soc;
    tokio::time::advance(Duration::from_secs(3600)).await;
    let cs = charge_state(&sim, &http, tok, "car").await;
    assert_eq!(cs["isCharging"], false);
    assert_eq!(sim.handle.vehicle("car").unwrap().soc, at_stop);

    sim.handle.driver_start("car").unwrap();
    let cs = charge_state(&sim, &http, tok, "car").await;
    assert_eq!(cs["isCharging"], true);
    assert_eq!(cs["isChargingReasons"], json!(["MANUALLY_STARTED"]));
    sim.handle.driver_stop("car").unwrap();
    let cs = charge_state(&sim, &http, tok, "car").await;
    assert_eq!(cs["isChargingReasons"], json!(["MANUALLY_STOPPED"]));

    problem(command(&sim, &http, tok, "car", "PAUSE").await, 400).await;
}

#[tokio::test(start_paused = true)]
async fn commands_to_unplugged_or_away_vehicles_are_counted() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "all").await;
    let tok = &t.access_token;
    sim.handle.unplug("car").unwrap();
    let p = problem(command(&sim, &http, tok, "car", "START").await, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("not plugged in"));
    let cs = charge_state(&sim, &http, tok, "car").await;
    assert_eq!(cs["isChargingReasons"], json!(["NOT_PLUGGED_IN"]));

    // Plugged in at a public charger, away from home.
    sim.handle.plug_in("away-car").unwrap();
    assert_eq!(
        command(&sim, &http, tok, "away-car", "START")
            .await
            .status(),
        204
    );

    let s = sim.handle.stats();
    assert_eq!(s.violations.command_unplugged, 1);
    assert_eq!(s.violations.command_away, 1);
    assert_eq!(s.commands["car"].rejected_unplugged, 1);
    assert_eq!(s.commands["away-car"].away, 1);
}

#[tokio::test(start_paused = true)]
async fn scenario_events_happen_at_their_time() {
    let mut sc = scenario();
    let car = &mut sc.users[0].vehicles[0];
    car.plugged_in = false;
    car.charge_on_plug_in = true;
    car.events = vec![
        EventSpec::new(When::after(Duration::from_secs(3600)), EventAction::PlugIn),
        EventSpec::new(When::after(Duration::from_secs(5400)), EventAction::Unplug),
    ];
    let (sim, http) = start(sc).await;
    let t = link(&sim, &http, "u", "all").await;
    assert_eq!(
        charge_state(&sim, &http, &t.access_token, "car").await["isPluggedIn"],
        false
    );
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    // Plugged in at +1h and charged until the unplug at +1h30m: 10 %.
    let cs = charge_state(&sim, &http, &t.access_token, "car").await;
    assert_eq!(cs["isPluggedIn"], false);
    assert_eq!(cs["batteryLevel"], 50.0);
}

#[tokio::test(start_paused = true)]
async fn smart_charging_policy_reads_and_updates() {
    let (sim, http) = start(scenario()).await;
    let t = link(&sim, &http, "u", "all").await;
    let url = format!("{}/vehicles/car/smart-charging-policy", sim.base_url());
    let r = http
        .put(&url)
        .bearer_auth(&t.access_token)
        .json(&json!({"isEnabled": true, "deadline": "06:30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"deadline": "06:30", "isEnabled": true})
    );
    let r = get(
        &sim,
        &http,
        &t.access_token,
        "/vehicles/car/smart-charging-policy",
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["isEnabled"], true);
    assert!(sim.handle.vehicle("car").unwrap().smart_charging_enabled);
    let r = http
        .put(&url)
        .bearer_auth(&t.access_token)
        .json(&json!({"deadline": "6:30"}))
        .send()
        .await
        .unwrap();
    problem(r, 400).await;

    let r = http
        .post(format!("{}/vehicles/car/watch", sim.base_url()))
        .bearer_auth(&t.access_token)
        .json(&json!({"properties": ["BATTERY_LEVEL"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sim.handle.stats().commands["car"].watch, 1);

    let r = http
        .get(format!("{}/health/ready", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(start_paused = true)]
async fn benchmark_endpoints_log_commands_grant_tokens_and_show_vehicles() {
    let (sim, http) = start(scenario()).await;
    let base = sim.base_url();
    let granted: Value = http
        .post(format!("{base}/_sim/grant-tokens"))
        .json(&json!({ "scopes": "offline_access all" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let granted = granted.as_array().unwrap();
    assert_eq!(granted.len(), 2, "every user when none is named");
    assert_eq!(granted[1]["user"], "u");
    let tok = granted[1]["access_token"].as_str().unwrap();
    assert!(granted[1]["refresh_token"].is_string());

    tokio::time::advance(Duration::from_secs(90)).await;
    assert_eq!(
        command(&sim, &http, tok, "car", "START").await.status(),
        204
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(command(&sim, &http, tok, "car", "STOP").await.status(), 204);
    // A refused command is not in the log.
    problem(command(&sim, &http, tok, "away-car", "START").await, 400).await;

    let log: Value = http
        .get(format!("{base}/_sim/commands"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        log,
        json!([
            {"at": "2024-03-01T16:01:30Z", "vehicle": "car", "action": "START"},
            {"at": "2024-03-01T16:02:00Z", "vehicle": "car", "action": "STOP"},
        ])
    );
    let vehicles: Value = http
        .get(format!("{base}/_sim/vehicles"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let car = &vehicles.as_array().unwrap()[1];
    assert_eq!(car["id"], "car");
    assert_eq!(car["segments"].as_array().unwrap().len(), 1);

    let r = http
        .post(format!("{base}/_sim/grant-tokens"))
        .json(&json!({ "users": ["nobody"], "scopes": "all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// An event whose instant passes while a delivery is still being answered
/// goes out as soon as that delivery ends, not at the next battery tick a
/// minute later (which once delayed plug-ins by up to a minute).
#[tokio::test(start_paused = true)]
async fn an_event_due_during_a_slow_delivery_follows_it_at_once() {
    let mut u = UserSpec::new("u");
    u.locations.push(LocationSpec::new("home"));
    for (id, after) in [("car-a", 30), ("car-b", 32)] {
        u.vehicles.push(VehicleSpec {
            plugged_in: false,
            charge_on_plug_in: false,
            events: vec![EventSpec::new(
                When::after(Duration::from_secs(after)),
                EventAction::PlugIn,
            )],
            ..VehicleSpec::new(id)
        });
    }
    let (sim, _http) = start(Scenario {
        users: vec![u],
        ..Scenario::default()
    })
    .await;
    sim.handle.grant_tokens("u", "all").unwrap();
    // A receiver that takes 4 s to answer (the deliverer gives up after 5)
    // and records when each delivery arrived.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = {
        let (got, clock) = (got.clone(), sim.handle.clock().clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| async move {
                got.lock().unwrap().push((clock.now(), body));
                clock.sleep(Duration::from_secs(4)).await;
                StatusCode::OK
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    sim.handle
        .set_firehose(&format!("http://{addr}/hook"), "secret");
    sim.handle.clock().sleep(Duration::from_secs(120)).await;

    let got = got.lock().unwrap().clone();
    let at = |car: &str| {
        got.iter()
            .find(|(_, body)| body.contains(car) && body.contains("isPluggedIn"))
            .map(|(at, _)| *at - t0())
            .unwrap_or_else(|| panic!("{car}'s plug-in was not delivered: {got:?}"))
    };
    let a = at("car-a");
    assert!(
        a >= chrono::TimeDelta::seconds(30) && a <= chrono::TimeDelta::seconds(31),
        "car-a's plug-in (due at +30 s) was delivered at +{a}"
    );
    // Due at +32 s while car-a's delivery was answered until +34 s.
    let b = at("car-b");
    assert!(
        b <= chrono::TimeDelta::seconds(35),
        "car-b's plug-in (due at +32 s) was delivered at +{b}"
    );
}

/// A delivery that meets a 503 is sent again under the same delivery id
/// (the receiver deduplicates by it); one refused with 401 is not.
#[tokio::test(start_paused = true)]
async fn a_failed_delivery_is_sent_again_but_a_refused_one_is_not() {
    let mut u = UserSpec::new("u");
    u.locations.push(LocationSpec::new("home"));
    u.vehicles.push(VehicleSpec {
        plugged_in: false,
        charge_on_plug_in: false,
        events: vec![
            EventSpec::new(When::after(Duration::from_secs(30)), EventAction::PlugIn),
            EventSpec::new(When::after(Duration::from_secs(90)), EventAction::Unplug),
        ],
        ..VehicleSpec::new("car-a")
    });
    let (sim, _http) = start(Scenario {
        users: vec![u],
        ..Scenario::default()
    })
    .await;
    sim.handle.grant_tokens("u", "all").unwrap();
    // The first attempt of the plug-in's delivery meets a 503; every
    // delivery after the first one is refused with 401.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let app = {
        let got = got.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let id = headers["x-enode-delivery"].to_str().unwrap().to_owned();
                    let mut got = got.lock().unwrap();
                    got.push((id.clone(), body));
                    let first_id = got[0].0.clone();
                    match (id == first_id, got.len()) {
                        (true, 1) => StatusCode::SERVICE_UNAVAILABLE,
                        (true, _) => StatusCode::OK,
                        (false, _) => StatusCode::UNAUTHORIZED,
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    sim.handle
        .set_firehose(&format!("http://{addr}/hook"), "secret");
    sim.handle.clock().sleep(Duration::from_secs(180)).await;

    let got = got.lock().unwrap().clone();
    assert!(got.len() >= 3, "deliveries: {got:?}");
    assert!(
        got[0].1.contains("isPluggedIn"),
        "first delivery: {:?}",
        got[0]
    );
    assert_eq!(
        got[1], got[0],
        "the 503'd delivery was not sent again unchanged"
    );
    let refused = &got[2].0;
    assert_ne!(refused, &got[0].0);
    assert_eq!(
        got.iter().filter(|(id, _)| id == refused).count(),
        1,
        "a delivery refused with 401 was sent again: {got:?}"
    );
    let stats = sim.handle.webhook_stats();
    assert_eq!(stats.ok, 1, "{stats:?}");
    assert_eq!(stats.sent, got.len() as u64, "{stats:?}");
}
