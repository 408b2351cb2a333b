//! kill -9 of the real daemon binary, again and again, on the same store.
//!
//! `smartcharged run` runs against an in-process enode-sim on a virtual
//! clock both share (`--virtual-clock`, anchored to the host's clock and
//! sped up), with short-lived access tokens so that refreshes never stop,
//! through a charging night so that START/STOP commands go out at block
//! edges. A seeded schedule kills it with SIGKILL during start-up, during
//! the burst of overdue refreshes after each restart, during the steady
//! refresh storm and at block edges, and starts it again on the same
//! store each time. After every kill the test checks:
//!
//! - the store opens (the daemon's own `Store::open`) and every record in
//!   it decodes: users, tokens, control states, journal;
//! - for every user, whether the refresh token the store holds is the
//!   server's current one; if the server rotated it and the store does not
//!   have the new one, the kill *orphaned* the user, and the rotation must
//!   lie inside the killed process's life and within [`WINDOW_REAL`] of the
//!   kill (a rotation that was in flight): an older one would mean the
//!   daemon used or held a rotated token without storing it;
//! - every restart reaches READY (systemd's notify protocol);
//!
//! and at the end that no vehicle got the same command twice in a row
//! (the simulator's record) and which users were lost.
//!
//! Two servers: with a rotation grace period (as Ory Hydra offers) an
//! orphaned user refreshes again with the token it stored, so no user may
//! be lost at all; without it (the default server) every orphaned user is
//! lost when it next refreshes, and every lost user must be one that a
//! kill orphaned inside its rotation window. The counts are printed.
//!
//! The kill schedule is deterministic from a seed, printed at the start
//! and in every failure (`SMARTCHARGED_KILL_SEED=N` repeats it; what the
//! daemon does between kills depends on real scheduling too). CI runs 30
//! kills per server with 60 users; `SMARTCHARGED_LONG_TESTS=1` runs 150
//! per server with 200 users.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use clock::{Clock, VirtualClockSpec};
use enode_sim::RefreshPolicy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smartcharged::store::Store;
use smartcharged::users::UserStatus;

/// Simulated seconds per real second.
const SPEED: f64 = 120.0;
/// Access token lifetime, simulated seconds: refreshed every ~8 simulated
/// minutes (4 real seconds) per user, so the storm never stops.
const TOKEN_LIFETIME_SECS: u64 = 600;
/// The grace period of the server that has one (Hydra's maximum without a
/// count limit), simulated seconds.
const GRACE_SECS: u64 = 300;
/// How long before a kill (real time) a rotation may have happened and
/// still be in flight: request answered, tokens not yet flushed. A flush
/// takes milliseconds; this allows for two busy cores.
const WINDOW_REAL: Duration = Duration::from_secs(2);
/// A restart must reach READY within this (real time; a safety net).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How big a run is.
struct Size {
    users: usize,
    kills: usize,
}

fn size() -> Size {
    if std::env::var_os("SMARTCHARGED_LONG_TESTS").is_some() {
        Size {
            users: 200,
            kills: 150,
        }
    } else {
        Size {
            users: 60,
            kills: 30,
        }
    }
}

fn seed() -> u64 {
    std::env::var("SMARTCHARGED_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b11_2026)
}

/// Held while this process has a store open and while it spawns a
/// daemon: a child forked while a store is open here would inherit the
/// lock's file descriptor until its exec, and the other test's daemon (the
/// two tests run in parallel) would then find the store in use.
static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Within 120 ms of spawning, READY or not.
    StartUp,
    /// During the overdue refreshes after READY or the steady storm.
    Storm,
    /// Around a block edge (a whole hour: the price slots), when the
    /// daemon sends START/STOP.
    Edge,
}

/// One kill: what the schedule chose and what the store showed after it.
#[derive(Debug)]
struct Kill {
    kind: Kind,
    /// Whether the daemon had said READY.
    ready: bool,
}

/// A user whose stored refresh token the server had already rotated.
#[derive(Debug)]
struct Orphan {
    user: String,
    /// Index of the kill after which it was seen.
    kill: usize,
    /// Kill time minus rotation time (negative: the server rotated a
    /// request that arrived before the kill after the process was gone).
    before_kill: TimeDelta,
}

