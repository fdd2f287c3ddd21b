//! The exercise library (`data/exercises.json`): each exercise's group,
//! movement pattern, secondary groups, equipment and the tags injuries rule
//! out; the kinds of session (`Focus`); who can do what. `sessions` builds
//! the week from it.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Deserialize;

use super::profile::{Equipment, Profile};
use super::training::Traits;
use super::validate::avoided_match;

#[derive(Debug, Clone, Deserialize)]
pub struct ExerciseDef {
    pub name: String,
    pub group: String,
    /// squat, hinge, push, pull, core, carry, isolation or conditioning.
    pub pattern: String,
    /// Groups that a set also trains, counted as half a set.
    #[serde(default)]
    pub secondary: Vec<String>,
    /// Everything the exercise needs; `[bodyweight]` means nothing.
    pub equipment: Vec<Equipment>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A fixed prescription for holds, carries and intervals.
    #[serde(default)]
    pub reps: Option<String>,
}

impl ExerciseDef {
    pub fn traits(&self) -> Traits {
        Traits {
            pattern: self.pattern.clone(),
            group: self.group.clone(),
            secondary: self.secondary.clone(),
            tags: self.tags.clone(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.equipment != [Equipment::Bodyweight]
    }

    /// Interval blocks ("6 x 1 min hard / 1 min easy") are one set.
    pub fn is_block(&self) -> bool {
        self.reps.as_deref().is_some_and(|r| r.contains(" x "))
    }
}

#[derive(Deserialize)]
struct Library {
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

    /// The warm-up's mobility step for the session (data/training.json).
    pub fn warm_up_kind(self) -> &'static str {
        match self {
            Focus::FullBody => "full_body",
            Focus::Upper | Focus::Push | Focus::Pull => "upper",
            Focus::Lower | Focus::Legs => "lower",
            Focus::Conditioning => "conditioning",
        }
    }
}

/// Whether the user can do `e`: owns its equipment, has not asked to avoid
/// it, and no injury rules out one of its tags.
pub fn usable(e: &ExerciseDef, p: &Profile, banned: &HashSet<&str>) -> bool {
    e.equipment.iter().all(|q| p.has_equipment(*q))
        && avoided_match(&e.name, &p.avoided_exercises).is_none()
        && !e.tags.iter().any(|t| banned.contains(t.as_str()))
}

/// Roughly 6 minutes per exercise after the warm-up: 20 min → 2, 30 → 4,
/// 45 → 6, 60 or more → 8 (what the prompt asks of the model; the offline
/// planner then fits sets to the minutes).
pub fn exercise_count(session_minutes: u32) -> usize {
    let warm_up = super::training::warm_up_minutes(session_minutes);
    ((session_minutes - warm_up) / 6).clamp(2, 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
