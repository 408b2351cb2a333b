//! A year of real nights, end to end: the real daemon against enode-sim on
//! paused time, one car per market with seeded sessions, day-ahead prices
//! revealed at their publication time (12:45 local), compared with the
//! hindsight optimum, charging at once, the cheapest 15-minute slots and
//! the cheapest continuous window.
//!
//! ```sh
//! cargo run --release --example year                       # DE-LU 2024, SE3 2023, NL 2024
//! cargo run --release --example year -- --market SE3 --days 60 --seed 7
//! cargo run --release --example year -- --pauses 0,15,30,60  # min_pause_minutes measurement
//! ```

#[path = "../tests/common/year.rs"]
mod year;

use clap::Parser;
use year::Market;

/// Command-line arguments.
#[derive(Parser, Debug)]
struct Args {
    /// DE-LU, SE3 or NL; all three when left out.
    #[arg(long)]
    market: Option<String>,
    /// Nights from January 1st of the market's year.
    #[arg(long, default_value_t = 366)]
    days: u32,
    /// Seed of the car's sessions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `min_pause_minutes` values to run, comma-separated (`none` for the
    /// default, no minimum pause).
    #[arg(long, default_value = "none")]
    pauses: String,
    /// Print one line per session.
    #[arg(long)]
    detail: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let markets: Vec<Market> = match &args.market {
        Some(m) => match Market::parse(m) {
            Some(m) => vec![m],
            None => {
                eprintln!("error: unknown market `{m}` (DE-LU, SE3 or NL)");
                return std::process::ExitCode::from(2);
            }
        },
        None => Market::ALL.to_vec(),
    };
    let mut pauses = Vec::new();
    for p in args.pauses.split(',') {
        match p.trim() {
            "none" => pauses.push(None),
            n => match n.parse::<u32>() {
                Ok(n) => pauses.push(Some(n)),
                Err(_) => {
                    eprintln!("error: bad --pauses value `{n}`");
                    return std::process::ExitCode::from(2);
                }
            },
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let mut failed = false;
    let mut summary = Vec::new();
    for &pause in &pauses {
        for &m in &markets {
            let r = rt.block_on(year::simulate(m, args.days, args.seed, pause));
            println!(
                "min_pause_minutes = {}",
                pause.map_or("none".into(), |p| p.to_string())
            );
            print!("{}", r.table());
            if args.detail {
                println!("{}", r.detail.join("\n"));
            }
            let misses = r.misses();
            for miss in &misses {
                println!("  TARGET MISSED: {miss}");
            }
            failed |= !misses.is_empty();
            summary.push((pause, r));
        }
    }
    if pauses.len() > 1 {
        println!("\nmin_pause_minutes  market  realized EUR  vs hindsight(no pause)  cmds/session");
        for (pause, r) in &summary {
            let base = summary
                .iter()
                .find(|(p, o)| p.is_none() && o.market == r.market)
                .map(|(_, o)| o.hindsight.cost);
            println!(
                "{:>17}  {:<6}  {:>12.2}  {:>22}  {:>12.2}",
                pause.map_or("none".into(), |p| p.to_string()),
                r.market.name(),
                r.daemon.cost,
                base.map_or("-".into(), |b| format!(
                    "{:+.2} %",
                    (r.daemon.cost / b - 1.0) * 100.0
                )),
                year::per_session(&r.daemon, r.sessions)
            );
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
