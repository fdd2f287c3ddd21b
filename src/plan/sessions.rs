//! The week's sessions, arranged from the exercise library: exercises for
//! each focus that the person's equipment, avoided exercises and injuries
//! allow, then sets arranged so that the week meets the training rules
//! (`training`): every movement pattern, each major group's weekly volume
//! within its range, sessions that fill their minutes, a warm-up, reps in
//! reserve and a progression for every exercise.

use std::collections::{BTreeMap, HashMap};

use super::exercises::{ExerciseDef, Focus, exercise_count, library, usable};
use super::model::{Exercise, WarmUpStep, Workout};
use super::profile::{Goal, Profile};
use super::training::{
    TrainingTargets, Traits, add_sets, banned_tags, covers, major_groups, required_patterns,
    training_targets, warm_up_parts, work_seconds,
};

/// The most sets one exercise gets in a session.
const MAX_SETS_MAIN: u32 = 5;
const MAX_SETS_OTHER: u32 = 4;

/// An exercise of a session while the week is arranged.
#[derive(Debug, Clone)]
struct Planned {
    def: &'static ExerciseDef,
    traits: Traits,
    sets: u32,
    reps: String,
    rest: u32,
    main: bool,
}

impl Planned {
    fn set_seconds(&self) -> f64 {
        work_seconds(&self.reps) + f64::from(self.rest)
    }

    fn max_sets(&self) -> u32 {
        if self.def.is_block() || self.traits.pattern == "conditioning" {
            1
        } else if self.main {
            MAX_SETS_MAIN
        } else {
            MAX_SETS_OTHER
        }
    }
}

struct Session {
    focus: Focus,
    occurrence: usize,
    /// Seconds for working sets: the session minus its warm-up.
    budget: f64,
    items: Vec<Planned>,
}

impl Session {
    fn used(&self) -> f64 {
        self.items
            .iter()
            .map(|i| f64::from(i.sets) * i.set_seconds())
            .sum()
    }
}

/// Everything the arrangement needs about the person.
struct Week<'a> {
    p: &'a Profile,
    t: TrainingTargets,
    usable: Vec<&'static ExerciseDef>,
    sessions: Vec<Session>,
    /// Seconds of a session after its warm-up.
    budget: f64,
}

/// The week's workouts, one per focus in order (a focus that occurs twice
/// rotates its exercises).
pub fn week_workouts(foci: &[Focus], p: &Profile) -> Vec<Workout> {
    let banned = banned_tags(&p.injuries);
    let t = training_targets(p);
    let budget = f64::from(p.session_minutes - t.warm_up_minutes) * 60.0;
    let mut week = Week {
        p,
        usable: library().iter().filter(|e| usable(e, p, &banned)).collect(),
        sessions: Vec::new(),
        t,
        budget,
    };
    for (i, focus) in foci.iter().enumerate() {
        let occurrence = foci[..i].iter().filter(|f| *f == focus).count();
        let items = choose(&week, *focus, occurrence);
        week.sessions.push(Session {
            focus: *focus,
            occurrence,
            budget,
            items,
        });
    }
    week.cover_patterns();
    week.fit_base_sets();
    week.meet_minimums();
    week.cap_volume();
    for s in 0..week.sessions.len() {
        week.fill(s);
        week.trim(s);
        week.fill(s);
        week.even_out(s);
    }
    week.sessions.iter().map(|s| week.workout(s)).collect()
}

/// The session's exercises in the focus's order: for each group the
/// `occurrence`-th usable one, loaded exercises first (they allow
/// progression), at most `exercise_count` of them.
fn choose(week: &Week, focus: Focus, occurrence: usize) -> Vec<Planned> {
    let wanted = exercise_count(week.p.session_minutes);
    let mut chosen: Vec<Planned> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for group in focus.groups() {
        if chosen.len() == wanted {
            break;
        }
        let repeat = seen.entry(group).or_default();
        if let Some(pick) = pick(week, group, |_| true, occurrence + *repeat, &chosen) {
            let index = chosen.len();
            chosen.push(week.planned(pick, index < 2));
        }
        *repeat += 1;
    }
    chosen
}

