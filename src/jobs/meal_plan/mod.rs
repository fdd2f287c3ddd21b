//! The `meal_plan` kind: profile -> targets (the active weekly plan's, or
//! computed) -> the week's dishes (a call per day in parallel, each day shown
//! as it lands; one call for the week; or the offline planner) ->
//! portions solved -> validator (one repair round) -> saved in the
//! transaction that completes the job, which also queues the photos.
//! `meal_images` finds the photos afterwards (a plan never waits for them);
//! `meal_swap` replaces one meal and saves the next version.
//!
//! - `handler` the meal_plan job: targets, generation, save
//! - `parallel` the days written in parallel, each checked and repaired alone
//! - `save`    the plan, the photos' job and the completion in one transaction
//! - `images`  the meal_images job: Unsplash photos with attribution
//! - `swap`    the meal_swap job: one meal replaced
//! - `store`   every SQL statement on `meal_plans`

pub mod handler;
pub mod images;
pub mod parallel;
pub mod save;
pub mod store;
pub mod swap;

pub use handler::MealPlanHandler;

/// The kinds' names in `plan_job_kinds` and on job rows.
pub const KIND: &str = "meal_plan";
pub const IMAGES_KIND: &str = "meal_images";
pub const SWAP_KIND: &str = "meal_swap";

pub const STAGE_TARGETS: &str = "computing_targets";
pub const STAGE_MEALS: &str = "generating_meals";
pub const STAGE_OFFLINE: &str = "generating_offline";
pub const STAGE_VALIDATING: &str = "validating";
pub const STAGE_SAVING: &str = "saving";
