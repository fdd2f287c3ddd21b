//! Meal-plan mode: offline meal plans over the nutrition bench's profile
//! matrix (with cuisines and prep limits mixed in) on one core, counting
//! plans per second and plans that pass every rule; then meal plans with
//! photos from a local Unsplash stand-in through the real `meal_plan` and
//! `meal_images` jobs: Unsplash calls per plan with a cold cache, then for
//! as many new users with a warm one.

use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::nutrition::matrix_profile;
use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::dev::mock_unsplash::MockUnsplash;
use crate::images::UnsplashSettings;
use crate::jobs::meal_plan::images::MealImagesHandler;
use crate::jobs::meal_plan::{IMAGES_KIND, KIND, MealPlanHandler};
use crate::plan::meal_plan::{offline, validate};
use crate::plan::{Profile, parse_profile, targets};
use crate::queue::Registry;
use crate::queue::events::JobEvents;

const CUISINE_SETS: &[&[&str]] = &[
    &[],
    &["indian"],
    &["asian", "italian"],
    &["mediterranean", "middle_eastern"],
    &["mexican", "american"],
];

/// A matrix profile with a meal plan's own fields.
fn meal_profile(i: usize, rng: &mut StdRng) -> Value {
    let mut v = matrix_profile(i, rng);
    v["cuisine_preferences"] = json!(CUISINE_SETS[i % CUISINE_SETS.len()]);
    if rng.random_bool(0.3) {
        v["max_prep_minutes"] = json!(20);
    }
    v
}

pub async fn run(
    scratch: Option<&Scratch>,
    profiles: usize,
    image_plans: usize,
    seed: u64,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let people: Vec<Profile> = (0..profiles)
        .map(|i| parse_profile(&meal_profile(i, &mut rng)))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut broken: Vec<String> = Vec::new();
    for p in &people {
        let t = targets(p);
        let plan = offline::generate(p, &t);
        if let Some(v) = validate(&plan, p, &t).first() {
            broken.push(format!(
                "{:?} {:?} {:?}: {v}",
                p.dietary_preference, p.allergies, p.cuisine_preferences
            ));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let valid = 1.0 - broken.len() as f64 / profiles.max(1) as f64;
    let photos = match scratch {
        Some(s) if image_plans > 0 => Some(photo_calls(s, image_plans, seed).await?),
        _ => None,
    };
    let out = json!({
        "profiles": profiles, "seed": seed,
        "offline_meal_plans_per_second": profiles as f64 / elapsed,
        "share_valid": valid, "broken": broken.iter().take(10).collect::<Vec<_>>(),
        "unsplash": photos,
    });
    if json_out {
        println!("{out}");
    } else {
        println!(
            "meals: {profiles} offline meal plans in {elapsed:.2} s = {:.1} plans/s; valid {:.1} %",
            profiles as f64 / elapsed,
            valid * 100.0
        );
        if let Some(p) = &photos {
            println!(
                "meals: Unsplash calls per plan: {:.2} with a cold cache, {:.2} with a warm one ({} plans each)",
                p["cold_calls_per_plan"].as_f64().unwrap_or(0.0),
                p["warm_calls_per_plan"].as_f64().unwrap_or(0.0),
                image_plans
            );
        }
        for b in broken.iter().take(10) {
            println!("  broken: {b}");
        }
    }
    if !broken.is_empty() {
        anyhow::bail!("bench: {} meal plans broke a rule", broken.len());
    }
    Ok(())
}

/// Two rounds of `n` meal plans for new users, photos and all; the
/// stand-in counts the searches of each round.
async fn photo_calls(scratch: &Scratch, n: usize, seed: u64) -> anyhow::Result<Value> {
    let mock = MockUnsplash::start().await?;
    let client = UnsplashSettings {
        unsplash_access_key: Some("bench-key".into()),
        unsplash_api_url: mock.base_url.clone(),
        ..UnsplashSettings::default()
    }
    .client()
    .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?
    .context("a key was given")?;
    let registry = Registry::new()
        .register(KIND, MealPlanHandler::new(None, false, true))
        .register(IMAGES_KIND, MealImagesHandler::new(client, 100_000));
    let settings = WorkerSettings {
        worker_id: Some("bench-meals".into()),
        max_concurrent_jobs: 32,
        ..WorkerSettings::default()
    };
    let worker = scratch.start_worker(registry, settings).await?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut rounds = Vec::new();
    for round in 0..2 {
        let before = mock.searches();
        let snapshots: Vec<Value> = (0..n)
            .map(|i| meal_profile(round * n + i, &mut rng))
            .collect();
        let mut events = JobEvents::open(&scratch.options).await?;
        for s in &snapshots {
            sqlx::query("select create_plan_job(gen_random_uuid(), $1, $2)")
                .bind(s)
                .bind(KIND)
                .execute(&scratch.pool)
                .await?;
        }
        let want = ((round + 1) * n) as i64;
        loop {
            let done: i64 =
                sqlx::query_scalar("select count(*) from meal_plans where images = 'complete'")
                    .fetch_one(&scratch.pool)
                    .await?;
            if done >= want {
                break;
            }
            events
                .next(Duration::from_secs(60))
                .await
                .context("bench: no progress on the meal plans' photos for 60 s")?;
        }
        rounds.push((mock.searches() - before) as f64 / n as f64);
    }
    worker.shutdown().await;
    Ok(
        json!({"cold_calls_per_plan": rounds[0], "warm_calls_per_plan": rounds[1], "plans_per_round": n}),
    )
}
