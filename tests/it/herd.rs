//! No herds: users started together (and the first price curve arriving
//! just after start-up) do not make the whole fleet poll in one second.

use std::time::Duration;

use crate::common::fleet;

#[tokio::test(start_paused = true)]
async fn users_started_together_do_not_poll_together() {
    let r = fleet::start(fleet::scenario(60, 60), "").await;
    r.clock.sleep(Duration::from_secs(3600)).await;
    let seconds: Vec<(i64, u32)> =
        reqwest::get(format!("{}/_sim/request-seconds", r.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let total: u32 = seconds.iter().map(|(_, n)| n).sum();
    let peak = seconds.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let polls = r.sim.handle.stats().count("GET /vehicles", 200);
    // 60 users, polled every 30 minutes when unplugged: at least 2 rounds
    // each within the hour.
    assert!(polls >= 60 * 2, "{polls} polls");
    assert!(total as u64 >= polls);
    // All 60 in one second was the herd; spread over their interval, a
    // second sees a few at most.
    assert!(peak <= 8, "{peak} requests in one second (of {total})");
    r.daemon.shutdown().await.unwrap();
}