/// Receives systemd notifications from the daemon.
struct Notify {
    sock: UnixDatagram,
}

impl Notify {
    fn bind(path: &Path) -> Notify {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Notify { sock }
    }

    /// Whether READY=1 arrives before `until` (real); `Err` if the daemon
    /// exited first.
    fn ready_by(&self, child: &mut Child, until: std::time::Duration) -> Result<bool, String> {
        let start = tokio::time::Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.sock.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
                {
                    return Ok(true);
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("the daemon exited ({status}) before READY"));
            }
            if start.elapsed() >= until {
                return Ok(false);
            }
        }
    }

    /// Drops notifications of a previous process.
    fn drain(&self) {
        let mut buf = [0u8; 4096];
        while self.sock.recv(&mut buf).is_ok() {}
    }
}

/// The run: a simulator, a store, a config, and the daemon's incarnations.
struct Run {
    rt: tokio::runtime::Runtime,
    sim: enode_sim::Sim,
    clock: Clock,
    spec: VirtualClockSpec,
    dir: tempfile::TempDir,
    config: PathBuf,
    notify: Notify,
    users: Vec<String>,
    seed: u64,
    label: &'static str,
    /// Log file of each incarnation.
    logs: Vec<PathBuf>,
}

impl Run {
    fn new(label: &'static str, grace: bool, size: &Size, seed: u64) -> Run {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A night: plug-ins are done, the cheap hours and their edges come.
        let origin = Utc.with_ymd_and_hms(2024, 3, 5, 0, 58, 0).unwrap();
        let spec: VirtualClockSpec = VirtualClockSpec {
            origin,
            anchor: Clock::system().now(),
            speed: SPEED,
        }
        .to_string()
        .parse()
        .unwrap(); // the millisecond anchor the daemon will parse
        let clock = Clock::from_spec(&spec);
        let mut scenario = smartcharged::demo::scenario(size.users, size.users);
        scenario.access_token_lifetime_secs = TOKEN_LIFETIME_SECS;
        scenario.refresh = RefreshPolicy {
            grace_secs: grace.then_some(GRACE_SECS),
            ..RefreshPolicy::default()
        };
        let policy = format!(
            "poll_fast = \"10m\"\npoll_slow = \"30m\"\n{}",
            smartcharged::demo::wallboxes(&scenario)
        );
        let sim = rt
            .block_on(enode_sim::spawn(scenario, clock.clone()))
            .unwrap();
        let users = sim.handle.user_ids();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        common::fleet::link_all(&sim, &store, clock.now());
        let text = common::fleet::config_text(&sim, &store, &policy)
            + "\n[http]\nlisten = \"127.0.0.1:0\"\n";
        let config = dir.path().join("smartcharged.toml");
        std::fs::write(&config, text).unwrap();
        let notify = Notify::bind(&dir.path().join("notify.sock"));
        Run {
            rt,
            sim,
            clock,
            spec,
            dir,
            config,
            notify,
            users,
            seed,
            label,
            logs: Vec::new(),
        }
    }

