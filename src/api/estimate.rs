//! How long until a job is done, from the recorded stages of recent
//! completed jobs made the same way (kind, source, model), never from a
//! constant unless there is no history at all (and then it says so).
//!
//! A running job in stage S for `e` seconds is compared with each recent job
//! that also went through S and stayed in it longer than `e` (the ones that
//! had not finished S by then either): what those jobs still had to run from
//! that point (the rest of S and every later stage) is the sample whose
//! 10th, 50th and 90th percentiles are the answer. The answer narrows as
//! stages pass, and a slow stage makes it longer rather than saying 0. When
//! fewer than ESTIMATE_MIN_JOBS stayed in S as long, the estimate says
//! `overdue` and comes from the slowest of them: how far they ran past the
//! slowest but those, from now, and their later stages.
//!
//! The levels tried, first with enough jobs (ESTIMATE_MIN_JOBS) wins:
//! kind + source + model, then kind + source, then a configured default,
//! when the worker's route is known; kind, then the kind's run times
//! (jobs recorded before stage timings existed), then the default, when it
//! is not. Jobs of another source never stand in for the job's own: an LLM
//! job is not estimated from millisecond offline ones.
//!
//! Room for day-by-day generation: each day is a stage of its own name
//! (`generating_day_3`), so the days left are the later stages and need no
//! other rule here.

use serde::Serialize;
use sqlx::PgPool;

use crate::queue::store::{self, RunningState};
pub use crate::queue::store::{Position, Route};

/// Which history an estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    KindSourceModel,
    KindSource,
    Kind,
    /// Whole run times of the kind (no stage timings recorded).
    KindRunTimes,
    /// ESTIMATE_DEFAULT_SECONDS: no history.
    Default,
}

/// What the estimates read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimateSettings {
    /// Recent completed jobs per level.
    pub sample: i32,
    /// Only jobs completed within this many days.
    pub window_days: f64,
    /// Fewer jobs than this at a level: the next level is tried.
    pub min_jobs: usize,
    /// A whole job's median when there is no history (p10 half, p90 double).
    pub default_seconds: f64,
}

impl Default for EstimateSettings {
    fn default() -> Self {
        EstimateSettings {
            sample: 200,
            window_days: 30.0,
            min_jobs: 5,
            default_seconds: 60.0,
        }
    }
}

/// Where a job stands in its run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress<'a> {
    /// The stage it is in and for how long, if it has reported one.
    pub stage: Option<(&'a str, f64)>,
    /// Seconds since its attempt was claimed (0 for a pending job).
    pub in_attempt: f64,
}

impl Progress<'_> {
    pub const NOT_STARTED: Progress<'static> = Progress {
        stage: None,
        in_attempt: 0.0,
    };
}

/// Seconds remaining, exact, with where they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub based_on_jobs: usize,
    pub basis: Basis,
    pub route: Option<Route>,
    pub overdue: bool,
}

/// `{p10, p50, p90}` seconds remaining: [p10, p90] is the 80 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub p10: u64,
    pub p50: u64,
    pub p90: u64,
}

/// The estimate the status of a job carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Likely seconds until the plan is ready (the median case).
    pub seconds_remaining: u64,
    /// Seconds within which nine jobs in ten like it have been ready.
    pub p90_seconds_remaining: u64,
    pub range: Range,
    /// Completed jobs the estimate is computed from (0: the default).
    pub based_on_jobs: i32,
    pub basis: Basis,
    /// The route estimated for ("llm"/"offline", the model), when known.
    pub source: Option<String>,
    pub model: Option<String>,
    /// Fewer than ESTIMATE_MIN_JOBS jobs like it stayed in its stage this
    /// long: the estimate comes from the slowest of them.
    pub overdue: bool,
}

impl From<Forecast> for Estimate {
    fn from(f: Forecast) -> Self {
        let range = Range {
            p10: secs(f.p10),
            p50: secs(f.p50),
            p90: secs(f.p90),
        };
        let (source, model) = match f.route {
            Some(r) => (
                Some(r.source).filter(|s| !s.is_empty()),
                Some(r.model).filter(|m| !m.is_empty()),
            ),
            None => (None, None),
        };
        Estimate {
            seconds_remaining: range.p50,
            p90_seconds_remaining: range.p90,
            range,
            based_on_jobs: i32::try_from(f.based_on_jobs).unwrap_or(i32::MAX),
            basis: f.basis,
            source,
            model,
            overdue: f.overdue,
        }
    }
}