/// The `nth` (rotating) usable exercise of `group` that passes `accept`
/// and is not in `taken`, loaded ones first.
fn pick(
    week: &Week,
    group: &str,
    accept: impl Fn(&ExerciseDef) -> bool,
    nth: usize,
    taken: &[Planned],
) -> Option<&'static ExerciseDef> {
    let candidates: Vec<&'static ExerciseDef> = week
        .usable
        .iter()
        .copied()
        .filter(|e| e.group == group && accept(e))
        .filter(|e| !taken.iter().any(|c| c.def.name == e.name))
        // An interval block longer than the session is no choice.
        .filter(|e| week.planned(e, false).set_seconds() <= week.budget)
        .collect();
    let loaded: Vec<&'static ExerciseDef> = candidates
        .iter()
        .copied()
        .filter(|e| e.is_loaded())
        .collect();
    let pool = if loaded.is_empty() {
        candidates
    } else {
        loaded
    };
    pool.get(nth % pool.len().max(1)).copied()
}

impl Week<'_> {
    fn planned(&self, def: &'static ExerciseDef, main: bool) -> Planned {
        let (sets, reps, rest) = goal_prescription(self.p.goal, main);
        let reps = def.reps.clone().unwrap_or_else(|| reps.to_owned());
        let (sets, rest) = match def.pattern.as_str() {
            _ if def.is_block() => (1, 60),
            "conditioning" => (1, 0),
            _ => (sets, rest),
        };
        Planned {
            def,
            traits: def.traits(),
            sets,
            reps,
            rest,
            main,
        }
    }

    fn ledger(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for i in self.sessions.iter().flat_map(|s| &s.items) {
            add_sets(&mut out, &i.traits, f64::from(i.sets));
        }
        out
    }

    /// Whether one more set of `item` keeps every group it trains at or
    /// under the weekly maximum.
    fn room_for_set(&self, ledger: &BTreeMap<String, f64>, item: &Planned) -> bool {
        if item.traits.pattern == "conditioning" {
            return true;
        }
        let max = f64::from(self.t.weekly_sets_max);
        let under = |g: &str, add: f64| ledger.get(g).copied().unwrap_or(0.0) + add <= max;
        under(&item.traits.group, 1.0) && item.traits.secondary.iter().all(|g| under(g, 0.5))
    }

    /// Every required pattern the person can do appears in the week: a
    /// missing one is added to the session whose focus trains its group,
    /// else to the first session.
    fn cover_patterns(&mut self) {
        for required in required_patterns() {
            let covered = self
                .sessions
                .iter()
                .flat_map(|s| &s.items)
                .any(|i| covers(&i.traits.pattern, required));
            if covered {
                continue;
            }
            let candidates: Vec<&'static ExerciseDef> = self
                .usable
                .iter()
                .copied()
                .filter(|e| covers(&e.pattern, required))
                .collect();
            let Some(first) = candidates.first() else {
                continue;
            };
            let def = candidates
                .iter()
                .copied()
                .find(|e| e.is_loaded())
                .unwrap_or(first);
            let at = self
                .sessions
                .iter()
                .position(|s| s.focus.groups().contains(&def.group.as_str()))
                .unwrap_or(0);
            if at < self.sessions.len() {
                let mut item = self.planned(def, false);
                item.sets = item.sets.min(2);
                self.sessions[at].items.push(item);
            }
        }
    }

    /// The goal's sets, lowered where the week's maximum or the session's
    /// minutes would be exceeded (at least one set each). Main lifts of
    /// every session come first: the volume goes to them before accessories.
    fn fit_base_sets(&mut self) {
        let mut order: Vec<(usize, usize)> = Vec::new();
        for main in [true, false] {
            for (s, session) in self.sessions.iter().enumerate() {
                for (i, item) in session.items.iter().enumerate() {
                    if item.main == main {
                        order.push((s, i));
                    }
                }
            }
        }
        let wanted: Vec<u32> = order
            .iter()
            .map(|(s, i)| self.sessions[*s].items[*i].sets)
            .collect();
        for &(s, i) in &order {
            self.sessions[s].items[i].sets = 1;
        }
        for (&(s, i), wanted) in order.iter().zip(wanted) {
            for _ in 1..wanted {
                let ledger = self.ledger();
                let session = &self.sessions[s];
                let item = &session.items[i];
                if !self.room_for_set(&ledger, item)
                    || session.used() + item.set_seconds() > session.budget * 1.05
                {
                    break;
                }
                self.sessions[s].items[i].sets += 1;
            }
        }
    }

    /// Sets (or an exercise) for each major group under its weekly
    /// minimum, where a session has minutes left.
    fn meet_minimums(&mut self) {
        let min = f64::from(self.t.weekly_sets_min);
        for group in major_groups() {
            for _ in 0..32 {
                let ledger = self.ledger();
                if ledger.get(group).copied().unwrap_or(0.0) >= min {
                    break;
                }
                if self.add_set_for(group, &ledger) || self.add_exercise_for(group) {
                    continue;
                }
                // A full week: a set of a group above its minimum makes room.
                if !self.free_a_set(group, &ledger) {
                    break;
                }
            }
        }
    }

    /// Takes one set off the exercise with the most sets whose groups all
    /// stay at their minimum without it (and that does not train `group`).
    fn free_a_set(&mut self, group: &str, ledger: &BTreeMap<String, f64>) -> bool {
        let mut best: Option<(usize, usize, u32)> = None;
        for (s, session) in self.sessions.iter().enumerate() {
            for (i, item) in session.items.iter().enumerate() {
                let t = &item.traits;
                let free = item.sets > 1
                    && t.group != group
                    && !t.secondary.iter().any(|g| g == group)
                    && self.can_lose_set(ledger, item);
                if free && best.is_none_or(|(_, _, sets)| item.sets > sets) {
                    best = Some((s, i, item.sets));
                }
            }
        }
        let Some((s, i, _)) = best else { return false };
        self.sessions[s].items[i].sets -= 1;
        true
    }

    /// One more set of an exercise of `group` in the session with the most
    /// minutes left.
    fn add_set_for(&mut self, group: &str, ledger: &BTreeMap<String, f64>) -> bool {
        let mut best: Option<(usize, usize, f64)> = None;
        for (s, session) in self.sessions.iter().enumerate() {
            let left = session.budget * 1.10 - session.used();
            for (i, item) in session.items.iter().enumerate() {
                let fits = item.traits.group == group
                    && item.sets < item.max_sets()
                    && item.set_seconds() <= left
                    && self.room_for_set(ledger, item);
                if fits && best.is_none_or(|(_, _, l)| left > l) {
                    best = Some((s, i, left));
                }
            }
        }
        let Some((s, i, _)) = best else { return false };
        self.sessions[s].items[i].sets += 1;
        true
    }

    /// A new exercise of `group` (two sets) in the session that trains the
    /// group and has the most minutes left.
    fn add_exercise_for(&mut self, group: &str) -> bool {
        let mut order: Vec<usize> = (0..self.sessions.len()).collect();
        order.sort_by(|a, b| {
            let left = |s: &Session| s.budget - s.used();
            let trains = |s: &Session| s.focus.groups().contains(&group);
            let (a, b) = (&self.sessions[*a], &self.sessions[*b]);
            trains(b).cmp(&trains(a)).then(left(b).total_cmp(&left(a)))
        });
        for s in order {
            let session = &self.sessions[s];
            let nth = session.occurrence;
            let Some(def) = pick(
                self,
                group,
                |e| e.pattern != "conditioning",
                nth,
                &session.items,
            ) else {
                continue;
            };
            let mut item = self.planned(def, false);
            item.sets = 2;
            if session.used() + 2.0 * item.set_seconds() > session.budget * 1.10 {
                continue;
            }
            self.sessions[s].items.push(item);
            return true;
        }
        false
    }

    /// Sets off (or, at one set, out go) the exercises of any group over
    /// its weekly maximum, the group's own exercises first.
    fn cap_volume(&mut self) {
        let max = f64::from(self.t.weekly_sets_max);
        for _ in 0..64 {
            let ledger = self.ledger();
            let Some(group) = ledger
                .iter()
                .find(|(_, sets)| **sets > max)
                .map(|(g, _)| g.clone())
            else {
                return;
            };
            let trains = |i: &Planned| {
                if i.traits.group == group {
                    2
                } else if i.traits.secondary.contains(&group) {
                    1
                } else {
                    0
                }
            };
            let mut best: Option<(usize, usize, (u32, u32, bool))> = None;
            for (s, session) in self.sessions.iter().enumerate() {
                for (i, item) in session.items.iter().enumerate() {
                    let key = (trains(item), item.sets, !item.main);
                    if key.0 > 0 && best.is_none_or(|(_, _, k)| key > k) {
                        best = Some((s, i, key));
                    }
                }
            }
            let Some((s, i, _)) = best else { return };
            let item = &mut self.sessions[s].items[i];
            if item.sets > 1 {
                item.sets -= 1;
            } else if !self.sole_cover(s, i) {
                self.sessions[s].items.remove(i);
            } else {
                return;
            }
        }
    }

    /// Whether the exercise is the week's only one of a required pattern.
    fn sole_cover(&self, s: usize, i: usize) -> bool {
        let pattern = &self.sessions[s].items[i].traits.pattern;
        required_patterns().iter().any(|r| {
            covers(pattern, r)
                && self
                    .sessions
                    .iter()
                    .flat_map(|x| &x.items)
                    .filter(|x| covers(&x.traits.pattern, r))
                    .count()
                    == 1
        })
    }

    /// Sets, then exercises of the focus, then an easy cardio finisher,
    /// until the session's minutes are used.
    fn fill(&mut self, s: usize) {
        let target = self.sessions[s].budget;
        loop {
            let session = &self.sessions[s];
            let left = target - session.used();
            if left <= 0.0 {
                return;
            }
            let ledger = self.ledger();
            // The exercise furthest from its most sets, main lifts first.
            let next = session
                .items
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    i.sets < i.max_sets()
                        && i.set_seconds() <= left + 0.1 * target
                        && self.room_for_set(&ledger, i)
                })
                .max_by_key(|(_, i)| (i.max_sets() - i.sets, i.main))
                .map(|(i, _)| i);
            if let Some(i) = next {
                self.sessions[s].items[i].sets += 1;
                continue;
            }
            if self.add_focus_exercise(s, left, &ledger) {
                continue;
            }
            self.add_finisher(s, left);
            return;
        }
    }

    /// The next exercise of the focus's groups that the week has room for.
    fn add_focus_exercise(&mut self, s: usize, left: f64, ledger: &BTreeMap<String, f64>) -> bool {
        let session = &self.sessions[s];
        if session.items.len() >= 10 {
            return false;
        }
        for group in session.focus.groups() {
            let accept = |e: &ExerciseDef| e.pattern != "conditioning" || e.is_block();
            let Some(def) = pick(self, group, accept, session.occurrence, &session.items) else {
                continue;
            };
            // Two sets at least: a single set of a filler is no training.
            let mut item = self.planned(def, false);
            let sets = if def.is_block() || def.pattern == "conditioning" {
                1
            } else {
                2
            };
            item.sets = sets;
            let mut twice = ledger.clone();
            add_sets(&mut twice, &item.traits, f64::from(sets - 1));
            if f64::from(sets) * item.set_seconds() > left + 0.1 * self.sessions[s].budget
                || !self.room_for_set(&twice, &item)
            {
                continue;
            }
            self.sessions[s].items.push(item);
            return true;
        }
        false
    }

    /// Steady cardio for the minutes no exercise can fill (at least 3); a
    /// session that already has some gets it longer.
    fn add_finisher(&mut self, s: usize, left: f64) {
        let minutes = (left / 60.0).round() as u32;
        if minutes < 3 {
            return;
        }
        let steady = |i: &Planned| i.traits.pattern == "conditioning" && !i.def.is_block();
        if let Some(item) = self.sessions[s].items.iter_mut().find(|i| steady(i)) {
            let had = (work_seconds(&item.reps) / 60.0).round() as u32;
            item.reps = format!("{} min", had + minutes);
            return;
        }
        let Some(def) = self
            .usable
            .iter()
            .copied()
            .find(|e| e.pattern == "conditioning" && e.reps.as_deref() == Some("10 min"))
        else {
            return;
        };
        let mut item = self.planned(def, false);
        item.reps = format!("{minutes} min");
        self.sessions[s].items.push(item);
    }

    /// Sets off the exercises with the most, while the session runs over
    /// by more than a tenth; a major group is not taken under its minimum.
    fn trim(&mut self, s: usize) {
        loop {
            let session = &self.sessions[s];
            if session.used() <= session.budget * 1.10 {
                return;
            }
            let ledger = self.ledger();
            let next = session
                .items
                .iter()
                .enumerate()
                .filter(|(_, i)| i.sets > 1 && self.can_lose_set(&ledger, i))
                .max_by_key(|(_, i)| (i.sets, !i.main))
                .map(|(i, _)| i);
            if let Some(i) = next {
                self.sessions[s].items[i].sets -= 1;
                continue;
            }
            // At one set each (or blocks too long for the session): the
            // last exercise that is not needed for a pattern goes.
            let drop = (0..self.sessions[s].items.len())
                .rev()
                .find(|i| self.sessions[s].items.len() > 1 && !self.sole_cover(s, *i));
            match drop {
                Some(i) => {
                    self.sessions[s].items.remove(i);
                }
                None => return,
            }
        }
    }

    /// Whether one set less of `item` keeps every major group it trains at
    /// its weekly minimum.
    fn can_lose_set(&self, ledger: &BTreeMap<String, f64>, item: &Planned) -> bool {
        let min = f64::from(self.t.weekly_sets_min);
        let majors = major_groups();
        let stays = |g: &str, w: f64| {
            !majors.iter().any(|m| m == g) || ledger.get(g).copied().unwrap_or(0.0) - w >= min
        };
        item.traits.pattern == "conditioning"
            || (stays(&item.traits.group, 1.0)
                && item.traits.secondary.iter().all(|g| stays(g, 0.5)))
    }

    /// A single set of an exercise is hardly training: it takes a set from
    /// the session's exercise with the most (three or more), when the week
    /// has room for it.
    fn even_out(&mut self, s: usize) {
        for _ in 0..16 {
            let ledger = self.ledger();
            let items = &self.sessions[s].items;
            let single = items
                .iter()
                .position(|i| i.sets == 1 && i.max_sets() > 1 && self.room_for_set(&ledger, i));
            let most = items
                .iter()
                .enumerate()
                .filter(|(_, i)| i.sets >= 3 && self.can_lose_set(&ledger, i))
                .max_by_key(|(_, i)| i.sets)
                .map(|(i, _)| i);
            let (Some(single), Some(most)) = (single, most) else {
                return;
            };
            let items = &mut self.sessions[s].items;
            let longer = items[single].set_seconds() - items[most].set_seconds();
            items[single].sets += 1;
            items[most].sets -= 1;
            // Only when the session stays inside its minutes.
            let session = &self.sessions[s];
            if longer > 0.0 && session.used() > session.budget * 1.10 {
                let items = &mut self.sessions[s].items;
                items[single].sets -= 1;
                items[most].sets += 1;
                return;
            }
        }
    }

    fn workout(&self, s: &Session) -> Workout {
        let exercises: Vec<Exercise> = s.items.iter().map(|i| self.exercise(i)).collect();
        let mut w = Workout {
            focus: s.focus.label().to_owned(),
            duration_minutes: 0,
            warm_up: warm_up(s.focus, self.t.warm_up_minutes, s.items.first()),
            exercises,
        };
        w.duration_minutes = super::training::planned_minutes(&w).round() as u32;
        w
    }

    fn exercise(&self, i: &Planned) -> Exercise {
        let equipment: Vec<&str> = i.def.equipment.iter().map(|q| q.as_str()).collect();
        let conditioning = i.traits.pattern == "conditioning";
        let rir = (!conditioning).then(|| rir(&self.t, i.main));
        Exercise {
            name: i.def.name.clone(),
            sets: i.sets,
            reps: i.reps.clone(),
            rest_seconds: i.rest,
            equipment: equipment.join(", "),
            muscle_group: i.def.group.clone(),
            rir,
            progression: progression(i, rir),
        }
    }
}

