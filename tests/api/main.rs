//! The `/v1` API against real PostgreSQL: auth, ownership, creation and
//! its limits, status and estimates, cancel, and live events, each
//! checking the answer and the rows.

#[path = "../support/mod.rs"]
mod support;
#[path = "../support/unsplash.rs"]
mod unsplash;

mod auth;
mod cli;
mod common;
mod connections;
mod economy;
mod estimates;
mod events;
mod history;
mod jobs;
mod meal_plans;
mod openapi;
mod process;
mod schedules;
mod web;
