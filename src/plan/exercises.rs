//! The offline generator's exercise library (`data/exercises.json`) and the
//! choice of a day's exercises for a focus, the user's equipment, avoided
//! exercises and injuries.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::Deserialize;

use super::model::{Exercise, Workout};
use super::profile::{Equipment, Goal, Profile};
use super::text::{singular, words};
use super::validate::avoided_match;

#[derive(Debug, Clone, Deserialize)]
pub struct ExerciseDef {
    pub name: String,
    pub group: String,
    /// Everything the exercise needs; `[bodyweight]` means nothing.
    pub equipment: Vec<Equipment>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A fixed prescription for holds, carries and intervals.
    #[serde(default)]
    pub reps: Option<String>,
}

#[derive(Deserialize)]
struct Library {
    injury_tags: HashMap<String, Vec<String>>,
    exercises: Vec<ExerciseDef>,
}

static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../data/exercises.json"))
        .expect("data/exercises.json is valid (checked by a unit test)")
});

pub fn library() -> &'static [ExerciseDef] {
    &LIBRARY.exercises
}

/// The kind of session a training day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    FullBody,
    Upper,
    Lower,
    Push,
    Pull,
    Legs,
    Conditioning,
}

impl Focus {
    pub fn label(self) -> &'static str {
        match self {
            Focus::FullBody => "Full body",
            Focus::Upper => "Upper body",
            Focus::Lower => "Lower body",
            Focus::Push => "Push (chest, shoulders, triceps)",
            Focus::Pull => "Pull (back, biceps)",
            Focus::Legs => "Legs (quads, hamstrings, glutes, calves)",
            Focus::Conditioning => "Conditioning and core",
        }
    }

    /// Muscle groups in the order the session fills them; long enough for
    /// the longest session, repeating the main groups for more volume.
    #[rustfmt::skip]
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Focus::FullBody => &["quads", "chest", "back", "hamstrings", "shoulders", "core", "glutes", "biceps", "triceps", "calves"],
            Focus::Upper => &["chest", "back", "shoulders", "back", "chest", "biceps", "triceps", "shoulders"],
            Focus::Lower => &["quads", "hamstrings", "glutes", "quads", "calves", "core", "hamstrings", "glutes"],
            Focus::Push => &["chest", "shoulders", "triceps", "chest", "shoulders", "triceps", "core", "chest"],
            Focus::Pull => &["back", "back", "biceps", "back", "biceps", "core", "back", "core"],
            Focus::Legs => &["quads", "hamstrings", "glutes", "calves", "quads", "hamstrings", "core", "glutes"],
            Focus::Conditioning => &["conditioning", "core", "conditioning", "glutes", "core", "back", "conditioning", "core"],
        }
    }
}

/// Tags that the user's injuries rule out ("bad knees" → jump, lunge, deep_knee).
pub fn banned_tags(injuries: &[String]) -> HashSet<&'static str> {
    let mut banned = HashSet::new();
    for injury in injuries {
        for word in words(injury).iter().map(|w| singular(w)) {
            if let Some(tags) = LIBRARY.injury_tags.get(&word) {
                banned.extend(tags.iter().map(String::as_str));
            }
        }
    }
    banned
}

/// Whether the user can do `e`: owns its equipment, has not asked to avoid
/// it, and no injury rules out one of its tags.
pub fn usable(e: &ExerciseDef, p: &Profile, banned: &HashSet<&str>) -> bool {
    e.equipment.iter().all(|q| p.has_equipment(*q))
        && avoided_match(&e.name, &p.avoided_exercises).is_none()
        && !e.tags.iter().any(|t| banned.contains(t.as_str()))
}

/// A warm-up of a fifth of the session (at most 10 minutes), then roughly 8
/// minutes per exercise: 30 min → 3, 45 → 4, 60 → 6, 75 or more → 8.
pub fn exercise_count(session_minutes: u32) -> usize {
    let warm_up = (session_minutes / 5).min(10);
    ((session_minutes - warm_up) / 8).clamp(2, 8) as usize
}

/// The workout for the `occurrence`-th session of this focus in the week;
/// the occurrence rotates the choice so repeated sessions differ.
pub fn workout(focus: Focus, occurrence: usize, p: &Profile) -> Workout {
    let banned = banned_tags(&p.injuries);
    let wanted = exercise_count(p.session_minutes);
    let mut chosen: Vec<&ExerciseDef> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for group in focus.groups() {
        if chosen.len() == wanted {
            break;
        }
        let candidates: Vec<&ExerciseDef> = library()
            .iter()
            .filter(|e| e.group == *group && usable(e, p, &banned))
            .filter(|e| !chosen.iter().any(|c| c.name == e.name))
            .collect();
        // Loaded exercises first: they allow progression; bodyweight fills the rest.
        let loaded: Vec<&ExerciseDef> = candidates
            .iter()
            .copied()
            .filter(|e| e.equipment != [Equipment::Bodyweight])
            .collect();
        let pool = if loaded.is_empty() {
            candidates
        } else {
            loaded
        };
        let repeat = seen.entry(group).or_default();
        if let Some(pick) = pool.get((occurrence + *repeat) % pool.len().max(1)) {
            chosen.push(pick);
        }
        *repeat += 1;
    }
    let exercises = chosen
        .iter()
        .enumerate()
        .map(|(i, e)| prescribe(e, i, p))
        .collect();
    Workout {
        focus: focus.label().to_owned(),
        duration_minutes: p.session_minutes,
        exercises,
    }
}

