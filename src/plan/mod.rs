//! The plan domain: pure functions from a profile to a checked weekly plan.
//! No database and no HTTP here. In the order a job uses them:
//!
//! - `profile`     parse and validate a job's `profile_snapshot` (every bad field named)
//! - `nutrition`   the one implementation of calorie and macro targets (inside the AMDR)
//! - `foods`       the food table (USDA SR28, IFCT 2017) and what a profile may eat
//! - `prompt`      prompts for stage 1 (structure), stage 2 (details) and repair
//! - `model`       the plan's JSON types (what the LLM returns, what is saved)
//! - `portions`    the portion solver: grams within serving bounds, day on target
//! - `menu`        meals of foods -> solved, every number from the table; grocery list
//! - `fix`         orders and completes the week, solves portions, fills gaps
//! - `validate`    the rules a plan must meet before it is saved
//! - `offline`     the deterministic rule-based planner (no LLM needed)
//! - `meal_plan`   the meal plan: dishes with steps and photos, its planner, prompts and rules
//!
//! The job handler that drives these (LLM stages, saving) lives in
//! `jobs::weekly_plan`.
//!
//! Supporting modules: `diet` (diet and allergy keyword matching),
//! `supplements` (the supplement guide and day cards), `exercises` and
//! `meals` (the offline planner's recipes and composed dishes), `text`
//! (word helpers).
//! Their data lives in `data/*.json`, compiled in with `include_str!`.

pub mod diet;
pub mod exercises;
pub mod fix;
pub mod foods;
pub mod meal_plan;
pub mod meals;
pub mod menu;
pub mod model;
pub mod nutrition;
pub mod offline;
pub mod portions;
pub mod profile;
pub mod prompt;
pub mod sessions;
pub mod stream;
pub mod supplements;
pub mod text;
pub mod training;
pub mod validate;

pub use fix::fix;
pub use model::{WeekStructure, WeeklyPlan, parse_plan, parse_structure};
pub use nutrition::{Targets, targets};
pub use offline::generate as generate_offline;
pub use profile::{Profile, ProfileError, PushToken, parse_profile};
pub use prompt::{details_prompt, extract_tagged_json, repair_prompt, structure_prompt};
pub use validate::{Rule, Violation, validate};

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [(&str, &str); 5] = [
        (
            "muscle-gain-vegetarian-gym",
            include_str!("../../examples/profiles/muscle-gain-vegetarian-gym.json"),
        ),
        (
            "fat-loss-vegan-home",
            include_str!("../../examples/profiles/fat-loss-vegan-home.json"),
        ),
        (
            "recomposition-eggitarian-bodyweight",
            include_str!("../../examples/profiles/recomposition-eggitarian-bodyweight.json"),
        ),
        (
            "maintenance-non-vegetarian-athlete",
            include_str!("../../examples/profiles/maintenance-non-vegetarian-athlete.json"),
        ),
        (
            "teen-muscle-gain-kettlebell",
            include_str!("../../examples/profiles/teen-muscle-gain-kettlebell.json"),
        ),
    ];

    #[test]
    fn every_sample_profile_parses_and_gets_a_valid_offline_plan() {
        for (name, text) in SAMPLES {
            let p = parse_profile(&serde_json::from_str(text).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let t = targets(&p);
            let plan = offline::generate(&p, &t);
            assert_eq!(validate(&plan, &p, &t), vec![], "{name}");
            assert_eq!(
                fix(plan.clone(), &p, &t),
                plan,
                "{name}: the fixer changed a valid plan"
            );
        }
    }

    #[test]
    fn the_invalid_sample_profile_names_exactly_its_three_bad_fields() {
        let v = serde_json::from_str(include_str!(
            "../../examples/profiles/invalid-three-fields.json"
        ))
        .unwrap();
        let err = parse_profile(&v).unwrap_err();
        let fields: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["goal", "age", "height_cm"]);
    }
}