/// Sets, reps and rest by goal: heavier and longer rests for muscle gain,
/// higher reps and shorter rests for fat loss. The first two exercises of a
/// session are the main lifts and get the heavier end.
fn goal_prescription(goal: Goal, main: bool) -> (u32, &'static str, u32) {
    match (goal, main) {
        (Goal::MuscleGain, true) => (4, "6-10", 120),
        (Goal::MuscleGain, false) => (3, "8-12", 75),
        (Goal::FatLoss, true) => (3, "10-12", 60),
        (Goal::FatLoss, false) => (3, "12-15", 45),
        (Goal::Maintenance, true) => (3, "8-12", 90),
        (Goal::Maintenance, false) => (3, "10-12", 60),
        (Goal::Recomposition, true) => (4, "6-10", 90),
        (Goal::Recomposition, false) => (3, "10-12", 60),
    }
}

/// Main lifts in the middle of the level's range, the rest one rep closer
/// to failure (never outside the range).
fn rir(t: &TrainingTargets, main: bool) -> u32 {
    let middle = (t.rir_min + t.rir_max).div_ceil(2);
    if main {
        middle
    } else {
        middle.saturating_sub(1).max(t.rir_min)
    }
}

/// How the exercise gets harder week to week, by the kind of prescription.
fn progression(i: &Planned, rir: Option<u32>) -> String {
    let reps = i.reps.to_lowercase();
    let at = rir.map_or(String::new(), |r| format!(" at {r} reps in reserve"));
    if i.traits.pattern == "conditioning" {
        return "Add one round or 2 minutes each week for three weeks, keeping the pace; then repeat the first week's dose and build again."
            .to_owned();
    }
    if reps.contains(" m") && !reps.contains("min") {
        return "Add 10 m or the next heavier weight each week while posture stays upright."
            .to_owned();
    }
    if reps.contains(" s") {
        return format!(
            "Add 5 s per set each week{at}; past the top of the range, move to a harder variation at the bottom of it."
        );
    }
    let top = reps
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(12);
    if i.def.is_loaded() {
        let step = if ["quads", "hamstrings", "glutes"].contains(&i.traits.group.as_str()) {
            "5 kg (or the next dumbbell, band or stack step)"
        } else {
            "2.5 kg (or the next dumbbell, band or stack step)"
        };
        format!(
            "Double progression: when every set reaches {top} reps{at}, add {step} next session and start again at the bottom of the range."
        )
    } else {
        format!(
            "When every set reaches {top} reps{at}, make it harder next session: a 3-second lowering, a pause at the hardest point, or the next harder variation."
        )
    }
}

