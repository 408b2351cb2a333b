//! Vehicles that share one grid connection: the cheapest joint plan under
//! a site power limit.
//!
//! # The problem
//! Every vehicle charges at its own fixed power or not at all, on the
//! minute grid, only inside its own window `[planning start, deadline)`.
//! At every minute the summed power of the charging vehicles must stay
//! within the site limit (compared in whole watts: powers rounded up, the
//! limit rounded down). Each kWh costs its minute's price, whichever
//! vehicle draws it.
//!
//! # The method
//! Prices are constant within a price slot and every window starts at
//! the planning start, so the horizon splits into *segments* (cut at slot
//! edges, deadlines and the edges of the min-SoC schedule) in which
//! the price, the set of vehicles that may charge and the spare power are
//! constant. Inside a segment of `m` minutes only the number of minutes
//! `x_i` per vehicle matters for the cost; what is left is whether the
//! minutes can be packed under the limit.
//!
//! For a segment let `k_safe` be the most vehicles of any choice that fit
//! together (the `k` largest powers fit) and `k_max` the most that can
//! ever fit (the `k` smallest fit). If at most `k` vehicles charge per
//! minute, any `x` with `x_i <= m` and `sum x_i <= k·m` can be packed
//! (McNaughton's wrap-around rule), so with `k = k_safe` the segments
//! form a transportation network: vehicles → segments (capacity `m`, cost
//! price × power per minute) → sink (capacity `k_safe·m`). Its integral
//! min-cost flow is a feasible plan; the same network with `k_max` is a
//! relaxation, and its min-cost flow a lower bound.
//!
//! # The exact domain
//! Without block rules the plan is proven cheapest (`exact`) when
//! `k_safe = k_max` in every segment — every set of `k` of the vehicles
//! that can charge there fits and no set of `k + 1` does: all vehicles
//! fit at once, or one at a time, or the limit counts cars whatever their
//! powers. Two vehicles always fall in it. Outside it the answer is the
//! `k_safe` plan with the `k_max` lower bound and the gap; it is also
//! marked exact when the two meet. The general packing is bin packing
//! (strongly NP-hard in the number of vehicles), so no method is exact
//! and fast for every large heterogeneous site. Costs inside the method
//! are exact integers (price in 1e-9 per kWh times watts), so ties are
//! decided exactly.
//!
//! With block rules (see below) the plan is exact when the plan without
//! them keeps them already, or when the plan that keeps them serves what
//! a relaxation without them serves (so no plan serves more) and costs
//! what one of the lower bounds says (so none costs less). That covers a
//! single vehicle (its plan is the exact single-vehicle optimum under the
//! spare power), rules that do not bind, and vehicles that do not compete
//! for the same minutes. Beyond that the answer keeps every rule and the
//! limit, with the larger lower bound and the gap.
//!
//! The exact single-vehicle solves that keep the rules share one work
//! budget per site plan ([`SITE_WORK_BUDGET`] table cells, counted before
//! each pass runs, so a solve never overruns what is left). Once it is
//! spent the plan stops improving (see `rules::Enforcer::fallback`), is
//! never `exact`, carries the bound on its own served minutes and a
//! warning. So with block rules the domain above is exact only where the
//! budget suffices; without block rules no budget applies.
//!
//! # When not every target can be met
//! 1. **Min SoC first.** Each vehicle's minutes up to its
//!    `min_soc_percent` are charged at once, whatever they cost, minute by
//!    minute from the planning start, vehicles taken by earliest deadline
//!    (then request order) as long as they fit under the limit.
//! 2. **Then earliest deadline.** The remaining minutes are served
//!    vehicle by vehicle in the same order, each as much as the network
//!    allows without taking anything from the vehicles before it (a
//!    lexicographic maximum).
//! 3. **Then cost.** Among all plans serving those amounts, the cheapest;
//!    ties go to later (or earlier, `tie_break`) segments.
//!
//! Each vehicle's shortfall is what it still misses at its deadline.
//!
//! # Block rules
//! `max_blocks`, `min_block_minutes` and `min_pause_minutes` hold for
//! each vehicle as in a single plan. The plan above ignores them; when it
//! keeps them anyway it is the answer. Otherwise vehicles are replanned
//! one at a time against the others' plans with the exact single-vehicle
//! solver (`rules`), which sees the minutes where the spare power does
//! not admit the vehicle priced out of reach and its min-SoC minutes as
//! obligatory: first each vehicle that breaks its rules or is short, in
//! priority order (the most minutes it can get, then the cheapest), then
//! every vehicle again while one gains minutes or cost, for a few rounds.
//! Started from the plan without rules, and, when that leaves a vehicle
//! short, also from the min-SoC schedule alone; the better wins (more
//! minutes in priority order, then cheaper). A vehicle's replan is only
//! accepted when it keeps its rules, so no vehicle ever breaks them
//! silently: only a vehicle whose min-SoC minutes (charged first, around
//! the limit) already break them keeps those minutes alone and a warning
//! naming the rule and the reason.
//!
//! Two lower bounds hold for any plan that keeps the rules and serves the
//! same minutes: the relaxations without rules (above), and every vehicle
//! planned alone with its rules, with only the others' min-SoC minutes in
//! its way. The larger is `lower_bound`. Shortfalls with rules follow the
//! same order (min SoC, then earliest deadline) greedily, one vehicle at
//! a time; the plan is only marked exact when it serves what the
//! relaxation serves.