/// The estimate of a processing job, None when it is no longer processing.
pub async fn for_running_job(
    db: &PgPool,
    job_id: uuid::Uuid,
    kind: &str,
    s: &EstimateSettings,
) -> sqlx::Result<Option<Forecast>> {
    let Some(state) = store::running_state(db, job_id).await? else {
        return Ok(None);
    };
    let RunningState {
        progress,
        in_stage_seconds,
        in_attempt_seconds,
        source,
        model,
    } = state;
    let route = source.map(|source| Route {
        source,
        model: model.unwrap_or_default(),
    });
    let at = Progress {
        stage: progress.as_deref().zip(in_stage_seconds),
        in_attempt: in_attempt_seconds,
    };
    Ok(Some(forecast(db, kind, route, at, s).await?))
}

/// The estimate of a pending job at `position` (see [`queued`]), its run
/// made the way the live workers make its kind.
pub async fn for_pending_job(
    db: &PgPool,
    kind: &str,
    position: Position,
    s: &EstimateSettings,
) -> sqlx::Result<Forecast> {
    let route = store::likely_route(db, kind).await?;
    let run = forecast(db, kind, route, Progress::NOT_STARTED, s).await?;
    let running = store::running_count(db, kind).await?;
    Ok(queued(run, position, running))
}

/// The first level with enough history, else the default.
pub async fn forecast(
    db: &PgPool,
    kind: &str,
    route: Option<Route>,
    at: Progress<'_>,
    s: &EstimateSettings,
) -> sqlx::Result<Forecast> {
    let r = route.clone();
    let levels: Vec<(Basis, Option<&str>, Option<&str>)> = match &r {
        Some(r) if r.model.is_empty() => vec![(Basis::KindSourceModel, Some(&r.source), Some(""))],
        Some(r) => vec![
            (Basis::KindSourceModel, Some(&r.source), Some(&r.model)),
            (Basis::KindSource, Some(&r.source), None),
        ],
        None => vec![(Basis::Kind, None, None)],
    };
    for (basis, source, model) in levels {
        let rows =
            store::recent_stage_timings(db, kind, source, model, s.sample, s.window_days).await?;
        let history: Vec<Vec<(String, f64)>> = rows.into_iter().map(|r| r.stages.0).collect();
        if let Some(f) = from_history(&history, at, s.min_jobs, basis) {
            return Ok(Forecast {
                route: route.clone(),
                ..f
            });
        }
    }
    if route.is_none() {
        let runs = store::recent_run_seconds(db, kind, s.sample, s.window_days).await?;
        let history: Vec<Vec<(String, f64)>> =
            runs.into_iter().map(|t| vec![(String::new(), t)]).collect();
        // Run times know no stages: only the time since the claim counts.
        let whole = Progress { stage: None, ..at };
        if let Some(f) = from_history(&history, whole, s.min_jobs, Basis::KindRunTimes) {
            return Ok(f);
        }
    }
    Ok(Forecast {
        route,
        ..default_forecast(at, s.default_seconds)
    })
}

/// What the jobs of `history` (each its stages in order) still had to run
/// when they stood where `at` says; None with fewer than `min_jobs` alike.
pub fn from_history(
    history: &[Vec<(String, f64)>],
    at: Progress<'_>,
    min_jobs: usize,
    basis: Basis,
) -> Option<Forecast> {
    let min_jobs = min_jobs.max(1);
    // For each job alike: (seconds of the part it is in, seconds after it).
    let parts: Vec<(f64, f64)> = match at.stage {
        Some((stage, _)) => history
            .iter()
            .filter_map(|h| {
                let i = h.iter().position(|(name, _)| name == stage)?;
                Some((h[i].1, h[i + 1..].iter().map(|(_, d)| d).sum()))
            })
            .collect(),
        None => history
            .iter()
            .filter(|h| !h.is_empty())
            .map(|h| (h.iter().map(|(_, d)| d).sum(), 0.0))
            .collect(),
    };
    if parts.len() < min_jobs {
        return None;
    }
    let elapsed = at.stage.map_or(at.in_attempt, |(_, e)| e);
    // The jobs that were still in this part after as long as this one.
    let mut left: Vec<f64> = parts
        .iter()
        .filter(|(part, _)| *part > elapsed)
        .map(|(part, after)| part - elapsed + after)
        .collect();
    let k = min_jobs.min(parts.len());
    let overdue = left.len() < k;
    if overdue {
        // Fewer than k jobs lasted this long: nothing measured says how
        // much longer this one takes. The k slowest say how far the
        // slowest ran past the k-th slowest; that excess, from now, and
        // their later stages are the sample (residual life beyond a high
        // threshold, which an LLM's long tail keeps about the same).
        let mut slowest = parts.clone();
        slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
        slowest.truncate(k);
        let threshold = slowest.last().map_or(0.0, |(part, _)| *part);
        left = slowest
            .iter()
            .map(|(part, after)| part - threshold + after)
            .collect();
    }
    left.sort_by(f64::total_cmp);
    let (p10, p90) = prediction_range(&left);
    Some(Forecast {
        p10,
        p50: quantile(&left, 0.5),
        p90,
        based_on_jobs: left.len(),
        basis,
        route: None,
        overdue,
    })
}