/// The warm-up: easy cardio, mobility for the session, and ramp-up sets
/// of the first exercise when it is loaded (else more mobility).
fn warm_up(focus: Focus, minutes: u32, first: Option<&Planned>) -> Vec<WarmUpStep> {
    let parts = warm_up_parts();
    let mobility = &parts.by_focus[focus.warm_up_kind()];
    let general = ((f64::from(minutes) * parts.general.share).round() as u32).max(1);
    let ramp_step = first.filter(|i| i.def.is_loaded() && i.traits.pattern != "conditioning");
    let ramp = ramp_step.map_or(0, |_| {
        ((f64::from(minutes) * parts.ramp.share).round() as u32).max(1)
    });
    let mobility_minutes = minutes.saturating_sub(general + ramp).max(1);
    let mut steps = vec![
        WarmUpStep {
            step: parts.general.step.clone(),
            minutes: general,
        },
        WarmUpStep {
            step: mobility.step.clone(),
            minutes: mobility_minutes,
        },
    ];
    if let Some(first) = ramp_step {
        steps.push(WarmUpStep {
            step: format!("{} ({})", parts.ramp.step, first.def.name),
            minutes: ramp,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::exercises::library;
    use crate::plan::profile::parse_profile;
    use crate::plan::training::planned_minutes;
    use crate::plan::validate::avoided_match;
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

    fn week(p: &Profile) -> Vec<Workout> {
        week_workouts(crate::plan::offline::split(p.training_days), p)
    }

    #[test]
    fn a_bodyweight_user_gets_only_bodyweight_exercises() {
        let p = profile(json!({}));
        for w in week(&p) {
            assert!(w.exercises.len() >= 3, "{w:?}");
            assert!(
                w.exercises.iter().all(|e| e.equipment == "bodyweight"),
                "{w:?}"
            );
        }
    }

    #[test]
    fn bad_knees_rule_out_jumps_and_lunges() {
        let p = profile(
            json!({ "injuries": ["bad knees"], "session_minutes": 90, "training_days": 6 }),
        );
        for w in week(&p) {
            for e in &w.exercises {
                assert!(
                    !["Reverse lunge", "Jump squat", "Bulgarian split squat"]
                        .contains(&e.name.as_str()),
                    "{}",
                    e.name
                );
            }
        }
    }

    #[test]
    fn a_shoulder_injury_gets_no_overhead_pressing_or_lateral_raises() {
        let p = profile(json!({
            "injuries": ["shoulder impingement"], "equipment": ["full_gym"], "training_days": 5
        }));
        let names: Vec<String> = week(&p)
            .into_iter()
            .flat_map(|w| w.exercises)
            .map(|e| e.name)
            .collect();
        for banned in [
            "Barbell overhead press",
            "Dumbbell shoulder press",
            "Dumbbell lateral raise",
            "Pull-up",
            "Bench dip",
        ] {
            assert!(!names.iter().any(|n| n == banned), "{banned} in {names:?}");
        }
        assert!(
            names
                .iter()
                .any(|n| n.contains("face pull") || n.contains("Face pull")),
            "{names:?}"
        );
    }

    #[test]
    fn avoided_exercises_are_never_chosen() {
        let p = profile(
            json!({ "avoided_exercises": ["push-ups", "squat"], "equipment": ["full_gym"], "training_days": 6 }),
        );
        for w in week(&p) {
            for e in w.exercises {
                assert!(
                    avoided_match(&e.name, &p.avoided_exercises).is_none(),
                    "{}",
                    e.name
                );
            }
        }
    }

    #[test]
    fn repeated_sessions_of_a_focus_vary() {
        let p = profile(json!({ "equipment": ["dumbbells", "bench"], "training_days": 6 }));
        let w = week(&p);
        assert_ne!(w[0].exercises, w[3].exercises);
    }

    #[test]
    fn sessions_fill_their_minutes_with_a_warm_up_first() {
        for minutes in [15, 20, 30, 45, 60, 90, 120, 180] {
            for days in [1, 3, 5, 7] {
                let p = profile(json!({ "session_minutes": minutes, "training_days": days }));
                for w in week(&p) {
                    let planned = planned_minutes(&w);
                    let off = (planned - f64::from(minutes)).abs() / f64::from(minutes);
                    assert!(
                        off <= 0.15,
                        "{minutes} min x {days}: planned {planned:.1}: {w:#?}"
                    );
                    assert!(w.warm_up.iter().map(|s| s.minutes).sum::<u32>() >= 3);
                    assert_eq!(w.duration_minutes, planned.round() as u32);
                }
            }
        }
    }

    #[test]
    fn every_exercise_has_a_progression_and_lifts_have_reps_in_reserve() {
        let p = profile(
            json!({ "experience_level": "intermediate", "equipment": ["full_gym"], "training_days": 7 }),
        );
        for w in week(&p) {
            for e in &w.exercises {
                assert!(!e.progression.is_empty(), "{e:?}");
                let conditioning = library_def(&e.name).pattern == "conditioning";
                assert_eq!(e.rir.is_none(), conditioning, "{e:?}");
                if let Some(r) = e.rir {
                    assert!((1..=3).contains(&r), "{e:?}");
                }
            }
        }
    }

    fn library_def(name: &str) -> &'static ExerciseDef {
        library().iter().find(|e| e.name == name).unwrap()
    }
}