mod flow;
mod request;
mod rules;

pub use request::{
    LoadStep, SitePlan, SiteRequest, SiteVehicle, SiteVehiclePlan, MAX_RESERVED_STEPS,
    MAX_SITE_LIMIT_KW, MAX_SITE_VEHICLES, MAX_VEHICLE_ID_LEN,
};

use crate::curve::{CurveBuilder, Gap, Piece, Slot};
use crate::error::PlanError;
use crate::plan::Block;
use crate::planner::{
    ceil_minute, charge_minutes, gap_warnings, minute_time, Goal, Planner, Rules,
};
use crate::problem::quantise;
use crate::request::{check_slots, TieBreak};
use flow::Graph;
use rules::{Broken, Enforcer, Joint, Part};

/// Bits of the tie-break term below the exact cost in a flow cost.
const TIE_BITS: u32 = 32;

/// One vehicle as the method sees it.
#[derive(Debug, Clone)]
struct Car {
    /// Minutes in its window.
    n: u32,
    /// Power, kW.
    power: f64,
    /// Power in whole watts, rounded up.
    watts: i64,
    /// Grid energy to the target, kWh.
    energy: f64,
    /// Minutes to the target, at most `n`.
    need: u32,
    /// Whether `need` reaches the target (the window is long enough).
    reachable: bool,
    /// Minutes to the min SoC, at most `need`.
    forced: u32,
    /// Its block rules.
    rules: Rules,
}

/// A stretch of the horizon with one price, one set of candidate
/// vehicles and one spare power.
#[derive(Debug, Clone)]
struct Segment {
    start: u32,
    len: u32,
    /// Quantised price per kWh.
    c: i64,
    /// Vehicles that may charge here beyond the min-SoC schedule.
    pool: Vec<usize>,
    /// Any `k_safe` of the pool fit together.
    k_safe: i64,
    /// No `k_max + 1` of the pool fit together.
    k_max: i64,
    /// Power left for the pool, watts.
    spare: i64,
}

/// What the flow counts and what bounds a segment.
#[derive(Clone, Copy)]
enum Unit {
    /// Vehicle-minutes, at most `k(segment)` vehicles at a minute.
    Minutes(fn(&Segment) -> i64),
    /// Watt-minutes, at most the spare power at a minute (the fluid
    /// relaxation: powers may share the limit in any fraction).
    Energy,
}

/// What one network run gives.
struct Flow {
    /// What `x` counts.
    unit: Unit,
    /// Minutes served per vehicle (-1 for a part of a minute).
    served: Vec<i64>,
    /// `(vehicle, segment, units)` with units > 0.
    x: Vec<(usize, usize, i64)>,
    /// Exact cost of `x`: sum of quantised price × watts × minutes.
    key: i128,
}

/// The exact solver's work allowed for one site plan, in table cells:
/// about half a second of CPU on the machine the planner was measured
/// on, a whole 48-hour plan of 64 vehicles that reaches it 1.2 s
/// (README, "Exact, and where it stops"; BENCHMARKS.md). Counted in cells rather than
/// time so the same request always gets the same answer; when it is
/// spent the plan stops improving, keeps every rule and the limit, and
/// says so (`exact: false`, a lower bound and the gap).
pub const SITE_WORK_BUDGET: u64 = 1 << 26;

/// Plans a site: validates the request, then returns the joint plan,
/// within [`SITE_WORK_BUDGET`].
pub fn plan_site(req: &SiteRequest) -> Result<SitePlan, PlanError> {
    plan_site_within(req, SITE_WORK_BUDGET)
}

