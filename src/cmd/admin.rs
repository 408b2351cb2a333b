//! The commands that talk to the running daemon over its admin socket:
//! `status`, `vehicles`, `override`, `trip`, `replan`, `journal`, `report`
//! (and `users`, `unlink`, `link` in `link.rs`). Each takes `--socket PATH`
//! (default: the config's `[admin] socket`) and `--json`. Those that can
//! work on the store (`journal`, `report`, `users`, `unlink`, `link`) do so
//! when no daemon holds it; the others say that no daemon answers and exit
//! 69 (EX_UNAVAILABLE). A caller the socket refuses gets exit 77
//! (EX_NOPERM).

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::common::{self, ConfigArg};
use super::{exit, CmdResult, Failure};
use crate::admin::client::{Client, ClientError};

/// Where the daemon is and how to print.
#[derive(clap::Args, Debug, Clone)]
pub struct SocketArgs {
    /// The daemon's admin socket (default: `[admin] socket` of the config).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Arguments of `status` and `vehicles`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Arguments of `override`.
#[derive(clap::Args, Debug)]
pub struct OverrideArgs {
    /// The vehicle.
    pub vehicle: String,
    /// charge-now, stop or auto.
    #[arg(value_parser = ["charge-now", "stop", "auto"])]
    pub mode: String,
    /// Until when: "10:00", "tomorrow 07:30", "2026-12-24 08:00" (local) or RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Charge-now until this state of charge, percent.
    #[arg(long, value_name = "N", conflicts_with = "until", value_parser = finite_percent)]
    pub soc: Option<f64>,
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// A percentage argument: a finite number. NaN and infinities would go
/// out as JSON `null` (serde_json writes them so), which the daemon reads
/// as "no value": a `--soc NaN` charge-now would charge without a limit.
/// The range (1-100) is the daemon's to check.
fn finite_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s:?} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}

