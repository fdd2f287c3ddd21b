//! How long until a job is done, from the real run times of the last
//! completed jobs of its kind (median and 90th percentile, kept in the
//! database by the jobs themselves), never from a constant.

use serde::Serialize;

pub use crate::queue::store::{Durations, Position};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Likely seconds until the plan is ready (the median case).
    pub seconds_remaining: u64,
    /// Seconds within which nine jobs in ten have been ready.
    pub p90_seconds_remaining: u64,
    /// Completed jobs the estimate is computed from.
    pub based_on_jobs: i32,
}

/// A pending job: its wait for `run_after`, then one run per round of the
/// workers' slots ahead of it, plus its own.
pub fn for_pending(d: Durations, p: Position) -> Option<Estimate> {
    let (p50, p90) = (d.p50_seconds?, d.p90_seconds?);
    let slots = f64::from(p.worker_slots.max(1));
    let rounds = ((f64::from(p.ahead) + 1.0) / slots).ceil();
    Some(Estimate {
        seconds_remaining: secs(p.due_in_seconds + p50 * rounds),
        p90_seconds_remaining: secs(p.due_in_seconds + p90 * rounds),
        based_on_jobs: d.samples,
    })
}

/// A running job that has run for `elapsed` seconds. Past the median the
/// median part says 0 and the 90th percentile still bounds the wait.
pub fn for_running(d: Durations, elapsed: f64) -> Option<Estimate> {
    let (p50, p90) = (d.p50_seconds?, d.p90_seconds?);
    let median = secs(p50 - elapsed);
    Some(Estimate {
        seconds_remaining: median,
        p90_seconds_remaining: secs(p90 - elapsed).max(median),
        based_on_jobs: d.samples,
    })
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

    const D: Durations = Durations {
        samples: 10,
        p50_seconds: Some(55.0),
        p90_seconds: Some(91.0),
    };

    #[test]
    fn a_pending_job_waits_a_run_per_round_of_slots_ahead_of_it() {
        let first = Position {
            ahead: 0,
            worker_slots: 4,
            due_in_seconds: 0.0,
        };
        assert_eq!(for_pending(D, first).unwrap().seconds_remaining, 55);
        let fifth = Position { ahead: 4, ..first };
        let e = for_pending(D, fifth).unwrap();
        assert_eq!((e.seconds_remaining, e.p90_seconds_remaining), (110, 182));
        let no_worker = Position {
            ahead: 1,
            worker_slots: 0,
            due_in_seconds: 2.5,
        };
        assert_eq!(for_pending(D, no_worker).unwrap().seconds_remaining, 113);
    }

    #[test]
    fn a_running_job_counts_down_and_never_goes_negative() {
        let e = for_running(D, 20.0).unwrap();
        assert_eq!((e.seconds_remaining, e.p90_seconds_remaining), (35, 71));
        let late = for_running(D, 200.0).unwrap();
        assert_eq!((late.seconds_remaining, late.p90_seconds_remaining), (0, 0));
    }

    #[test]
    fn no_history_means_no_estimate() {
        let none = Durations {
            samples: 0,
            p50_seconds: None,
            p90_seconds: None,
        };
        assert!(for_running(none, 1.0).is_none());
    }
}