/// [`plan_site`] with another work budget, in the exact solver's table
/// cells: for tests and benchmarks, which need a spent budget without a
/// second of work (or an unlimited one, `u64::MAX`, to measure what the
/// budget cuts off).
pub fn plan_site_within(req: &SiteRequest, work: u64) -> Result<SitePlan, PlanError> {
    req.validate()?;
    let mut slots: Vec<Slot> = Vec::with_capacity(req.prices.len());
    check_slots(&req.prices, &mut |s| slots.push(s))?;
    let t0 = ceil_minute(req.now);
    let limit_w = (req.site_limit_kw * 1000.0 + 1e-6).floor() as i64;
    let mut vehicle_warnings: Vec<Vec<String>> = vec![Vec::new(); req.vehicles.len()];
    let cars: Vec<Car> = req
        .vehicles
        .iter()
        .zip(&mut vehicle_warnings)
        .map(|(v, w)| car(v, t0, limit_w, w))
        .collect();
    let n = cars.iter().map(|c| c.n).max().unwrap_or(0);
    let (mut pieces, mut gaps): (Vec<Piece>, Vec<Gap>) = (Vec::new(), Vec::new());
    CurveBuilder::build(&slots, t0, n, &mut pieces, &mut gaps);
    let mut warnings: Vec<String> = Vec::new();
    gap_warnings(&gaps, &mut warnings);

    // priority: earliest deadline, then request order
    let mut order: Vec<usize> = (0..cars.len()).collect();
    order.sort_by_key(|&i| (cars[i].n, i));

    let limit = Limit::new(limit_w, &req.reserved, t0, n);
    let forced = forced_schedule(&cars, &order, &limit);
    let mut rest: Vec<i64> = cars.iter().map(|c| i64::from(c.need)).collect();
    for &(a, b, ref who, _) in &forced {
        for &i in who {
            rest[i] -= i64::from(b - a);
        }
    }
    let segments = segments(&cars, &pieces, &forced, &rest, n, &limit);
    let later = req.tie_break == TieBreak::Later;

    let plan = network(
        &cars,
        &segments,
        &order,
        &rest,
        later,
        Unit::Minutes(|s| s.k_safe),
    );
    let all_exact = segments.iter().all(|s| s.k_safe == s.k_max);

    // minutes per vehicle: the min-SoC schedule, then each segment laid out
    let mut minutes: Vec<Vec<(u32, u32)>> = vec![Vec::new(); cars.len()];
    for &(a, b, ref who, _) in &forced {
        for &i in who {
            minutes[i].push((a, b));
        }
    }
    layout(&segments, &plan.x, later, &mut minutes);
    let (mut served, mut key) = if all_exact {
        (plan.served.clone(), plan.key)
    } else {
        improve(
            &cars,
            &segments,
            &forced,
            &order,
            later,
            &limit,
            n,
            &mut minutes,
        )
    };
    for m in &mut minutes {
        *m = merge(m);
    }

    // the block rules: kept already, or enforced one vehicle at a time
    let keeps = cars
        .iter()
        .zip(&minutes)
        .all(|(c, r)| c.rules.kept_by(r, c.n));
    let mut broken = vec![None; cars.len()];
    let mut lost = vec![0u32; cars.len()];
    let mut alone = None;
    let (mut spent, mut reached, mut work_cells) = (false, false, 0);
    if !keeps {
        let mut e = enforcer(&cars, &pieces, &forced, &order, later, &limit, n);
        e.planner.set_work(Some(work));
        let free: Vec<Part> = (0..cars.len())
            .map(|i| e.part(i, minutes[i].clone()))
            .collect();
        let mut joint = e.enforce(free.clone());
        // when keeping the rules around the others costs a vehicle minutes,
        // also plan them one at a time in priority order from scratch
        // (the same start when every vehicle broke its rules)
        let short = joint
            .parts
            .iter()
            .zip(&free)
            .any(|(p, f)| p.minutes < f.minutes);
        let kept = (0..cars.len()).any(|i| cars[i].rules.kept_by(&minutes[i], cars[i].n));
        if short && kept && !e.spent() {
            let one_by_one = e.enforce(e.forced_only());
            joint = better(&order, joint, one_by_one);
        }
        for (i, p) in joint.parts.iter().enumerate() {
            lost[i] = free[i].minutes.saturating_sub(p.minutes);
            let fixed = e.fixed_runs[i].iter().map(|r| r.1 - r.0).sum::<u32>();
            served[i] = i64::from(p.minutes - fixed);
            minutes[i].clone_from(&p.runs);
        }
        key = joint.parts.iter().map(|p| p.key).sum();
        broken = joint.broken;
        // the plan was cut short: the search that would tighten the bound
        // is skipped too (cut short itself, it gives none)
        spent = e.spent();
        if broken.iter().all(Option::is_none) && !spent {
            alone = e.alone_bound(&joint.parts);
        }
        // (the budget may also run out in that search: the plan is
        // whole, only its bound is weaker)
        reached = e.spent();
        work_cells = e.planner.work_done();
    }
    // the relaxations; one serving more gives no bound on the same terms
    // (and with the rules, shows the plan may serve too little)
    let relax = |rest: &[i64]| {
        let segments = self::segments(&cars, &pieces, &forced, rest, n, &limit);
        [Unit::Minutes(|s| s.k_max), Unit::Energy]
            .into_iter()
            .map(|u| network(&cars, &segments, &order, rest, later, u))
            .filter(|r| r.served == served)
            .max_by_key(|r| r.key)
            .map(|r| (r.key, relaxed_cost(&cars, &pieces, &segments, &r)))
    };
    // (a plan cut short by the work budget has no claim to serve the
    // most: only the bound on its own terms is computed)
    let bound = if all_exact && keeps || spent {
        None
    } else {
        relax(&rest)
    };
    let most_served = all_exact && keeps || bound.is_some();
    // with the rules, a bound on the plan's own terms in any case
    let bound = match bound {
        None if !keeps => relax(&served),
        b => b,
    };
    let alone = alone.map(|(k, parts): (i128, Vec<Part>)| {
        let cost: f64 = parts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.runs.iter().map(move |&(a, b)| (i, a, b)))
            .map(|(i, a, b)| cost_of(&pieces, a, b, cars[i].power).0)
            .sum();
        (k, cost - forced_cost(&cars, &pieces, &forced))
    });
    let bound = bound.into_iter().chain(alone).max_by_key(|b| b.0);
    let exact = !spent
        && most_served
        && broken.iter().all(Option::is_none)
        && (all_exact && keeps || bound.is_some_and(|b| b.0 >= key));
    let mut vehicles = Vec::with_capacity(cars.len());
    let mut total = 0.0;
    let mut feasible = true;
    for (i, ((v, c), mut warn)) in req
        .vehicles
        .iter()
        .zip(&cars)
        .zip(vehicle_warnings)
        .enumerate()
    {
        let runs = merge(&mut minutes[i]);
        let mut blocks = Vec::with_capacity(runs.len());
        let (mut cost, mut energy, mut mins) = (0.0, 0.0, 0u32);
        for &(a, b) in &runs {
            let (bc, tentative) = cost_of(&pieces, a, b, c.power);
            let e = f64::from(b - a) * c.power / 60.0;
            cost += bc;
            energy += e;
            mins += b - a;
            blocks.push(Block {
                start: minute_time(t0 + i64::from(a)),
                end: minute_time(t0 + i64::from(b)),
                energy_kwh: e,
                cost: bc,
                tentative,
            });
        }
        let ok = c.reachable && mins >= c.need;
        let shortfall = if ok {
            0.0
        } else {
            (c.energy - energy).max(0.0)
        };
        if !ok {
            warn.push(format!(
                "the target cannot be met by the deadline under the site limit: {} short",
                crate::plan::kwh_short(shortfall)
            ));
        }
        match broken[i] {
            Some(Broken::MinSoc) => warn.push(
                "its min-SoC minutes, charged first under the site limit, already break its block rules"
                    .to_string(),
            ),
            Some(Broken::TooLarge) => warn.push(
                "its block rules are too large to plan exactly here: its plan keeps only its min-SoC minutes"
                    .to_string(),
            ),
            None if lost[i] > 0 && !ok => warn.push(format!(
                "keeping its block rules around the other vehicles' plans costs it {} minutes of charging",
                lost[i]
            )),
            None => {}
        }
        block_rules(v, &runs, &mut warn);
        feasible &= ok;
        total += cost;
        vehicles.push(request::SiteVehiclePlan {
            id: v.id.clone(),
            feasible: ok,
            charge_minutes: mins,
            energy_kwh: energy,
            cost,
            shortfall_kwh: shortfall,
            blocks,
            warnings: warn,
        });
    }
    let lower_bound = if exact {
        Some(total)
    } else {
        bound.map(|b| (forced_cost(&cars, &pieces, &forced) + b.1).min(total))
    };
    let gap = lower_bound.map(|lb| (total - lb).max(0.0));
    // a gap of 0 without `exact` loses nothing on the plan's own terms:
    // the warnings say what is not proven instead
    let none_cheaper = gap == Some(0.0);
    let own_terms = "the minutes this plan does";
    if spent {
        warnings.push(if none_cheaper {
            format!("the planning work budget was reached: the plan keeps every block rule and the limit, and no plan that charges each vehicle {own_terms} costs less (gap 0), but it is not proven the cheapest: a plan that charges some vehicle more may exist")
        } else {
            format!("the planning work budget was reached: the plan keeps every block rule and the limit but is not proven the cheapest; lower_bound and gap hold for plans that charge each vehicle {own_terms}, and one that charges some vehicle more may exist")
        });
    } else {
        if reached && !exact {
            warnings.push(
                "the planning work budget was reached while bounding the plan: the plan is whole and keeps every block rule and the limit, but the bound from planning each vehicle alone is missing"
                    .to_string(),
            );
        }
        if !most_served && bound.is_some() {
            warnings.push(format!(
                "lower_bound and gap hold for plans that charge each vehicle {own_terms}: a plan that charges some vehicle more may exist (a plan without the block rules does), so even a gap of 0 does not prove this plan the best"
            ));
        }
        // (nothing to see with a gap of 0, or without a bound)
        let see = if none_cheaper || lower_bound.is_none() {
            ""
        } else {
            "; see lower_bound and gap"
        };
        if !all_exact && !exact {
            warnings.push(format!(
                "the limit of {} kW packs vehicles of unequal power: the plan is not proven the cheapest{see}",
                req.site_limit_kw
            ));
        } else if !exact {
            warnings.push(format!(
                "the block rules are kept one vehicle at a time around the others: the plan is not proven the cheapest{see}"
            ));
        }
    }
    let load = load_steps(&cars, &vehicles_minutes(&vehicles, t0), t0);
    Ok(SitePlan {
        feasible,
        exact,
        cost: total,
        lower_bound,
        gap,
        vehicles,
        load,
        warnings,
        work_cells,
    })
}

