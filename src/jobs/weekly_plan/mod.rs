//! The `weekly_base_plan` job kind: profile -> targets -> plan (two LLM
//! stages, or the offline planner) -> fixer -> validator (one repair round)
//! -> saved in the transaction that completes the job.
//!
//! - `handler`  the job handler tying the steps together
//! - `generate` the LLM stages one after the other, the fixer, the validator and the repair round
//! - `parallel` the days written in parallel from a streamed structure, each shown as it lands
//! - `save`     the plan and the job's completion in one transaction
//! - `store`    every SQL statement on `weekly_base_plans`

pub mod generate;
pub mod handler;
pub mod parallel;
pub mod save;
pub mod store;
pub mod structure_cache;

pub use handler::{Layout, PlanHandler};

/// The kind's name in `plan_job_kinds` and on job rows.
pub const KIND: &str = "weekly_base_plan";
