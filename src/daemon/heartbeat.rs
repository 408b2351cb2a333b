//! Keeps track of whether webhooks deliver. When nothing arrived for half
//! the configured silence, the daemon asks Enode for a test event (`POST
//! /webhooks/firehose/test`, one request for the whole fleet); when the
//! silence passes with nothing, the fleet polls as without webhooks. Each
//! change (webhooks down, webhooks back) is logged once.

use std::sync::Arc;
use std::time::Duration;

use clock::Clock;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::enode::Client;
use crate::webhooks::Liveness;

/// Runs until `cancel` fires.
pub async fn run(client: Client, clock: Clock, live: Arc<Liveness>, cancel: CancellationToken) {
    let silence = live.silence();
    let check = (silence / 4).to_std().unwrap_or(Duration::from_secs(60));
    let ask_after = silence / 2;
    let mut was_live = false;
    // Ask at once: webhooks count as live from the first delivery.
    let mut asked = None;
    loop {
        let now = clock.now();
        let quiet = live.last().is_none_or(|t| now - t >= ask_after);
        if quiet && asked.is_none_or(|t| now - t >= ask_after) {
            asked = Some(now);
            match client.test_firehose().await {
                Ok(()) => debug!("asked Enode for a webhook test event"),
                Err(e) => debug!(error = %e, "cannot ask Enode for a webhook test event"),
            }
        }
        let is_live = live.live(clock.now());
        if is_live != was_live {
            if is_live {
                info!("webhooks deliver: polling is now a safety net");
            } else if live.last().is_some() {
                warn!(
                    silence_s = silence.num_seconds(),
                    "webhooks fell silent: polling returns to normal"
                );
            }
            was_live = is_live;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = clock.sleep(check) => {}
        }
    }
}