fn car(v: &SiteVehicle, t0: i64, limit_w: i64, warnings: &mut Vec<String>) -> Car {
    let n = (v.deadline.timestamp().div_euclid(60) - t0).max(0) as u32;
    let goal = Goal::new(
        v.soc_percent,
        v.battery_kwh,
        v.efficiency,
        (v.target_percent, v.min_soc_percent),
        v.charge_limit_percent,
        warnings,
    );
    let grid = |to: f64| goal.grid(to);
    let (target, min_soc) = (goal.target, goal.min_soc);
    let energy = grid(target);
    let l = charge_minutes(energy, v.max_power_kw);
    let watts = (v.max_power_kw * 1000.0 - 1e-6).ceil() as i64;
    let mut need = l.min(f64::from(n)) as u32;
    if watts > limit_w {
        warnings.push(format!(
            "its power {} kW is above the site limit: it cannot charge here",
            v.max_power_kw
        ));
        need = 0;
    }
    let forced = (charge_minutes(grid(min_soc), v.max_power_kw) as u32).min(need);
    Car {
        n,
        power: v.max_power_kw,
        watts,
        energy,
        need,
        // a vehicle that needs nothing reaches its target at any power
        reachable: l <= f64::from(n) && (watts <= limit_w || l == 0.0),
        forced,
        rules: Rules {
            max_blocks: v.max_blocks,
            min_block_minutes: v.min_block_minutes,
            min_pause_minutes: v.min_pause_minutes,
        },
    }
}

