//! The deterministic, rule-based planner: used when no LLM key is set (so the
//! worker produces real plans out of the box) and as a fallback after the LLM
//! fails for good. Same profile and targets in, same plan out.

use super::exercises::Focus;
use super::foods::{FoodFilter, catalogue};
use super::meals::{Dish, compose, day_meals_from, day_slots, suitable};
use super::menu::{cook_day, day_targets, grocery_list};
use super::model::Workout;
use super::model::{Day, Meal, Nutrition, Recovery, WeeklyPlan, weekday_name};
use super::nutrition::Targets;
use super::profile::{Goal, Profile};
use super::sessions::week_workouts;
use super::supplements::card;

/// Which weekdays train (1 = Monday), spread so hard days rarely touch.
pub fn training_weekdays(training_days: u8) -> &'static [u8] {
    match training_days {
        0 => &[],
        1 => &[1],
        2 => &[1, 4],
        3 => &[1, 3, 5],
        4 => &[1, 2, 4, 5],
        5 => &[1, 2, 3, 5, 6],
        6 => &[1, 2, 3, 4, 5, 6],
        _ => &[1, 2, 3, 4, 5, 6, 7],
    }
}

/// The split by training days: full body up to 3, upper/lower at 4,
/// push/pull/legs beyond, with the seventh day light conditioning.
pub fn split(training_days: u8) -> &'static [Focus] {
    use Focus::*;
    match training_days {
        0 => &[],
        1 => &[FullBody],
        2 => &[FullBody, FullBody],
        3 => &[FullBody, FullBody, FullBody],
        4 => &[Upper, Lower, Upper, Lower],
        5 => &[Push, Pull, Legs, Upper, Lower],
        6 => &[Push, Pull, Legs, Push, Pull, Legs],
        _ => &[Push, Pull, Legs, Upper, Lower, FullBody, Conditioning],
    }
}

pub fn generate(p: &Profile, t: &Targets) -> WeeklyPlan {
    build(p, t, true)
}

/// The same week with the recipes' grams unsolved and no numbers: the shape
/// a prompt's example needs, at a fraction of the cost (no portion solving).
pub fn sketch(p: &Profile, t: &Targets) -> WeeklyPlan {
    build(p, t, false)
}

fn build(p: &Profile, t: &Targets, solve: bool) -> WeeklyPlan {
    let weekdays = training_weekdays(p.training_days);
    let foci = split(p.training_days);
    let mut workouts = week_workouts(foci, p).into_iter();
    let mut days = Vec::with_capacity(7);
    let mut last_focus: Option<Focus> = None;
    let dishes = suitable(p);
    for n in 1..=7u8 {
        let day = match weekdays.iter().position(|d| *d == n) {
            Some(i) => {
                let focus = foci[i];
                last_focus = Some(focus);
                let workout = workouts.next().unwrap_or_default();
                training_day(p, t, &dishes, n, (focus, workout), solve)
            }
            None => rest_day_after(p, t, &dishes, n, last_focus, solve),
        };
        days.push(day);
    }
    let mut plan = WeeklyPlan {
        days,
        notes: Some(plan_notes(p, t)),
        grocery_list: Vec::new(),
    };
    if solve {
        plan.grocery_list = grocery_list(&plan, catalogue());
    }
    plan
}