/// No history: a whole job takes `seconds` at the median, half at p10,
/// double at p90, less what has run already.
fn default_forecast(at: Progress<'_>, seconds: f64) -> Forecast {
    let e = at.in_attempt;
    let left = |total: f64| (total - e).max(0.0);
    Forecast {
        p10: left(seconds * 0.5),
        p50: left(seconds),
        p90: left(seconds * 2.0),
        based_on_jobs: 0,
        basis: Basis::Default,
        route: None,
        overdue: e > seconds * 2.0,
    }
}

/// A run of a job at `p` in the queue with `running` jobs of its kind in
/// the workers' slots: its wait for `run_after`; then, unless a slot is
/// free for it, the completions it waits for (the jobs ahead of it beyond
/// the free slots, and its own turn), at one run per slot each; then its
/// own run.
pub fn queued(run: Forecast, p: Position, running: i32) -> Forecast {
    let slots = p.worker_slots.max(1);
    let free = (slots - running).max(0);
    let completions = f64::from((p.ahead + 1 - free).max(0));
    let total = |q: f64| p.due_in_seconds + q * completions / f64::from(slots) + q;
    Forecast {
        p10: total(run.p10),
        p50: total(run.p50),
        p90: total(run.p90),
        ..run
    }
}

/// The range this job's time falls in at least 80 % of the time, if it is
/// like the `n` jobs sampled: the order statistics of ranks
/// ⌊0.1 (n+1)⌋ and ⌈0.9 (n+1)⌉ (a distribution-free prediction interval,
/// which covers a new sample with probability (hi − lo) / (n+1)).
/// Interpolated 10th and 90th percentiles of the sample would cover only
/// about 80 % × (n−1)/(n+1): 75 % with 30 jobs.
fn prediction_range(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let m = (n + 1) as f64;
    // 1-based ranks, clamped to the sample.
    let lo = ((0.1 * m).floor() as usize).clamp(1, n);
    let hi = ((0.9 * m).ceil() as usize).clamp(1, n);
    (sorted[lo - 1], sorted[hi - 1])
}

/// Linear interpolation between the closest ranks (PostgreSQL's
/// percentile_cont) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

