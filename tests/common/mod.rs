//! Helpers shared by the integration tests: an Enode config pointing at a
//! simulator, a store in a temp dir, a "browser" that follows the consent
//! redirect once.

#![allow(dead_code)] // each test binary uses a different subset

pub mod fleet;
pub mod year;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use enode_sim::Sim;
use smartcharged::config::EnodeConfig;
use smartcharged::model::TokenSet;
use smartcharged::secret::Secret;
use url::Url;

/// The simulator's default client credentials.
pub const CLIENT_ID: &str = "smartcharged";
/// The simulator's default client secret.
pub const CLIENT_SECRET: &str = "sim-secret";

/// A fixed start instant for simulated time.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
}

/// Client config for a running simulator.
pub fn enode_config(sim: &Sim) -> EnodeConfig {
    EnodeConfig {
        api_url: Url::parse(&format!("{}/", sim.base_url())).unwrap(),
        auth_url: Url::parse(&sim.auth_url()).unwrap(),
        token_url: Url::parse(&sim.token_url()).unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        redirect_uri: Url::parse("http://127.0.0.1/callback").unwrap(),
        scopes: vec!["offline_access".into(), "all".into()],
        pkce: true,
        request_timeout: Duration::from_secs(10),
        token_timeout: Duration::from_secs(60),
    }
}

/// The token keeper's settings the tests use: the defaults of the config.
pub fn token_config() -> smartcharged::config::TokenConfig {
    smartcharged::config::TokenConfig {
        refresh_lead: Duration::from_secs(300),
        refresh_jitter: Duration::from_secs(60),
        link_timeout: Duration::from_secs(1800),
    }
}

/// Tokens granted by the simulator's handle, as the daemon's type.
pub fn granted(sim: &Sim, user: &str, now: DateTime<Utc>) -> TokenSet {
    let t = sim
        .handle
        .grant_tokens(user, "offline_access all")
        .expect("grant tokens");
    TokenSet {
        access_token: Secret::new(t.access_token),
        refresh_token: t.refresh_token.map(Secret::new),
        expires_at: now + chrono::TimeDelta::seconds(t.expires_in),
        scopes: vec!["offline_access".into(), "all".into()],
    }
}

/// Plays the browser: requests the authorization URL without following
/// redirects and returns where the server sends the user.
pub async fn consent(authorize_url: &Url) -> Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(authorize_url.clone()).send().await.unwrap();
    assert!(resp.status().is_redirection(), "status {}", resp.status());
    let loc = resp.headers()["location"].to_str().unwrap();
    Url::parse(loc).unwrap()
}

/// What `smartcharged link --paste` did.
pub struct Pasted {
    /// The URL on the first line of stdout.
    pub url: Url,
    /// The exit status.
    pub status: std::process::ExitStatus,
    /// Stdout after the first line.
    pub rest: String,
    /// Stderr.
    pub stderr: String,
}

/// Runs a `smartcharged link ... --paste` command as a user would: takes
/// the authorization URL from the first line of stdout, plays the
/// browser, and pastes the address it ends on. Needs a multi-thread runtime.
pub async fn link_paste(mut cmd: std::process::Command) -> Pasted {
    use std::io::{BufRead, Read, Write};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    tokio::task::block_in_place(|| stdout.read_line(&mut first)).unwrap();
    let url = Url::parse(first.trim()).expect("the authorization URL alone on the first line");
    let callback = consent(&url).await;
    writeln!(child.stdin.take().unwrap(), "{callback}").unwrap();
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let mut rest = String::new();
    tokio::task::block_in_place(|| stdout.read_to_string(&mut rest)).unwrap();
    Pasted {
        url,
        status: out.status,
        rest,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Collects formatted log lines, for tests that check what is logged.
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures this thread's log lines (plain text, INFO and up) until the
    /// guard is dropped; paused-time tests run the runtime on their thread.
    pub fn this_thread() -> (Capture, tracing::subscriber::DefaultGuard) {
        let logs = Capture::default();
        let writer = logs.clone();
        let guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        (logs, guard)
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