/// The min-SoC schedule: from the planning start, each minute the vehicles
/// with min-SoC minutes left, in priority order, as long as they fit.
/// Returns runs `(start, end, vehicles, watts)` with a constant set.
fn forced_schedule(
    cars: &[Car],
    order: &[usize],
    limit: &Limit,
) -> Vec<(u32, u32, Vec<usize>, i64)> {
    let mut left: Vec<u32> = cars.iter().map(|c| c.forced).collect();
    let mut out = Vec::new();
    let mut t = 0u32;
    loop {
        let waiting: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| left[i] > 0 && cars[i].n > t)
            .collect();
        if waiting.is_empty() {
            return out;
        }
        let (mut who, mut load) = (Vec::new(), 0);
        let limit_w = limit.at(t);
        for &i in &waiting {
            if load + cars[i].watts <= limit_w {
                load += cars[i].watts;
                who.push(i);
            }
        }
        // the set stays until a member is done, a waiting deadline passes
        // or the reserved power changes
        let d = who
            .iter()
            .map(|&i| left[i])
            .chain(waiting.iter().map(|&i| cars[i].n - t))
            .chain(limit.next_edge(t).map(|e| e - t))
            .min()
            .unwrap_or(1);
        for &i in &who {
            left[i] -= d;
        }
        if !who.is_empty() {
            out.push((t, t + d, who, load));
        }
        t += d;
    }
}

fn segments(
    cars: &[Car],
    pieces: &[Piece],
    forced: &[(u32, u32, Vec<usize>, i64)],
    rest: &[i64],
    n: u32,
    limit: &Limit,
) -> Vec<Segment> {
    let mut cuts: Vec<u32> = vec![0, n];
    cuts.extend(cars.iter().map(|c| c.n));
    cuts.extend(limit.steps.iter().map(|s| s.0).filter(|&e| e < n));
    cuts.extend(pieces.iter().map(|p| p.start));
    cuts.extend(forced.iter().flat_map(|f| [f.0, f.1]));
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len());
    let (mut pi, mut fi) = (0, 0);
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b > n {
            break;
        }
        while pieces[pi].end() <= a {
            pi += 1;
        }
        while fi < forced.len() && forced[fi].1 <= a {
            fi += 1;
        }
        let (busy, load): (&[usize], i64) = match forced.get(fi) {
            Some(f) if f.0 <= a => (&f.2, f.3),
            _ => (&[], 0),
        };
        let spare = limit.at(a) - load;
        let pool: Vec<usize> = (0..cars.len())
            .filter(|&i| {
                rest[i] > 0 && cars[i].n >= b && cars[i].watts <= spare && !busy.contains(&i)
            })
            .collect();
        let mut w: Vec<i64> = pool.iter().map(|&i| cars[i].watts).collect();
        w.sort_unstable();
        let fits = |it: &mut dyn Iterator<Item = &i64>| {
            let mut sum = 0;
            it.take_while(|&&x| {
                sum += x;
                sum <= spare
            })
            .count() as i64
        };
        let k_max = fits(&mut w.iter());
        let k_safe = fits(&mut w.iter().rev());
        out.push(Segment {
            start: a,
            len: b - a,
            c: quantise(pieces[pi].price),
            pool,
            k_safe,
            k_max,
            spare,
        });
    }
    out
}