fn training_day(
    p: &Profile,
    t: &Targets,
    dishes: &[&'static Dish],
    n: u8,
    (focus, workout): (Focus, Workout),
    solve: bool,
) -> Day {
    let groups = distinct_groups(&workout.exercises);
    let reason = format!(
        "{}: {} session working {}. A {}-minute warm-up and {} exercises fill your {}-minute \
         session with the equipment you have. {}",
        weekday_name(n),
        focus.label(),
        groups.join(", "),
        workout.warm_up.iter().map(|s| s.minutes).sum::<u32>(),
        workout.exercises.len(),
        p.session_minutes,
        goal_sentence(p.goal, t)
    );
    Day {
        day: n,
        name: weekday_name(n).to_owned(),
        is_training_day: true,
        workout: Some(workout),
        nutrition: day_nutrition(dishes, p, t, n, solve),
        recovery: recovery(p, Some(focus)),
        reason,
    }
}

/// The rest-day template, also used by the fixer to fill a missing day.
pub fn rest_day(p: &Profile, t: &Targets, n: u8) -> Day {
    rest_day_after(p, t, &suitable(p), n, None, true)
}

fn rest_day_after(
    p: &Profile,
    t: &Targets,
    dishes: &[&'static Dish],
    n: u8,
    after: Option<Focus>,
    solve: bool,
) -> Day {
    let after = after.map_or(String::new(), |f| {
        format!(" after the {} session", f.label())
    });
    let reason = format!(
        "{}: rest and recovery{after}, so muscles adapt and the next session is productive. \
         Meals stay at {} kcal and {} g protein to keep the week steady.",
        weekday_name(n),
        t.kcal,
        t.protein_g
    );
    Day {
        day: n,
        name: weekday_name(n).to_owned(),
        is_training_day: false,
        workout: None,
        nutrition: day_nutrition(dishes, p, t, n, solve),
        recovery: recovery(p, None),
        reason,
    }
}

/// The day's meals, their portions solved to the targets.
pub fn nutrition(p: &Profile, t: &Targets, n: u8) -> Nutrition {
    nutrition_from(&suitable(p), p, t, n)
}

fn day_nutrition(
    dishes: &[&'static Dish],
    p: &Profile,
    t: &Targets,
    n: u8,
    solve: bool,
) -> Nutrition {
    if solve {
        return nutrition_from(dishes, p, t, n);
    }
    Nutrition {
        kcal: t.kcal,
        protein_g: t.protein_g,
        fat_g: t.fat_g,
        carbs_g: t.carbs_g,
        meals: day_meals_from(dishes, p, usize::from(n.saturating_sub(1))),
    }
}

/// The recipes of the day, solved; when they cannot reach the targets even
/// with repairs, dishes composed from the allowed foods by role. A day that
/// still cannot be solved keeps its unsolved meals, and the validator says
/// which targets it misses.
fn nutrition_from(dishes: &[&'static Dish], p: &Profile, t: &Targets, n: u8) -> Nutrition {
    let day = usize::from(n.saturating_sub(1));
    let (cat, filter, targets) = (catalogue(), FoodFilter::new(p), day_targets(t));
    let mut first = Nutrition {
        meals: day_meals_from(dishes, p, day),
        ..Nutrition::default()
    };
    if cook_day(&mut first, cat, &filter, &targets).is_ok() {
        return first;
    }
    for attempt in 1..=8 {
        let mut composed = Nutrition {
            meals: composed_meals(p, day * 5 + attempt),
            ..Nutrition::default()
        };
        if cook_day(&mut composed, cat, &filter, &targets).is_ok() {
            return composed;
        }
    }
    first
}

fn composed_meals(p: &Profile, seed: usize) -> Vec<Meal> {
    day_slots(p.meals_per_day)
        .iter()
        .enumerate()
        .map(|(i, (label, slot))| compose(p, *slot, label, seed + i))
        .collect()
}

/// Teenagers need more sleep (AASM: 8-10 h at 13-18) than adults (7-9 h).
pub fn sleep_hours(p: &Profile) -> f64 {
    if p.age < 18 { 9.0 } else { 8.0 }
}

pub fn recovery(p: &Profile, focus: Option<Focus>) -> Recovery {
    let mobility: &[&str] = match focus {
        None => &[
            "Easy walk, 20-30 min",
            "Cat-cow, 10 slow reps",
            "World's greatest stretch, 5 per side",
            "Foam rolling or self-massage, 5-10 min",
        ],
        Some(Focus::Push) => &[
            "Doorway chest stretch, 2 x 30 s",
            "Cross-body shoulder stretch, 2 x 30 s per side",
            "Overhead triceps stretch, 2 x 30 s per side",
        ],
        Some(Focus::Pull) => &[
            "Child's pose with side reach, 2 x 30 s",
            "Thread the needle, 5 per side",
            "Wall biceps stretch, 2 x 30 s per side",
        ],
        Some(Focus::Legs | Focus::Lower) => &[
            "Standing quad stretch, 2 x 30 s per side",
            "Hamstring stretch, 2 x 30 s per side",
            "90/90 hip switches, 8 per side",
        ],
        Some(Focus::FullBody | Focus::Upper | Focus::Conditioning) => &[
            "World's greatest stretch, 5 per side",
            "Cross-body shoulder stretch, 2 x 30 s per side",
            "Hip flexor stretch, 2 x 30 s per side",
        ],
    };
    let notes = if p.injuries.is_empty() {
        "Aim for a regular bedtime; stop any movement that causes sharp pain.".to_owned()
    } else {
        format!(
            "Exercises were chosen around: {}. Stop any movement that causes pain and ask a \
             physiotherapist if it persists.",
            p.injuries.join(", ")
        )
    };
    Recovery {
        sleep_hours: sleep_hours(p),
        mobility: mobility.iter().map(|s| (*s).to_owned()).collect(),
        supplement_card: card(p, focus.is_some()),
        notes,
    }
}

/// A reason for a day that has none: what the day is and why it is there.
pub fn default_reason(day: &Day, t: &Targets) -> String {
    match &day.workout {
        Some(w) if day.is_training_day && !w.exercises.is_empty() => format!(
            "{}: {} session with {} exercises; meals hit {} kcal and {} g protein.",
            weekday_name(day.day),
            if w.focus.is_empty() {
                "training"
            } else {
                &w.focus
            },
            w.exercises.len(),
            t.kcal,
            t.protein_g
        ),
        _ => format!(
            "{}: rest and recovery so the training days stay productive; meals hit {} kcal and {} g protein.",
            weekday_name(day.day),
            t.kcal,
            t.protein_g
        ),
    }
}

fn goal_sentence(goal: Goal, t: &Targets) -> String {
    match goal {
        Goal::MuscleGain => format!(
            "Hard sets in the 6-12 range and {} kcal (a 10% surplus) with {} g protein support muscle gain.",
            t.kcal, t.protein_g
        ),
        Goal::FatLoss => format!(
            "Higher reps with short rests keep training volume up while {} kcal drives fat loss; \
             {} g protein protects muscle.",
            t.kcal, t.protein_g
        ),
        Goal::Maintenance => format!(
            "Steady training at {} kcal and {} g protein maintains strength and body weight.",
            t.kcal, t.protein_g
        ),
        Goal::Recomposition => format!(
            "Challenging main exercises with a small deficit ({} kcal) and high protein ({} g) \
             build muscle while losing fat.",
            t.kcal, t.protein_g
        ),
    }
}

fn distinct_groups(exercises: &[super::model::Exercise]) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    for e in exercises {
        if !groups.contains(&e.muscle_group.as_str()) {
            groups.push(&e.muscle_group);
        }
    }
    groups
}

/// The week's notes: targets, deload and injury advice.
pub(crate) fn plan_notes(p: &Profile, t: &Targets) -> String {
    let mut notes = format!(
        "Generated by the offline planner from your profile: {} kcal, {} g protein, {} g fat and \
         {} g carbs per day.",
        t.kcal, t.protein_g, t.fat_g, t.carbs_g
    );
    if t.clamped_to_floor {
        notes.push_str(&format!(
            " Calories were raised to the {} kcal minimum that is safe without medical supervision.",
            t.kcal_floor
        ));
    }
    let tt = super::training::training_targets(p);
    notes.push_str(&format!(
        " Training at {} level: {}-{} hard sets per major muscle group each week{}, working \
         sets stopped {}-{} reps short of failure; each exercise says how to progress. {}",
        tt.experience_level.as_str(),
        tt.weekly_sets_min,
        tt.weekly_sets_max,
        if tt.time_limited {
            " (what your sessions' minutes hold)"
        } else {
            ""
        },
        tt.rir_min,
        tt.rir_max,
        super::training::deload_advice()
    ));
    if p.training_days == 7 {
        notes.push_str(" With training every day, keep the conditioning day easy.");
    }
    notes
}

#[cfg(test)]
mod tests;
