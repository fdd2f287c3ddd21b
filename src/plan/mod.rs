//! The plan domain: pure functions from a profile to a checked weekly plan.
//! No database and no HTTP here.
//!
//! - `profile`     parse and validate a job's `profile_snapshot`
//! - `nutrition`   the one implementation of calorie and macro targets

pub mod nutrition;
pub mod profile;

pub use nutrition::{Targets, targets};
pub use profile::{Profile, ProfileError, parse_profile};