/// Serves the vehicles in priority order (a lexicographic maximum), then
/// finds the cheapest flow serving exactly those amounts, with at most
/// `k(segment)` vehicles per minute.
fn network(
    cars: &[Car],
    segments: &[Segment],
    order: &[usize],
    rest: &[i64],
    later: bool,
    unit: Unit,
) -> Flow {
    let v = cars.len();
    let sink = v + segments.len();
    let source = sink + 1;
    // what one unit of flow is: a vehicle-minute, or a watt-minute
    let scale = |i: usize| match unit {
        Unit::Minutes(_) => 1,
        Unit::Energy => cars[i].watts,
    };
    let build = |g: &mut Graph| {
        let mut edges = Vec::new();
        for (s, seg) in segments.iter().enumerate() {
            let m = i64::from(seg.len);
            let cap = match unit {
                Unit::Minutes(k) => k(seg) * m,
                Unit::Energy => seg.spare * m,
            };
            if cap == 0 || seg.pool.is_empty() {
                continue;
            }
            let tie = if later {
                (segments.len() - 1 - s) as i128
            } else {
                s as i128
            };
            for &i in &seg.pool {
                let per_unit = i128::from(seg.c) * i128::from(cars[i].watts / scale(i));
                let w = (per_unit << TIE_BITS) + tie;
                edges.push((g.add(i, v + s, m * scale(i), w), i, s));
            }
            g.add(v + s, sink, cap, 0);
        }
        edges
    };
    // 1: the lexicographic maximum of served minutes in priority order
    let mut g = Graph::new(source + 1);
    build(&mut g);
    let mut served = vec![0i64; v];
    for &i in order {
        if rest[i] > 0 {
            served[i] = g.max_flow(i, sink, rest[i] * scale(i), source, None);
        }
    }
    // 2: the cheapest flow serving exactly those amounts
    let mut g = Graph::new(source + 1);
    let edges = build(&mut g);
    for (i, &s) in served.iter().enumerate() {
        if s > 0 {
            g.add(source, i, s, 0);
        }
    }
    // shortest distances of the initial (acyclic) network as potentials
    let mut pot = vec![0i128; source + 1];
    let mut seg_min = vec![None::<i128>; segments.len()];
    for &(e, _, s) in &edges {
        let w = g.cost_of(e);
        seg_min[s] = Some(seg_min[s].map_or(w, |m: i128| m.min(w)));
    }
    for (s, m) in seg_min.iter().enumerate() {
        pot[v + s] = m.unwrap_or(0);
    }
    pot[sink] = seg_min.iter().flatten().copied().min().unwrap_or(0);
    let want: i64 = served.iter().sum();
    let sent = g.min_cost_flow(source, sink, want, &mut pot);
    debug_assert_eq!(sent, want, "the served amounts were shown feasible");
    let mut x = Vec::new();
    let mut key = 0i128;
    for &(e, i, s) in &edges {
        let f = g.flow(e);
        if f > 0 {
            x.push((i, s, f));
            key += i128::from(segments[s].c) * i128::from(cars[i].watts / scale(i)) * i128::from(f);
        }
    }
    // served in minutes: a fluid relaxation may serve a part of a minute
    let served = served
        .iter()
        .enumerate()
        .map(|(i, &f)| if f % scale(i) == 0 { f / scale(i) } else { -1 })
        .collect();
    Flow {
        served,
        x,
        key,
        unit,
    }
}

/// Lays the minutes of each segment out on `k_safe` rows by McNaughton's
/// wrap-around rule: no vehicle twice at one minute, at most `k_safe`
/// vehicles at any minute. With `later`, each segment is mirrored so its
/// idle minutes come first.
fn layout(
    segments: &[Segment],
    x: &[(usize, usize, i64)],
    later: bool,
    minutes: &mut [Vec<(u32, u32)>],
) {
    let mut by_seg: Vec<Vec<(usize, i64)>> = vec![Vec::new(); segments.len()];
    for &(i, s, f) in x {
        by_seg[s].push((i, f));
    }
    for (s, list) in by_seg.iter_mut().enumerate() {
        let m = i64::from(segments[s].len);
        // whole-segment vehicles first: each gets a row of its own
        list.sort_by_key(|&(i, f)| (f != m, i));
        let mut pos = 0i64;
        for &(i, f) in list.iter() {
            let (mut a, end) = (pos, pos + f);
            while a < end {
                let row = a / m;
                let row_end = end.min((row + 1) * m);
                let (lo, hi) = (a - row * m, row_end - row * m);
                let (lo, hi) = if later { (m - hi, m - lo) } else { (lo, hi) };
                let base = segments[s].start;
                minutes[i].push((base + lo as u32, base + hi as u32));
                a = row_end;
            }
            pos = end;
        }
    }
}

