//! `smartcharged webhook register|test|status`: the Firehose webhook.
//!
//! `register` stores the secret durably before it tells Enode (a crash in
//! between leaves a secret nobody signs with, never deliveries the daemon
//! cannot check); `test` asks Enode for a test event and watches the
//! running daemon's counters for it; `status` shows those counters.

use std::time::Duration;

use anyhow::Context as _;
use clock::Clock;
use url::Url;

use super::common::{self, ConfigArg};
use super::{exit, CmdResult, Failure};
use crate::admin::client::Client;
use crate::config::{Config, WebhooksConfig};

/// Arguments of `webhook`.
#[derive(clap::Args, Debug)]
pub struct WebhookArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: WebhookAction,
}

/// The `webhook` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum WebhookAction {
    /// Point Enode's Firehose webhook at URL, with a fresh 256-bit secret
    /// (or the one in `[webhooks] secret_file`).
    Register {
        /// The public HTTPS URL that reaches the receiver path (through a
        /// reverse proxy), e.g. https://example.com/webhooks/enode.
        #[arg(long)]
        url: Url,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Ask Enode for a test event and report whether the daemon got it.
    Test {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show the receiver's counters: last delivery, counts, failures.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// How long `webhook test` waits for the test event.
const TEST_WAIT: Duration = Duration::from_secs(15);

/// Runs `webhook`.
pub fn run(args: WebhookArgs) -> CmdResult {
    let path = match &args.action {
        WebhookAction::Register { config, .. }
        | WebhookAction::Test { config }
        | WebhookAction::Status { config, .. } => config.config.clone(),
    };
    let config = common::load_config(&path)?;
    let Some(hooks) = config.webhooks.clone() else {
        return Err(Failure::new(
            exit::CONFIG,
            anyhow::anyhow!(
                "{} has no [webhooks] section; add one (see README, \"Webhooks\")",
                config.source.display()
            ),
        ));
    };
    match args.action {
        WebhookAction::Register { url, .. } => register(&config, &hooks, &url),
        WebhookAction::Test { .. } => test(&config),
        WebhookAction::Status { json, .. } => status(&config, json),
    }
}

fn register(config: &Config, hooks: &WebhooksConfig, url: &Url) -> CmdResult {
    let loopback = url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if url.scheme() != "https" && !loopback {
        return Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("the webhook URL must be https (Enode delivers only there): {url}"),
        ));
    }
    let secret = if hooks.provisioned {
        let text = std::fs::read_to_string(&hooks.secret_file)
            .with_context(|| format!("cannot read {}", hooks.secret_file.display()))
            .map_err(|e| Failure::new(exit::CONFIG, e))?;
        let s = text.lines().next().unwrap_or("").trim().to_owned();
        if s.len() < 32 {
            return Err(Failure::new(
                exit::CONFIG,
                anyhow::anyhow!(
                    "{} must hold a secret of at least 32 characters (128 random bits or more)",
                    hooks.secret_file.display()
                ),
            ));
        }
        crate::secret::Secret::new(s)
    } else {
        let s = crate::webhooks::fresh_secret();
        crate::store::write_webhook_secret(&hooks.secret_file, &s)
            .map_err(|e| Failure::new(exit::FAILURE, e))?;
        s
    };
    let clock = Clock::system();
    let client = common::client(config, &clock)?;
    common::runtime()?.block_on(async {
        client
            .put_firehose(url, &secret)
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, e))
    })?;
    println!(
        "registered {url} as the Firehose webhook; secret in {}",
        hooks.secret_file.display()
    );
    Ok(())
}

/// The receiver's counters from the running daemon, over the admin socket
/// (`GET /v1/webhooks`): the same peer check as every admin command, and
/// no dependence on what `[http] listen` exposes.
async fn fetch_status(config: &Config) -> Result<serde_json::Value, Failure> {
    let client = Client::new(&config.admin.socket).map_err(super::admin::failure)?;
    client
        .get("/v1/webhooks")
        .await
        .map_err(super::admin::failure)
}

fn test(config: &Config) -> CmdResult {
    let clock = Clock::system();
    let client = common::client(config, &clock)?;
    common::runtime()?.block_on(async {
        let before = fetch_status(config).await?["stats"]["tests"]
            .as_u64()
            .unwrap_or(0);
        client
            .test_firehose()
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
        let step = Duration::from_millis(250);
        let mut waited = Duration::ZERO;
        while waited < TEST_WAIT {
            tokio::time::sleep(step).await;
            waited += step;
            let s = fetch_status(config).await?;
            if s["stats"]["tests"].as_u64().unwrap_or(0) > before {
                println!("test event arrived after {:.1} s", waited.as_secs_f64());
                return Ok(());
            }
        }
        Err(Failure::new(
            exit::UNAVAILABLE,
            anyhow::anyhow!(
                "Enode accepted the test request, but no signed test event reached the daemon within {} s (check the reverse proxy, the registered URL and `webhook status`)",
                TEST_WAIT.as_secs()
            ),
        ))
    })
}

fn status(config: &Config, json: bool) -> CmdResult {
    let s = common::runtime()?.block_on(fetch_status(config))?;
    if json {
        println!("{s}");
        return Ok(());
    }
    let st = &s["stats"];
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("never").to_owned();
    println!(
        "webhooks: {} at {}",
        if s["live"] == true { "live" } else { "silent" },
        text(&s["path"])
    );
    println!("  last delivery  {}", text(&st["last_delivery"]));
    println!("  last test      {}", text(&st["last_test"]));
    println!(
        "  deliveries     {} applied, {} duplicates, {} events, {} ignored, {} tests",
        n("deliveries"),
        n("duplicates"),
        n("events"),
        n("ignored"),
        n("tests")
    );
    println!(
        "  refused        {} bad signature, {} too large, {} bad body",
        n("bad_signature"),
        n("too_large"),
        n("bad_body")
    );
    if let Some(f) = st["last_failure"].as_array() {
        println!(
            "  last failure   {} {}",
            f.first().and_then(|v| v.as_str()).unwrap_or(""),
            f.get(1).and_then(|v| v.as_str()).unwrap_or("")
        );
    }
    Ok(())
}