fn secs(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        s.ceil() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten jobs: structure 10 s, details 10, 20, ..., 100 s, saving 1 s.
    fn history() -> Vec<Vec<(String, f64)>> {
        (1..=10)
            .map(|i| {
                vec![
                    ("generating_structure".to_owned(), 10.0),
                    ("generating_details".to_owned(), f64::from(i) * 10.0),
                    ("saving".to_owned(), 1.0),
                ]
            })
            .collect()
    }

    fn at(stage: &str, e: f64) -> Progress<'_> {
        Progress {
            stage: Some((stage, e)),
            in_attempt: 0.0,
        }
    }

    #[test]
    fn a_job_not_started_takes_what_whole_jobs_took() {
        let f = from_history(&history(), Progress::NOT_STARTED, 5, Basis::Kind).unwrap();
        // The range is the prediction interval of ten jobs: the fastest and
        // the slowest (ranks 1 and 10 of 11 gaps).
        assert_eq!((f.p10, f.p50, f.p90), (21.0, 66.0, 111.0));
        assert_eq!(f.based_on_jobs, 10);
        assert!(!f.overdue);
    }

    #[test]
    fn the_estimate_narrows_as_stages_pass() {
        let start = from_history(&history(), at("generating_structure", 0.0), 5, Basis::Kind);
        let details = from_history(&history(), at("generating_details", 0.0), 5, Basis::Kind);
        let saving = from_history(&history(), at("saving", 0.0), 5, Basis::Kind);
        let (start, details, saving) = (start.unwrap(), details.unwrap(), saving.unwrap());
        assert!(start.p50 > details.p50 && details.p50 > saving.p50);
        assert_eq!((saving.p10, saving.p50, saving.p90), (1.0, 1.0, 1.0));
        assert_eq!(details.p50, 56.0);
    }

    #[test]
    fn a_job_long_in_its_stage_is_compared_with_the_jobs_that_were_too() {
        // 45 s into details: only the jobs whose details took 50..100 s
        // were still there; they had 5..55 s of details and 1 s left.
        let f = from_history(&history(), at("generating_details", 45.0), 5, Basis::Kind).unwrap();
        assert_eq!(f.based_on_jobs, 6);
        assert_eq!((f.p10, f.p50, f.p90), (6.0, 31.0, 56.0));
        assert!(!f.overdue);
    }

    #[test]
    fn past_nearly_every_job_it_is_overdue_and_the_slowest_jobs_excess_counts() {
        let f = from_history(&history(), at("generating_details", 95.0), 5, Basis::Kind).unwrap();
        assert!(f.overdue, "no 5 jobs took longer than 95 s");
        // The 5 slowest took 60..100 s: 0..40 s past the 5th, then 1 s.
        assert_eq!((f.p10, f.p50, f.p90), (1.0, 21.0, 41.0));
        assert_eq!(f.based_on_jobs, 5);
    }

    #[test]
    fn a_stage_no_recent_job_went_through_has_no_estimate_at_this_level() {
        assert!(from_history(&history(), at("generating_offline", 1.0), 5, Basis::Kind).is_none());
        assert!(from_history(&history()[..4], Progress::NOT_STARTED, 5, Basis::Kind).is_none());
    }

    #[test]
    fn a_pending_job_waits_for_a_slot_only_when_none_is_free() {
        let run = from_history(&history(), Progress::NOT_STARTED, 5, Basis::Kind).unwrap();
        let first = Position {
            ahead: 0,
            worker_slots: 4,
            due_in_seconds: 0.0,
        };
        assert_eq!(queued(run.clone(), first, 0).p50, 66.0);
        // Every slot busy: one completion first, a quarter of a run.
        assert_eq!(queued(run.clone(), first, 4).p50, 66.0 + 16.5);
        // Fifth in line with all four slots free: the first four take them.
        let fifth = Position { ahead: 4, ..first };
        assert_eq!(queued(run.clone(), fifth, 0).p90, 111.0 + 27.75);
        let no_worker = Position {
            ahead: 1,
            worker_slots: 0,
            due_in_seconds: 2.5,
        };
        assert_eq!(queued(run, no_worker, 0).p50, 134.5);
    }

    #[test]
    fn without_history_the_default_says_so_and_counts_down() {
        let f = default_forecast(
            Progress {
                stage: None,
                in_attempt: 20.0,
            },
            60.0,
        );
        assert_eq!((f.p10, f.p50, f.p90), (10.0, 40.0, 100.0));
        assert_eq!((f.basis, f.based_on_jobs), (Basis::Default, 0));
        let e = Estimate::from(f);
        assert_eq!(e.seconds_remaining, 40);
        assert_eq!(e.range.p90, 100);
    }

    #[test]
    fn the_range_holds_a_new_job_s_time_at_least_80_percent_of_the_time() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xe7a);
        let mut draw = || -> f64 { -rng.random_range(f64::EPSILON..1.0f64).ln() };
        for n in [20usize, 30, 60] {
            let trials = 4000;
            let mut inside = 0;
            for _ in 0..trials {
                let mut sample: Vec<f64> = (0..n).map(|_| draw()).collect();
                sample.sort_by(f64::total_cmp);
                let (lo, hi) = prediction_range(&sample);
                let next = draw();
                inside += usize::from(next >= lo && next <= hi);
            }
            let share = inside as f64 / trials as f64;
            assert!(share >= 0.79, "{n} jobs: {share}");
        }
        assert_eq!(prediction_range(&[]), (0.0, 0.0));
        assert_eq!(prediction_range(&[4.0]), (4.0, 4.0));
    }

    #[test]
    fn quantiles_interpolate_like_percentile_cont() {
        let v: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        assert_eq!(quantile(&v, 0.5), 55.0);
        assert_eq!(quantile(&v, 0.9), 91.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