/// Improves a plan outside the exact domain minute by minute, vehicles in
/// priority order, twice over: first each vehicle takes the cheapest
/// minutes where it still fits until it has what it needs, then moves its
/// dearest minute to a cheaper one where it fits while that saves. The
/// min-SoC minutes stay. Returns the minutes served beyond the min-SoC
/// schedule per vehicle and the exact cost of those minutes.
#[allow(clippy::too_many_arguments)]
fn improve(
    cars: &[Car],
    segments: &[Segment],
    forced: &[(u32, u32, Vec<usize>, i64)],
    order: &[usize],
    later: bool,
    limit: &Limit,
    n: u32,
    minutes: &mut [Vec<(u32, u32)>],
) -> (Vec<i64>, i128) {
    let lim: Vec<i64> = (0..n).map(|t| limit.at(t)).collect();
    let n = n as usize;
    let mut price = vec![0i64; n];
    for seg in segments {
        price[seg.start as usize..(seg.start + seg.len) as usize].fill(seg.c);
    }
    // cheapest first; on equal price the preferred end of the horizon
    let mut by_price: Vec<u32> = (0..n as u32).collect();
    by_price.sort_by_key(|&t| (price[t as usize], if later { n as u32 - t } else { t }));
    let mut load = vec![0i64; n];
    let mut on: Vec<Vec<bool>> = vec![vec![false; n]; cars.len()];
    let mut fixed: Vec<Vec<bool>> = vec![vec![false; n]; cars.len()];
    for &(a, b, ref who, _) in forced {
        for &i in who {
            fixed[i][a as usize..b as usize].fill(true);
        }
    }
    for (i, runs) in minutes.iter().enumerate() {
        for &(a, b) in runs {
            for t in a as usize..b as usize {
                on[i][t] = true;
                load[t] += cars[i].watts;
            }
        }
    }
    for _ in 0..2 {
        for &i in order {
            let (c, w) = (&cars[i], cars[i].watts);
            let mut count = on[i].iter().filter(|&&x| x).count() as u32;
            let mut free = by_price
                .iter()
                .map(|&t| t as usize)
                .filter(|&t| t < c.n as usize);
            let mut dear: Vec<usize> = (0..c.n as usize)
                .filter(|&t| on[i][t] && !fixed[i][t])
                .collect();
            // dearest last, so pop() takes it
            dear.sort_by_key(|&t| (price[t], if later { n - t } else { t }));
            let fits =
                |t: usize, on: &[Vec<bool>], load: &[i64]| !on[i][t] && load[t] + w <= lim[t];
            while count < c.need {
                let Some(t) = free.by_ref().find(|&t| fits(t, &on, &load)) else {
                    break;
                };
                on[i][t] = true;
                load[t] += w;
                count += 1;
            }
            while let Some(&e) = dear.last() {
                let Some(t) = free.by_ref().find(|&t| fits(t, &on, &load)) else {
                    break;
                };
                if price[t] >= price[e] {
                    break;
                }
                dear.pop();
                on[i][e] = false;
                load[e] -= w;
                on[i][t] = true;
                load[t] += w;
            }
        }
    }
    let mut served = vec![0i64; cars.len()];
    let mut key = 0i128;
    for (i, runs) in minutes.iter_mut().enumerate() {
        runs.clear();
        let mut t = 0;
        while t < n {
            if on[i][t] {
                let a = t;
                while t < n && on[i][t] {
                    if !fixed[i][t] {
                        served[i] += 1;
                        key += i128::from(price[t]) * i128::from(cars[i].watts);
                    }
                    t += 1;
                }
                runs.push((a as u32, t as u32));
            } else {
                t += 1;
            }
        }
    }
    (served, key)
}

/// The replanning of single vehicles against the others, on this plan's
/// prices, limit and min-SoC schedule.
fn enforcer<'a>(
    cars: &'a [Car],
    pieces: &[Piece],
    forced: &[(u32, u32, Vec<usize>, i64)],
    order: &'a [usize],
    later: bool,
    limit: &Limit,
    n: u32,
) -> Enforcer<'a> {
    let mut price = vec![0i64; n as usize];
    for p in pieces {
        price[p.start as usize..p.end() as usize].fill(quantise(p.price));
    }
    let mut fixed = vec![vec![false; n as usize]; cars.len()];
    let mut fixed_runs = vec![Vec::new(); cars.len()];
    for &(a, b, ref who, _) in forced {
        for &i in who {
            fixed[i][a as usize..b as usize].fill(true);
            fixed_runs[i].push((a, b));
        }
    }
    for r in &mut fixed_runs {
        *r = merge(r);
    }
    Enforcer {
        cars,
        price,
        lim: (0..n).map(|t| limit.at(t)).collect(),
        fixed,
        fixed_runs,
        order,
        later,
        planner: Planner::new(),
        segs: Vec::new(),
    }
}

/// The better of two plans that keep the rules: fewer vehicles whose
/// rules are broken, then more minutes in priority order, then cheaper.
fn better(order: &[usize], a: Joint, b: Joint) -> Joint {
    let rank = |j: &Joint| {
        let broken = j.broken.iter().filter(|b| b.is_some()).count();
        let minutes: Vec<std::cmp::Reverse<u32>> = order
            .iter()
            .map(|&i| std::cmp::Reverse(j.parts[i].minutes))
            .collect();
        let key: i128 = j.parts.iter().map(|p| p.key).sum();
        (broken, minutes, key)
    };
    if rank(&b) < rank(&a) {
        b
    } else {
        a
    }
}

/// Cost of a relaxation's flow beyond the min-SoC schedule.
fn relaxed_cost(cars: &[Car], pieces: &[Piece], segments: &[Segment], r: &Flow) -> f64 {
    r.x.iter()
        .map(|&(i, s, x)| {
            let kwh = match r.unit {
                Unit::Minutes(_) => cars[i].power * x as f64 / 60.0,
                Unit::Energy => x as f64 / 60_000.0,
            };
            price_at(pieces, segments[s].start) * kwh
        })
        .sum()
}

/// Cost of the min-SoC schedule.
fn forced_cost(cars: &[Car], pieces: &[Piece], forced: &[(u32, u32, Vec<usize>, i64)]) -> f64 {
    forced
        .iter()
        .flat_map(|(a, b, who, _)| who.iter().map(move |&i| (*a, *b, i)))
        .map(|(a, b, i)| cost_of(pieces, a, b, cars[i].power).0)
        .sum()
}

/// The power the plan may draw at each minute: the site limit less the
/// power reserved for vehicles outside the plan, piecewise constant.
#[derive(Debug)]
struct Limit {
    /// `(first minute, watts)`, sorted, from minute 0; each holds until
    /// the next.
    steps: Vec<(u32, i64)>,
}