    fn spawn(&mut self) -> Child {
        let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
        self.notify.drain();
        let log = self
            .dir
            .path()
            .join(format!("daemon-{}.log", self.logs.len()));
        let out = std::fs::File::create(&log).unwrap();
        self.logs.push(log);
        Command::new(env!("CARGO_BIN_EXE_smartcharged"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--virtual-clock")
            .arg(self.spec.to_string())
            .env("SMARTCHARGED_CLIENT_SECRET", common::CLIENT_SECRET)
            .env("SMARTCHARGED_LOG", "warn")
            .env("NOTIFY_SOCKET", self.dir.path().join("notify.sock"))
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    /// The end of the latest incarnation's log, for failure messages.
    fn log_tail(&self) -> String {
        let Some(path) = self.logs.last() else {
            return String::new();
        };
        let mut text = String::new();
        let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn ctx(&self, kill: usize, kind: Option<Kind>) -> String {
        format!(
            "[{} server, seed {} (SMARTCHARGED_KILL_SEED), kill {kill} {kind:?}]",
            self.label, self.seed
        )
    }

    /// Real time to wait until clock instant `t`.
    fn real_until(&self, t: DateTime<Utc>) -> Duration {
        let left = (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        Duration::from_secs_f64(left.as_secs_f64() / SPEED)
    }

    /// Opens the store as the daemon does and decodes every record in it;
    /// returns each user's status and stored refresh token.
    fn check_store(&self, ctx: &str) -> BTreeMap<String, (UserStatus, String)> {
        let _fork = FORK.lock().unwrap_or_else(|e| e.into_inner());
        let store = Store::open(&self.dir.path().join("store"))
            .unwrap_or_else(|e| panic!("{ctx} the store does not open after a kill: {e}"));
        let users = store
            .users()
            .unwrap_or_else(|e| panic!("{ctx} users unreadable: {e}"));
        assert_eq!(users.len(), self.users.len(), "{ctx} users missing");
        store
            .controls()
            .unwrap_or_else(|e| panic!("{ctx} control states unreadable: {e}"));
        store
            .journal_entries()
            .unwrap_or_else(|e| panic!("{ctx} journal unreadable: {e}"));
        users
            .into_iter()
            .map(|u| {
                let t = store
                    .tokens(&u.id)
                    .unwrap_or_else(|e| panic!("{ctx} tokens of {} unreadable: {e}", u.id))
                    .unwrap_or_else(|| panic!("{ctx} {} has no tokens", u.id));
                let rt = t
                    .refresh_token
                    .expect("a refresh token")
                    .expose()
                    .to_owned();
                (u.id.as_str().to_owned(), (u.status, rt))
            })
            .collect()
    }
}

/// What one run found.
#[derive(Debug, Default)]
struct Outcome {
    kills: Vec<Kill>,
    orphans: Vec<Orphan>,
    /// Users that need relinking or whose grant is revoked at the end.
    lost: BTreeSet<String>,
    refreshes: u64,
    graced: u64,
    commands: usize,
    /// Commands within 30 simulated seconds after a block edge.
    edge_commands: usize,
    real: Duration,
}

fn run(label: &'static str, grace: bool) -> Outcome {
    let size = size();
    let seed = seed() ^ u64::from(grace);
    eprintln!(
        "kill test, {label} server: seed {seed}, {} kills, {} users (SMARTCHARGED_KILL_SEED={seed} repeats the schedule)",
        size.kills, size.users
    );
    let started = tokio::time::Instant::now();
    let mut r = Run::new(label, grace, &size, seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Outcome::default();
    // Users a kill orphaned (who may be lost), and the rotations already
    // classified, by (user, sequence answered).
    let mut lost_ok: BTreeSet<String> = BTreeSet::new();
    let mut classified: BTreeSet<(String, u32)> = BTreeSet::new();
    let window = TimeDelta::from_std(WINDOW_REAL.mul_f64(SPEED)).unwrap();

    for i in 0..size.kills {
        let now = r.clock.now();
        let edge = now.duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::hours(1);
        // Plan the kill: a few in start-up, at edges when one is near,
        // otherwise in the refresh storm.
        let kind = if rng.gen_bool(0.12) {
            Kind::StartUp
        } else if r.real_until(edge) < Duration::from_secs(6) {
            Kind::Edge
        } else {
            Kind::Storm
        };
        // Drawn whatever the kind, so the schedule is one sequence per seed.
        let startup_ms = rng.gen_range(0..120);
        let storm_ms = rng.gen_range(0..1500);
        let edge_offset = TimeDelta::milliseconds(rng.gen_range(-3_000..12_000));

        let spawned_at = r.clock.now();
        let mut child = r.spawn();
        let ctx = r.ctx(i, Some(kind));
        let ready = match kind {
            Kind::StartUp => r
                .notify
                .ready_by(&mut child, Duration::from_millis(startup_ms))
                .unwrap_or_else(|e| panic!("{ctx} {e}\n{}", r.log_tail())),
            _ => {
                let ready = r
                    .notify
                    .ready_by(&mut child, READY_WITHIN)
                    .unwrap_or_else(|e| panic!("{ctx} {e}\n{}", r.log_tail()));
                assert!(
                    ready,
                    "{ctx} no READY within {READY_WITHIN:?}\n{}",
                    r.log_tail()
                );
                let wait = match kind {
                    Kind::Edge => r.real_until(edge + edge_offset),
                    _ => Duration::from_millis(storm_ms),
                };
                std::thread::sleep(wait);
                true
            }
        };
        assert!(
            child.try_wait().unwrap().is_none(),
            "{ctx} the daemon exited by itself\n{}",
            r.log_tail()
        );
        let at = r.clock.now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        out.kills.push(Kill { kind, ready });

        // The store after the kill, against what the server knows.
        let mut rotations: HashMap<String, Vec<enode_sim::RotationRecord>> = HashMap::new();
        for rot in r.sim.handle.rotations() {
            rotations.entry(rot.user.clone()).or_default().push(rot);
        }
        for (user, (status, token)) in r.check_store(&ctx) {
            let info = r.sim.handle.refresh_token_info(&token).unwrap_or_else(|| {
                panic!("{ctx} {user}: stored refresh token unknown to the server")
            });
            assert_eq!(info.user, user, "{ctx} tokens of another user stored");
            if info.revoked || status != UserStatus::Active {
                assert!(
                    lost_ok.contains(&user),
                    "{ctx} {user} lost ({status:?}, revoked {}) though no kill orphaned it\n{}",
                    info.revoked,
                    r.log_tail()
                );
                continue;
            }
            if info.seq == info.current_seq {
                continue;
            }
            // The server rotated tokens the store does not have: each with
            // the stored token (the daemon never uses a token it has not
            // stored), and each inside the window of a kill.
            for rot in rotations[&user].iter().filter(|x| x.new_seq > info.seq) {
                assert_eq!(
                    rot.used_seq, info.seq,
                    "{ctx} {user}: the server rotated #{} -> #{} but the store holds #{}: \
                     a token was used before it was stored",
                    rot.used_seq, rot.new_seq, info.seq
                );
                if !classified.insert((user.clone(), rot.new_seq)) {
                    continue; // seen after an earlier kill
                }
                let before_kill = at - rot.at;
                assert!(
                    rot.at >= spawned_at && before_kill <= window,
                    "{ctx} {user} orphaned by a rotation at {}, outside the window of the kill at {at} \
                     (process started {spawned_at}, window {WINDOW_REAL:?} real): a rotated token \
                     was held unflushed\n{}",
                    rot.at,
                    r.log_tail()
                );
                lost_ok.insert(user.clone());
                out.orphans.push(Orphan {
                    user: user.clone(),
                    kill: i,
                    before_kill,
                });
            }
        }
    }

    // A last start: every orphaned user refreshes (overdue: within a
    // simulated minute), then a clean stop.
    let ctx = r.ctx(size.kills, None);
    let mut child = r.spawn();
    let ready = r
        .notify
        .ready_by(&mut child, READY_WITHIN)
        .unwrap_or_else(|e| panic!("{ctx} {e}\n{}", r.log_tail()));
    assert!(ready, "{ctx} no READY\n{}", r.log_tail());
    std::thread::sleep(r.real_until(r.clock.now() + TimeDelta::seconds(150)));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{ctx} {}", r.log_tail());

    for (user, (status, token)) in r.check_store(&ctx) {
        let info = r.sim.handle.refresh_token_info(&token).unwrap();
        if info.revoked || status != UserStatus::Active {
            out.lost.insert(user);
        }
    }
    for user in &out.lost {
        assert!(
            lost_ok.contains(user),
            "{ctx} {user} lost though no kill orphaned it"
        );
    }

    // No vehicle got the same command twice in a row.
    let log = r.sim.handle.command_log();
    let mut last: HashMap<&str, &enode_sim::CommandRecord> = HashMap::new();
    for c in &log {
        if let Some(prev) = last.insert(&c.vehicle, c) {
            assert!(
                prev.action != c.action,
                "{ctx} {} got {} twice in a row: at {} and {}",
                c.vehicle,
                c.action,
                prev.at,
                c.at
            );
        }
        let since_edge = c.at - c.at.duration_trunc(TimeDelta::hours(1)).unwrap();
        if since_edge < TimeDelta::seconds(30) {
            out.edge_commands += 1;
        }
    }
    out.commands = log.len();
    let stats = r.sim.handle.stats();
    out.refreshes = stats.tokens.refresh_token;
    out.graced = stats.tokens.refresh_graced;
    out.real = started.elapsed();
    assert!(
        out.refreshes > size.users as u64 * 2,
        "{ctx} only {} refreshes: no storm",
        out.refreshes
    );
    assert!(out.commands > 0, "{ctx} no command was sent");
    report(label, seed, &out);
    drop(r.rt);
    out
}

fn report(label: &str, seed: u64, o: &Outcome) {
    let mut kinds = BTreeMap::new();
    for k in &o.kills {
        *kinds.entry(format!("{:?}", k.kind)).or_insert(0) += 1;
    }
    let before_ready = o.kills.iter().filter(|k| !k.ready).count();
    let mut per_kill: BTreeMap<usize, usize> = BTreeMap::new();
    for orphan in &o.orphans {
        *per_kill.entry(orphan.kill).or_default() += 1;
    }
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for orphan in &o.orphans {
        *by_kind
            .entry(format!("{:?}", o.kills[orphan.kill].kind))
            .or_default() += 1;
    }
    let max_before = o
        .orphans
        .iter()
        .map(|x| x.before_kill.num_milliseconds())
        .max();
    eprintln!(
        "kill test, {label} server (seed {seed}): {} kills {kinds:?} ({before_ready} before READY); \
         {} refreshes ({} within the grace period); {} commands ({} at block edges); \
         {} users orphaned by {} kills (at most {} by one kill; by kind {by_kind:?}; rotation at most {:?} ms of clock time before its kill), all inside their rotation window; \
         {} users lost; {:.1} s",
        o.kills.len(),
        o.refreshes,
        o.graced,
        o.commands,
        o.edge_commands,
        o.orphans.len(),
        per_kill.len(),
        per_kill.values().max().unwrap_or(&0),
        max_before,
        o.lost.len(),
        o.real.as_secs_f64()
    );
    for orphan in &o.orphans {
        eprintln!(
            "  orphaned {} by kill {} ({:?}), rotated {} ms of clock time before it",
            orphan.user,
            orphan.kill,
            o.kills[orphan.kill].kind,
            orphan.before_kill.num_milliseconds()
        );
    }
}

/// With a rotation grace period on the server, no kill loses a user: an
/// orphaned user's next refresh presents the token it stored, within the
/// grace period.
#[test]
fn kills_lose_no_user_with_a_grace_period() {
    let o = run("grace", true);
    assert!(
        o.lost.is_empty(),
        "[seed {}] users lost despite the grace period: {:?}",
        seed() ^ 1,
        o.lost
    );
    assert!(
        o.graced >= o.orphans.len() as u64,
        "[seed {}] {} orphaned users but only {} graced refreshes",
        seed() ^ 1,
        o.orphans.len(),
        o.graced
    );
}

/// Without a grace period (the default server), a kill between the
/// server's rotation and the flush loses that user, and nothing else does:
/// every lost user was orphaned by a kill inside its rotation window, and
/// the in-flight bound keeps the number per kill small.
#[test]
fn kills_lose_only_users_caught_in_their_rotation_window() {
    let o = run("strict", false);
    let orphans: BTreeSet<String> = o.orphans.iter().map(|x| x.user.clone()).collect();
    assert_eq!(
        o.lost,
        orphans,
        "[seed {}] lost users and users orphaned by a kill differ",
        seed()
    );
    let mut per_kill: BTreeMap<usize, usize> = BTreeMap::new();
    for orphan in &o.orphans {
        *per_kill.entry(orphan.kill).or_default() += 1;
    }
    let worst = per_kill.values().max().copied().unwrap_or(0);
    assert!(
        worst <= smartcharged::daemon::tokens::MAX_REFRESHES_IN_FLIGHT,
        "[seed {}] one kill orphaned {worst} users, more than can be in flight",
        seed()
    );
}