/// Sets, reps and rest by goal: heavier and longer rests for muscle gain,
/// higher reps and shorter rests for fat loss. The first two exercises of a
/// session are the main lifts and get the heavier end.
fn prescribe(e: &ExerciseDef, index: usize, p: &Profile) -> Exercise {
    let main = index < 2;
    let (sets, reps, rest) = match (p.goal, main) {
        (Goal::MuscleGain, true) => (4, "6-10", 120),
        (Goal::MuscleGain, false) => (3, "8-12", 75),
        (Goal::FatLoss, true) => (3, "10-12", 60),
        (Goal::FatLoss, false) => (3, "12-15", 45),
        (Goal::Maintenance, true) => (3, "8-12", 90),
        (Goal::Maintenance, false) => (3, "10-12", 60),
        (Goal::Recomposition, true) => (4, "6-10", 90),
        (Goal::Recomposition, false) => (3, "10-12", 60),
    };
    // Very short sessions cannot fit full volume; two sets keep both exercises in.
    let sets = if p.session_minutes <= 20 { 2 } else { sets };
    let equipment: Vec<&str> = e.equipment.iter().map(|q| q.as_str()).collect();
    Exercise {
        name: e.name.clone(),
        sets,
        reps: e.reps.clone().unwrap_or_else(|| reps.to_owned()),
        rest_seconds: rest,
        equipment: equipment.join(", "),
        muscle_group: e.group.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse_profile;
    use serde_json::json;

    fn profile(extra: serde_json::Value) -> Profile {
        let mut v = json!({
            "goal": "MUSCLE_GAIN", "sex": "male", "age": 30, "height_cm": 180, "weight_kg": 80,
            "activity_level": "active", "training_days": 3, "dietary_preference": "vegan"
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        parse_profile(&v).unwrap()
    }

    #[test]
    fn every_focus_group_has_bodyweight_exercises() {
        let groups: HashSet<&str> = library().iter().map(|e| e.group.as_str()).collect();
        for g in groups {
            let bw = library()
                .iter()
                .filter(|e| e.group == g && e.equipment == [Equipment::Bodyweight])
                .count();
            assert!(bw >= 2, "{g} has {bw} bodyweight exercises");
        }
    }

    #[test]
    fn a_bodyweight_user_gets_only_bodyweight_exercises() {
        let p = profile(json!({}));
        let w = workout(Focus::FullBody, 0, &p);
        assert_eq!(w.exercises.len(), exercise_count(60));
        assert!(
            w.exercises.iter().all(|e| e.equipment == "bodyweight"),
            "{w:?}"
        );
    }

    #[test]
    fn bad_knees_rule_out_jumps_and_lunges() {
        let p = profile(json!({ "injuries": ["bad knees"], "session_minutes": 90 }));
        for occurrence in 0..4 {
            let w = workout(Focus::Legs, occurrence, &p);
            for e in &w.exercises {
                assert!(
                    !["Reverse lunge", "Jump squat"].contains(&e.name.as_str()),
                    "{}",
                    e.name
                );
            }
        }
    }

    #[test]
    fn avoided_exercises_are_never_chosen() {
        let p = profile(
            json!({ "avoided_exercises": ["push-ups", "squat"], "equipment": ["full_gym"] }),
        );
        for focus in [Focus::Push, Focus::Legs, Focus::FullBody] {
            for e in workout(focus, 1, &p).exercises {
                assert!(
                    avoided_match(&e.name, &p.avoided_exercises).is_none(),
                    "{}",
                    e.name
                );
            }
        }
    }

    #[test]
    fn repeated_sessions_of_a_focus_vary_and_short_sessions_are_shorter() {
        let p = profile(json!({ "equipment": ["dumbbells", "bench"] }));
        assert_ne!(workout(Focus::Push, 0, &p), workout(Focus::Push, 1, &p));
        let short = profile(json!({ "session_minutes": 20 }));
        let w = workout(Focus::Upper, 0, &short);
        assert_eq!(w.exercises.len(), 2);
        assert!(w.exercises.iter().all(|e| e.sets == 2));
    }
}
