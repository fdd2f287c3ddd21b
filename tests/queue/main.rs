//! Integration tests of the job queue against real PostgreSQL: each test
//! gets a fresh migrated database from `#[sqlx::test]`.

#[path = "../support/mod.rs"]
mod support;

mod common;
mod economy;
mod faults;
mod handlers;
mod recovery;
mod retries;
mod review;
mod scale;
mod sql_api;
mod supabase;
mod wakeups;
