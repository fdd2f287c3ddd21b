//! The system message of every weekly-plan call: everything that is the
//! same for every person of one diet, byte for byte, so that a provider's
//! context cache (DeepSeek's and OpenAI's match whole prompt prefixes)
//! serves it after the first call. What is the person's own (numbers,
//! constraints, the week so far) goes in the user message, after it.
//!
//! The examples come from a fixed reference person of the diet, not from
//! the person being planned: an example built for each person would make
//! every prefix unique.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::{SYSTEM, pretty};
use crate::plan::foods::{FoodFilter, catalogue};
use crate::plan::model::{DayOutline, WeekStructure, WeeklyPlan};
use crate::plan::nutrition::targets;
use crate::plan::offline::sketch;
use crate::plan::profile::{DietaryPreference, Profile, parse_profile};
use crate::plan::supplements::guide;

const DIETS: [DietaryPreference; 4] = [
    DietaryPreference::Vegetarian,
    DietaryPreference::Eggitarian,
    DietaryPreference::NonVegetarian,
    DietaryPreference::Vegan,
];

static SYSTEMS: LazyLock<Vec<String>> = LazyLock::new(|| DIETS.iter().map(|d| build(*d)).collect());
static CATALOGUES: LazyLock<Vec<String>> =
    LazyLock::new(|| DIETS.iter().map(|d| diet_catalogue(*d)).collect());

/// The food catalogue of `diet`, as the system messages show it.
pub fn catalogue_for(diet: DietaryPreference) -> &'static str {
    &CATALOGUES[index(diet)]
}

fn index(diet: DietaryPreference) -> usize {
    DIETS.iter().position(|d| *d == diet).expect("every diet")
}

/// The system message for people of `diet`.
pub fn system_for(diet: DietaryPreference) -> &'static str {
    &SYSTEMS[index(diet)]
}

/// The reference person whose offline week the examples show.
fn reference(diet: DietaryPreference) -> Profile {
    let mut v: Value = serde_json::from_str(include_str!(
        "../../../examples/profiles/muscle-gain-vegetarian-gym.json"
    ))
    .expect("the example profile is JSON");
    v["dietary_preference"] = json!(diet.as_str());
    v["meals_per_day"] = json!(3);
    parse_profile(&v).expect("the example profile is valid")
}

fn build(diet: DietaryPreference) -> String {
    let p = reference(diet);
    let t = targets(&p);
    let week = sketch(&p, &t);
    let structure = WeekStructure {
        days: week.days.iter().take(2).map(DayOutline::of).collect(),
        rationale: "Why the training days and foci are arranged this way, in one or two sentences."
            .to_owned(),
    };
    let training = week.days.iter().find(|d| d.is_training_day);
    let rest = week.days.iter().find(|d| !d.is_training_day);
    let mut days: Vec<_> = training.into_iter().chain(rest).cloned().collect();
    for day in &mut days {
        if let Some(w) = &mut day.workout {
            w.exercises.truncate(2);
        }
        day.recovery.supplement_card.truncate(2);
    }
    let example = super::for_model(&WeeklyPlan {
        days,
        notes: Some("Notes about the whole week (its deload advice).".to_owned()),
        grocery_list: Vec::new(),
    });
    format!(
        "{SYSTEM}\n\n\
         ## How a plan is made\n\
         - Stage 1 answers the structure of the week: which days train and the focus of each.\n\
         - Stage 2 answers the details, either the whole week in one answer or one day per \
         answer; the user's message says which, and gives the person, their numbers and the \
         rules with their numbers.\n\
         - A repair round returns what the server's checks found broken, corrected.\n\
         - The server computes every number of food (kcal, macros, exact grams) from its food \
         table: send ingredient ids with approximate grams, never kcal or macros.\n\
         - The examples below show the shape only. Their foods, exercises and numbers belong to \
         someone else: take this person's from the user's message.\n\n\
         ## Rules for a day\n\
         - \"day\" is 1 to 7 (1 = Monday); \"name\" is the weekday.\n\
         - Training days: \"workout\" with \"focus\", \"duration_minutes\", \"warm_up\" (steps \
         with minutes) and exercises, each with \"name\", \"sets\", \"reps\" (text such as \
         \"8-12\"), \"rest_seconds\", \"equipment\" (names from the person's equipment list, \
         comma-separated when several are needed, \"bodyweight\" for none), \"muscle_group\", \
         \"rir\" and \"progression\". Rest days: \"workout\": null.\n\
         - \"nutrition\" with the person's number of meals, each with \"name\", \"slot\" \
         (breakfast, lunch, dinner or snack) and \"ingredients\": a list of {{\"id\", \"grams\"}} \
         using only ids of the food catalogue below, minus any the user's message excludes, with \
         the grams of a real dish. Build meals that can reach the targets (a protein food in \
         most meals).\n\
         - Every meal name keeps the diet rules and avoids the person's allergies.\n\
         - \"recovery\" with \"sleep_hours\" (a number), \"mobility\" (a list), \
         \"supplement_card\" (entries of the supplement guide the user's message names for the \
         person: name, dose, timing, evidence letter) and \"notes\".\n\
         - \"reason\": one or two sentences on why the day is planned this way.\n\n\
         ## Shape of a stage-1 answer (2 of the 7 days shown)\n{structure}\n\n\
         ## Shape of a stage-2 answer (a training day and a rest day shown, shortened)\n\
         {example}\n\n\
         {guide}\n\
         {foods}",
        structure = pretty(&structure),
        example = pretty(&example),
        guide = guide_section(),
        foods = catalogue_for(diet),
    )
}

/// Every entry of the supplement guide.
fn guide_section() -> String {
    let mut out = String::from(
        "## Supplement guide (a supplement_card uses only entries from here, as written)\n",
    );
    for s in guide() {
        out.push_str(&format!(
            "- {} [evidence {}]{}: dose {}; timing: {}; cautions: {}\n",
            s.name,
            s.evidence.as_str(),
            if s.training_days_only {
                " (training days only)"
            } else {
                ""
            },
            s.dose,
            s.timing,
            s.cautions
        ));
    }
    out
}

/// The foods of the diet, by group, as ids.
fn diet_catalogue(diet: DietaryPreference) -> String {
    let filter = FoodFilter::for_diet(diet);
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for f in catalogue().all().iter().filter(|f| filter.allows(f)) {
        groups
            .entry(f.group.as_str())
            .or_default()
            .push(f.id.as_str());
    }
    let mut out = format!(
        "## Food catalogue for a {} diet (the only ingredient ids a meal may use)\n",
        diet.as_str()
    );
    for (group, ids) in groups {
        out.push_str(&format!("- {group}: {}\n", ids.join(", ")));
    }
    out
}

/// Ids of the diet's catalogue that this person's allergies rule out.
pub fn excluded_ids(p: &Profile) -> Vec<&'static str> {
    let diet = FoodFilter::for_diet(p.dietary_preference);
    let person = FoodFilter::new(p);
    catalogue()
        .all()
        .iter()
        .filter(|f| diet.allows(f) && !person.allows(f))
        .map(|f| f.id.as_str())
        .collect()
}