impl Limit {
    /// The limit `limit_w` less `reserved`, on the minutes from `t0` (a
    /// reserved step takes every minute it touches) up to `n`.
    fn new(limit_w: i64, reserved: &[LoadStep], t0: i64, n: u32) -> Limit {
        let mut events: Vec<(u32, i64)> = Vec::with_capacity(2 * reserved.len());
        for r in reserved {
            let first = r.start.timestamp().div_euclid(60) - t0;
            let last = ceil_minute(r.end) - t0;
            let (a, b) = (first.clamp(0, i64::from(n)), last.clamp(0, i64::from(n)));
            let w = (r.kw * 1000.0 - 1e-6).ceil().max(0.0) as i64;
            if a < b && w > 0 {
                events.push((a as u32, w));
                events.push((b as u32, -w));
            }
        }
        events.sort_unstable();
        let mut steps = vec![(0u32, limit_w)];
        let mut used = 0i64;
        let mut i = 0;
        while i < events.len() {
            let t = events[i].0;
            while i < events.len() && events[i].0 == t {
                used += events[i].1;
                i += 1;
            }
            let w = (limit_w - used).max(0);
            match steps.last_mut() {
                Some(last) if last.0 == t => last.1 = w,
                Some(last) if last.1 == w => {}
                _ => steps.push((t, w)),
            }
        }
        steps.dedup_by(|b, a| a.1 == b.1);
        Limit { steps }
    }

    /// The power the plan may draw at minute `t`, watts.
    fn at(&self, t: u32) -> i64 {
        let i = self.steps.partition_point(|s| s.0 <= t);
        self.steps[i.max(1) - 1].1
    }

    /// The first minute after `t` where the limit changes.
    fn next_edge(&self, t: u32) -> Option<u32> {
        let i = self.steps.partition_point(|s| s.0 <= t);
        self.steps.get(i).map(|s| s.0)
    }
}

/// Sorts and joins touching intervals.
fn merge(v: &mut [(u32, u32)]) -> Vec<(u32, u32)> {
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for &(a, b) in v.iter() {
        match out.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

fn price_at(pieces: &[Piece], minute: u32) -> f64 {
    let i = pieces.partition_point(|p| p.end() <= minute);
    pieces.get(i).map_or(0.0, |p| p.price)
}

/// Cost of charging minutes `[a, b)` at `power`, and whether a forecast
/// prices any of them.
fn cost_of(pieces: &[Piece], a: u32, b: u32, power: f64) -> (f64, bool) {
    let mut cost = 0.0;
    let mut tentative = false;
    let first = pieces.partition_point(|p| p.end() <= a);
    for p in &pieces[first..] {
        if p.start >= b {
            break;
        }
        let lo = a.max(p.start);
        let hi = b.min(p.end());
        cost += p.price * power * f64::from(hi - lo) / 60.0;
        tentative |= p.tentative;
    }
    (cost, tentative)
}

/// Names every block rule the vehicle's part of the plan breaks.
fn block_rules(v: &SiteVehicle, runs: &[(u32, u32)], warn: &mut Vec<String>) {
    if let Some(k) = v.max_blocks {
        if runs.len() > k as usize {
            warn.push(format!(
                "the joint plan has {} blocks, more than max_blocks {k}",
                runs.len()
            ));
        }
    }
    if let Some(m) = v.min_block_minutes {
        let short = runs[..runs.len().saturating_sub(1)]
            .iter()
            .filter(|r| r.1 - r.0 < m)
            .count();
        if short > 0 {
            warn.push(format!(
                "the joint plan has {short} blocks shorter than min_block_minutes {m}"
            ));
        }
    }
    if let Some(p) = v.min_pause_minutes {
        let short = runs.windows(2).filter(|w| w[1].0 - w[0].1 < p).count();
        if short > 0 {
            warn.push(format!(
                "the joint plan has {short} pauses shorter than min_pause_minutes {p}"
            ));
        }
    }
}

/// Each vehicle's blocks as minute offsets from the planning start.
fn vehicles_minutes(vehicles: &[SiteVehiclePlan], t0: i64) -> Vec<Vec<(u32, u32)>> {
    vehicles
        .iter()
        .map(|v| {
            v.blocks
                .iter()
                .map(|b| {
                    let m = |t: chrono::DateTime<chrono::Utc>| (t.timestamp() / 60 - t0) as u32;
                    (m(b.start), m(b.end))
                })
                .collect()
        })
        .collect()
}

/// The summed load as steps, from every vehicle's blocks.
fn load_steps(cars: &[Car], runs: &[Vec<(u32, u32)>], t0: i64) -> Vec<LoadStep> {
    let mut events: Vec<(u32, i64)> = Vec::new();
    for (c, r) in cars.iter().zip(runs) {
        for &(a, b) in r {
            events.push((a, c.watts));
            events.push((b, -c.watts));
        }
    }
    events.sort_unstable();
    let mut out: Vec<LoadStep> = Vec::new();
    let mut load = 0i64;
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        while i < events.len() && events[i].0 == t {
            load += events[i].1;
            i += 1;
        }
        let Some(&(next, _)) = events.get(i) else {
            break;
        };
        if load > 0 && next > t {
            out.push(LoadStep {
                start: minute_time(t0 + i64::from(t)),
                end: minute_time(t0 + i64::from(next)),
                kw: load as f64 / 1000.0,
            });
        }
    }
    out
}