/// Arguments of `trip`.
#[derive(clap::Args, Debug)]
pub struct TripArgs {
    /// The vehicle.
    pub vehicle: String,
    /// The departure: "10:00", "tomorrow 07:30", "2026-12-24 08:00" (local) or RFC 3339.
    #[arg(long, value_name = "TIME", required_unless_present = "cancel")]
    pub depart: Option<String>,
    /// The state of charge wanted then, percent (default: the policy's).
    #[arg(long, value_name = "N", value_parser = finite_percent)]
    pub target: Option<f64>,
    /// Drop the trip.
    #[arg(long, conflicts_with_all = ["depart", "target"])]
    pub cancel: bool,
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Arguments of `replan`.
#[derive(clap::Args, Debug)]
pub struct ReplanArgs {
    /// The vehicle.
    pub vehicle: String,
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Arguments of `journal`.
#[derive(clap::Args, Debug)]
pub struct JournalArgs {
    /// Only this vehicle.
    #[arg(long)]
    pub vehicle: Option<String>,
    /// Only this user.
    #[arg(long)]
    pub user: Option<String>,
    /// From (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Before (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many, the newest.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// The socket to use: `--socket`, else the config's.
pub(crate) fn socket_path(a: &SocketArgs) -> Result<PathBuf, Failure> {
    match &a.socket {
        Some(p) => Ok(p.clone()),
        None => Ok(common::load_config(&a.config.config)?.admin.socket),
    }
}

/// The exit code of a socket error: 69 when no daemon answers, 65 for a
/// request the daemon refused as wrong, 1 otherwise.
pub(crate) fn failure(e: ClientError) -> Failure {
    match e {
        ClientError::NoDaemon { .. } => Failure::new(exit::UNAVAILABLE, e),
        ClientError::Refused { status: 403, .. } => Failure::new(exit::NOPERM, e),
        ClientError::Refused { status, .. } if (400..500).contains(&status) => {
            Failure::new(exit::DATAERR, e)
        }
        e => Failure::new(exit::FAILURE, e),
    }
}

/// One request to the daemon (a POST with `post` as its body, else a
/// GET), decoded.
pub(crate) fn request<T: serde::de::DeserializeOwned>(
    a: &SocketArgs,
    post: Option<Value>,
    path: &str,
) -> Result<T, Failure> {
    let socket = socket_path(a)?;
    let client = Client::new(&socket).map_err(failure)?;
    common::runtime()?
        .block_on(async {
            match &post {
                Some(body) => client.post(path, body).await,
                None => client.get(path).await,
            }
        })
        .map_err(failure)
}

/// One request, printed as JSON or by `human`.
fn call(
    a: &SocketArgs,
    post: Option<Value>,
    path: &str,
    human: impl FnOnce(&Value, &mut dyn Write) -> std::io::Result<()>,
) -> CmdResult {
    let v: Value = request(a, post, path)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        human(&v, &mut out)?;
    }
    Ok(())
}

/// `smartcharged status`.
pub fn run_status(args: StatusArgs) -> CmdResult {
    call(&args.socket, None, "/v1/status", print_status)
}

/// `smartcharged vehicles`: every page of `/v1/vehicles`, one table.
pub fn run_vehicles(args: StatusArgs) -> CmdResult {
    let mut all: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A page shorter than a full one is the last. A longer one, or one with
    // no vehicle not seen before, is too: an older daemon (still running
    // after an upgrade of the CLI) ignores `page` and sends every vehicle
    // each time. Vehicles already seen (pages shift when one is added
    // between two requests) are left out. The bound stops a daemon that
    // never ends.
    for page in 1..=MAX_PAGES {
        let v: Value = request(&args.socket, None, &format!("/v1/vehicles?page={page}"))?;
        let list = match v {
            Value::Array(list) => list,
            _ => Vec::new(),
        };
        let last = list.len() != crate::daemon::readmodel::JSON_PAGE;
        let before = all.len();
        all.extend(
            list.into_iter()
                .filter(|v| seen.insert(v.get("id").map(Value::to_string))),
        );
        if last || all.len() == before {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    if args.socket.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        vehicle_table(&all, &mut out)?;
    }
    Ok(())
}

/// The most pages `vehicles` asks for (a million vehicles).
const MAX_PAGES: usize = 10_000;

/// `smartcharged override`.
pub fn run_override(args: OverrideArgs) -> CmdResult {
    let body = serde_json::json!({ "mode": args.mode, "until": args.until, "soc": args.soc });
    let path = format!("/v1/vehicles/{}/override", segment(&args.vehicle)?);
    call(&args.socket, Some(body), &path, print_vehicle)
}

/// `smartcharged trip`.
pub fn run_trip(args: TripArgs) -> CmdResult {
    let body =
        serde_json::json!({ "depart": args.depart, "target": args.target, "cancel": args.cancel });
    let path = format!("/v1/vehicles/{}/trip", segment(&args.vehicle)?);
    call(&args.socket, Some(body), &path, print_vehicle)
}

/// `smartcharged replan`.
pub fn run_replan(args: ReplanArgs) -> CmdResult {
    let path = format!("/v1/vehicles/{}/replan", segment(&args.vehicle)?);
    call(
        &args.socket,
        Some(serde_json::json!({})),
        &path,
        print_vehicle,
    )
}

/// `smartcharged plan show VEHICLE`: the live plan as the terminal chart,
/// in local time, under the explanation.
pub fn run_plan_show(vehicle: &str, a: &SocketArgs) -> CmdResult {
    let path = format!("/v1/vehicles/{}/plan", segment(vehicle)?);
    call(a, None, &path, |v, out| {
        let p: crate::admin::routes::PlanAnswer = serde_json::from_value(v.clone())
            .map_err(|e| std::io::Error::other(format!("unreadable plan: {e}")))?;
        write!(out, "{}", plan_text(vehicle, &p))
    })
}

/// What `plan show` prints: the explanation, then the chart.
pub fn plan_text(vehicle: &str, p: &crate::admin::routes::PlanAnswer) -> String {
    format!(
        "● {vehicle}: {}\n\n{}",
        p.explanation,
        super::plan::chart(&p.prices, p.now, p.deadline, &p.plan, p.time_zone)
    )
}

/// Arguments of `report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The month, YYYY-MM (default: this month, local).
    #[arg(long)]
    pub month: Option<String>,
    /// Only this vehicle.
    #[arg(long)]
    pub vehicle: Option<String>,
    /// CSV instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Where a command that can also work without a daemon gets its answer.
pub(crate) enum Backend {
    /// No process holds the store: work on it directly.
    Store(crate::store::Store, Box<crate::config::Config>),
    /// A process holds the store (the lock's error names it): ask it over
    /// the admin socket.
    Daemon(crate::store::StoreError),
}

impl Backend {
    /// The store if no process holds it (its lock tells), else the
    /// running daemon.
    pub(crate) fn choose(a: &SocketArgs) -> Result<Backend, Failure> {
        let config = common::load_config(&a.config.config)?;
        match crate::store::Store::open(&config.store.path) {
            Ok(s) => Ok(Backend::Store(s, Box::new(config))),
            Err(e @ crate::store::StoreError::InUse { .. }) => Ok(Backend::Daemon(e)),
            Err(e) => Err(Failure::new(exit::FAILURE, e)),
        }
    }
}

/// [`request`] to the process that holds the store (`held`): if no daemon
/// answers on the socket, the holder is some other process, and the
/// answer is "try again later" (exit 75), naming it.
pub(crate) fn request_held<T: serde::de::DeserializeOwned>(
    a: &SocketArgs,
    held: crate::store::StoreError,
    post: Option<Value>,
    path: &str,
) -> Result<T, Failure> {
    request(a, post, path).map_err(|f| {
        if f.code == exit::UNAVAILABLE {
            Failure::new(exit::TEMPFAIL, f.error.context(held.to_string()))
        } else {
            f
        }
    })
}

/// `smartcharged report`: from the daemon, or from the store when none runs.
pub fn run_report(args: ReportArgs) -> CmdResult {
    let q = crate::admin::routes::ReportQuery {
        month: args.month.clone(),
        vehicle: args.vehicle.clone(),
    };
    let report: crate::report::Report = match Backend::choose(&args.socket)? {
        Backend::Store(store, config) => {
            let tz = config.policy.global().time_zone;
            crate::admin::routes::select_report(&store, &q, clock::Clock::system().now(), tz)
                .map_err(|e| Failure::new(exit::DATAERR, anyhow::anyhow!(e)))?
        }
        Backend::Daemon(held) => {
            let path = format!(
                "/v1/report?{}",
                serde_urlencoded_pairs(&[("month", &q.month), ("vehicle", &q.vehicle)])
            );
            request_held(&args.socket, held, None, &path)?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.socket.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if args.csv {
        write!(out, "{}", report.csv())?;
    } else {
        write!(out, "{}", report.table())?;
    }
    Ok(())
}

fn serde_urlencoded_pairs(pairs: &[(&str, &Option<String>)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// `smartcharged journal`: from the daemon, or from the store when none runs.
pub fn run_journal(args: JournalArgs) -> CmdResult {
    let v: Value = match Backend::choose(&args.socket)? {
        Backend::Store(store, _) => {
            let q = crate::admin::routes::JournalQuery {
                vehicle: args.vehicle.clone(),
                user: args.user.clone(),
                since: args.since.clone(),
                until: args.until.clone(),
                limit: Some(args.limit),
            };
            let list = crate::admin::routes::select_journal(&store, &q)
                .map_err(|e| Failure::new(exit::DATAERR, anyhow::anyhow!(e)))?;
            serde_json::to_value(list)?
        }
        Backend::Daemon(held) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("vehicle", &args.vehicle),
                ("user", &args.user),
                ("since", &args.since),
                ("until", &args.until),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("limit", &args.limit.to_string());
            let path = format!("/v1/journal?{}", q.finish());
            request_held(&args.socket, held, None, &path)?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.socket.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    print_journal(&v, &mut out).map_err(Into::into)
}

fn print_journal(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    {
        writeln!(
            out,
            "{:<20} {:<14} {:<12} {:<9} REASON",
            "TIME (UTC)", "VEHICLE", "USER", "ACTION"
        )?;
        for e in v.as_array().map_or(&[][..], Vec::as_slice) {
            let at = e["at"].as_str().unwrap_or("-");
            writeln!(
                out,
                "{:<20} {:<14} {:<12} {:<9} {}{}",
                at.get(..19).unwrap_or(at),
                s(&e["vehicle"]),
                s(&e["user"]),
                s(&e["action"]),
                s(&e["reason"]),
                match e["result"].as_str() {
                    Some("ok") | None => String::new(),
                    Some(r) => format!(" [{r}]"),
                }
            )?;
        }
        Ok(())
    }
}

/// A vehicle id checked before it becomes a path segment.
/// A vehicle id as one path segment of the socket's URL, percent-encoded:
/// Enode's id grammar allows `/`, `?`, `#` and dots, which would otherwise
/// reach another route (`replan '../../v1/unlink/USER?'` was an unlink).
/// `.` and `..` are refused: URL parsing takes them (even encoded) as
/// steps up the path.
fn segment(id: &str) -> Result<String, Failure> {
    if crate::limits::enode_id_ok(id) && id != "." && id != ".." {
        let mut out = String::with_capacity(id.len());
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        Ok(out)
    } else {
        Err(Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("{:?} is not a vehicle id", crate::limits::clip(id)),
        ))
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// What `status` prints for the daemon's `/v1/status` answer.
pub fn print_status(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let vehicles = v["vehicles"].as_array().map_or(&[][..], Vec::as_slice);
    let users = v["users"].as_array().map_or(&[][..], Vec::as_slice);
    let active = users.iter().filter(|u| u["status"] == "active").count();
    writeln!(out, "● smartcharged {} — running", s(&v["version"]))?;
    writeln!(
        out,
        "     Since: {} ({} s)",
        local_time(v, &v["started_at"]),
        s(&v["uptime_seconds"])
    )?;
    writeln!(out, "     Users: {} ({active} active)", users.len())?;
    let mut states: Vec<(String, usize)> = Vec::new();
    for x in vehicles {
        let st = s(&x["state"]);
        match states.iter_mut().find(|(k, _)| *k == st) {
            Some((_, n)) => *n += 1,
            None => states.push((st, 1)),
        }
    }
    // All vehicles' counts, when the daemon pages its vehicles.
    if let Some(by_state) = v["vehicles_by_state"].as_array() {
        states = by_state
            .iter()
            .map(|p| (s(&p[0]), p[1].as_u64().unwrap_or(0) as usize))
            .collect();
    }
    let total = v["vehicles_page"]["total"]
        .as_u64()
        .map_or(vehicles.len(), |n| n as usize);
    let states: Vec<String> = states.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(out, "  Vehicles: {total} ({})", states.join(", "))?;
    let p = &v["prices"];
    let t = |x: &Value| local_time(v, x);
    let cur = s(&p["currency"]);
    let price = |x: &Value| {
        x.as_f64()
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.4}"))
    };
    writeln!(
        out,
        "    Prices: {} {cur}/kWh now, known until {} (newest {})",
        price(&p["price_now"]),
        t(&p["known_until"]),
        price(&p["newest_price"])
    )?;
    let f = &p["last_fetch"];
    if f.is_null() {
        writeln!(out, "   Fetched: not since start (stored prices)")?;
    } else {
        writeln!(out, "   Fetched: {} from {}", t(&f["at"]), s(&f["source"]))?;
    }
    let m = &v["month"]["total"];
    writeln!(
        out,
        "     Saved: {:.2} {cur} in {} ({:.1} kWh, {} sessions, {} deadlines met)",
        m["saving"].as_f64().unwrap_or(0.0),
        s(&v["month"]["month"]),
        m["energy_kwh"].as_f64().unwrap_or(0.0),
        s(&m["sessions"]),
        s(&m["deadlines_met"])
    )?;
    for b in v["backoff"].as_array().map_or(&[][..], Vec::as_slice) {
        writeln!(
            out,
            "   Backoff: {} {} until {}",
            s(&b["scope"]),
            s(&b["id"]),
            t(&b["until"])
        )?;
    }
    writeln!(out, "     Times: {}", s(&v["time_zone"]))?;
    writeln!(out)?;
    vehicle_table(vehicles, out)?;
    if total > vehicles.len() {
        writeln!(
            out,
            "… {} more: smartcharged vehicles",
            total - vehicles.len()
        )?;
    }
    Ok(())
}

/// An instant of a status answer in its zone (`time_zone`), relative to
/// when it was taken (`taken_at`); as given when either is unreadable.
fn local_time(status: &Value, at: &Value) -> String {
    let parse = |x: &Value| {
        x.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let tz = status["time_zone"]
        .as_str()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok());
    match (parse(at), parse(&status["taken_at"]), tz) {
        (Some(at), Some(now), Some(tz)) => crate::localtime::short(at, now, tz),
        _ => s(at),
    }
}

fn vehicle_table(vehicles: &[Value], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{:<14} {:<10} {:>5}  WHY", "VEHICLE", "STATE", "SOC")?;
    for x in vehicles {
        let soc = x["observed"]["soc"]
            .as_f64()
            .map_or("-".into(), |s| format!("{s:.0}%"));
        writeln!(
            out,
            "{:<14} {:<10} {:>5}  {}",
            s(&x["id"]),
            s(&x["state"]),
            soc,
            s(&x["explanation"]["text"])
        )?;
    }
    Ok(())
}

fn print_vehicle(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "● {} ({})", s(&v["id"]), s(&v["state"]))?;
    writeln!(out, "   {}", s(&v["explanation"]["text"]))?;
    if let Some(o) = v.get("override").filter(|o| !o.is_null()) {
        writeln!(
            out,
            "   Override: {} until {}",
            s(&o["mode"]),
            s(&o["until"])
        )?;
    }
    if let Some(t) = v.get("trip").filter(|t| !t.is_null()) {
        writeln!(
            out,
            "   Trip: depart {} target {}",
            s(&t["depart"]),
            s(&t["target_percent"])
        )?;
    }
    if let Some(p) = v.get("plan").filter(|p| !p.is_null()) {
        writeln!(
            out,
            "   Plan: deadline {}, cost {}, at once {}",
            s(&p["deadline"]),
            s(&p["cost"]),
            s(&p["asap_cost"])
        )?;
        for b in p["blocks"].as_array().map_or(&[][..], Vec::as_slice) {
            writeln!(out, "     {} - {}", s(&b["start"]), s(&b["end"]))?;
        }
    }
    Ok(())
}
