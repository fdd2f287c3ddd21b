//! Nutrition mode: the offline planner over a matrix of generated profiles
//! (every diet, allergy sets, goals, ages 16-75, BMI 18.5-38, 3-5 meals),
//! on one core. Reports plans per second, the portion solver's time per
//! day, and the share of plans whose every day is within tolerance.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::percentile;
use crate::plan::foods::{FoodFilter, catalogue};
use crate::plan::meals::day_meals;
use crate::plan::menu::{cook_day, day_targets};
use crate::plan::model::Nutrition;
use crate::plan::validate::Rule;
use crate::plan::{Profile, generate_offline, parse_profile, targets, validate};

const ALLERGY_SETS: &[&[&str]] = &[
    &[],
    &["peanuts"],
    &["tree nuts"],
    &["dairy"],
    &["gluten"],
    &["soy"],
    &["eggs"],
    &["fish", "shellfish"],
    &["sesame"],
    &["gluten", "dairy"],
    &["peanuts", "tree nuts"],
    &["soy", "gluten"],
];

const EQUIPMENT_SETS: &[&[&str]] = &[
    &["bodyweight"],
    &["dumbbells"],
    &["dumbbells", "bench"],
    &["resistance_bands", "pull_up_bar"],
    &["kettlebell"],
    &["barbell", "bench"],
    &["full_gym"],
];

const INJURY_SETS: &[&[&str]] = &[
    &[],
    &[],
    &["shoulder impingement"],
    &["bad knees"],
    &["lower back pain"],
    &["wrist pain"],
    &["tennis elbow"],
    &["ankle sprain", "hip bursitis"],
];

const MINUTES: &[u32] = &[20, 30, 45, 60, 75, 90, 120];
const LEVELS: &[&str] = &["beginner", "intermediate", "advanced"];

const AVOIDED_SETS: &[&[&str]] = &[
    &[],
    &[],
    &["burpees"],
    &["deadlifts"],
    &["push-ups", "lunges"],
];

/// A profile of the matrix, the same for the same `i` and `seed`: every
/// diet, allergy sets, goals, ages 16-75, BMI 18.5-38, 3-5 meals, and the
/// training side (session length, experience, equipment, injuries,
/// avoided exercises).
pub fn matrix_profile(i: usize, rng: &mut StdRng) -> Value {
    let diets = ["vegan", "vegetarian", "eggitarian", "non_vegetarian"];
    let goals = ["FAT_LOSS", "MAINTENANCE", "MUSCLE_GAIN", "RECOMPOSITION"];
    let activity = [
        "sedentary",
        "lightly_active",
        "moderately_active",
        "active",
        "very_active",
    ];
    let height: f64 = rng.random_range(150.0..195.0);
    let bmi: f64 = rng.random_range(18.5..38.0);
    let weight = (bmi * (height / 100.0).powi(2) * 10.0).round() / 10.0;
    json!({
        "goal": goals[i % 4],
        "sex": if rng.random_bool(0.5) { "female" } else { "male" },
        "age": rng.random_range(16..=75),
        "height_cm": height.round(),
        "weight_kg": weight,
        "activity_level": activity[rng.random_range(0..activity.len())],
        "training_days": rng.random_range(2..=6),
        "dietary_preference": diets[(i / 4) % 4],
        "allergies": ALLERGY_SETS[(i / 16) % ALLERGY_SETS.len()],
        "meals_per_day": rng.random_range(3..=5),
        "session_minutes": MINUTES[rng.random_range(0..MINUTES.len())],
        "experience_level": LEVELS[rng.random_range(0..LEVELS.len())],
        "equipment": EQUIPMENT_SETS[rng.random_range(0..EQUIPMENT_SETS.len())],
        "injuries": INJURY_SETS[rng.random_range(0..INJURY_SETS.len())],
        "avoided_exercises": AVOIDED_SETS[rng.random_range(0..AVOIDED_SETS.len())],
    })
}

/// The rules that say a day is off its targets.
const TARGET_RULES: [Rule; 4] = [
    Rule::KcalTarget,
    Rule::ProteinTarget,
    Rule::FatTarget,
    Rule::CarbsTarget,
];

pub fn run(profiles: usize, seed: u64, json_out: bool) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let people: Vec<Profile> = (0..profiles)
        .map(|i| parse_profile(&matrix_profile(i, &mut rng)))
        .collect::<Result<_, _>>()?;
    let _ = catalogue(); // parsed once, outside the timings

    let started = Instant::now();
    let mut failed: Vec<String> = Vec::new();
    let mut any_rule = 0usize;
    let mut other: Vec<String> = Vec::new();
    for p in &people {
        let t = targets(p);
        let plan = generate_offline(p, &t);
        let v = validate(&plan, p, &t);
        if v.iter().any(|v| TARGET_RULES.contains(&v.rule)) {
            failed.push(format!(
                "{:?} {:?}: {}",
                p.dietary_preference, p.allergies, v[0]
            ));
        }
        if let Some(first) = v.first() {
            any_rule += 1;
            if other.len() < 10 {
                other.push(format!(
                    "{:?} {:?}: {first}",
                    p.dietary_preference, p.allergies
                ));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut day_ms = solver_times(&people);
    day_ms.sort_by(f64::total_cmp);
    let within = 1.0 - failed.len() as f64 / profiles as f64;
    let out = json!({
        "profiles": profiles, "seed": seed,
        "plans_per_second": profiles as f64 / elapsed,
        "solver_ms_per_day": {"p50": percentile(&day_ms, 50.0), "p99": percentile(&day_ms, 99.0),
                              "max": day_ms.last().copied().unwrap_or(0.0)},
        "share_within_tolerance": within,
        "plans_with_any_violation": any_rule,
        "failures": failed.iter().take(10).collect::<Vec<_>>(),
        "violations": other,
    });
    if json_out {
        println!("{out}");
    } else {
        println!(
            "nutrition: {profiles} offline plans in {elapsed:.2} s = {:.1} plans/s; solver per day p50 {:.2} ms, p99 {:.2} ms; within tolerance {:.1} %",
            profiles as f64 / elapsed,
            percentile(&day_ms, 50.0),
            percentile(&day_ms, 99.0),
            within * 100.0
        );
        for f in failed.iter().take(10) {
            println!("  off target: {f}");
        }
        for f in &other {
            println!("  violation: {f}");
        }
    }
    if !failed.is_empty() || any_rule > 0 {
        anyhow::bail!(
            "bench: {} plans had a day off its targets, {any_rule} broke a rule",
            failed.len()
        );
    }
    Ok(())
}

/// The time of one day's portion solve (recipes, repairs included).
fn solver_times(people: &[Profile]) -> Vec<f64> {
    let cat = catalogue();
    let mut out = Vec::with_capacity(people.len() * 7);
    for p in people {
        let t = day_targets(&targets(p));
        let filter = FoodFilter::new(p);
        for d in 0..7 {
            let mut n = Nutrition {
                meals: day_meals(p, d),
                ..Nutrition::default()
            };
            let started = Instant::now();
            let _ = cook_day(&mut n, cat, &filter, &t);
            out.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out
}
