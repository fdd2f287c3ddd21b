//! The training rules (`data/training.json`): what a week of sessions must
//! hold for a coach to sign it. The person's numbers (weekly sets per
//! muscle group, reps in reserve, session minutes) are computed here once,
//! so that the offline planner, the prompts and the validator agree.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::exercises::{ExerciseDef, library};
use super::model::{Exercise, WeeklyPlan, Workout};
use super::profile::{Experience, Profile};
use super::text::{singular, words};

#[derive(Debug, Clone, Copy, Deserialize)]
struct Span {
    min: u32,
    max: u32,
}

#[derive(Debug, Deserialize)]
struct ByLevel {
    beginner: Span,
    intermediate: Span,
    advanced: Span,
}

impl ByLevel {
    fn get(&self, level: Experience) -> Span {
        match level {
            Experience::Beginner => self.beginner,
            Experience::Intermediate => self.intermediate,
            Experience::Advanced => self.advanced,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct InjuryRule {
    pub joint: String,
    words: Vec<String>,
    avoid: Vec<String>,
    /// The rule as the prompt states it and the validator quotes it.
    pub rule: String,
}

impl InjuryRule {
    pub fn rules_out(&self, tag: &str) -> bool {
        self.avoid.iter().any(|a| a == tag)
    }
}

#[derive(Debug, Deserialize)]
pub struct WarmUpPart {
    pub step: String,
    pub share: f64,
}

#[derive(Debug, Deserialize)]
pub struct WarmUpParts {
    pub general: WarmUpPart,
    pub by_focus: BTreeMap<String, WarmUpPart>,
    pub ramp: WarmUpPart,
}

#[derive(Debug, Deserialize)]
struct RulesFile {
    major_groups: Vec<String>,
    volume: ByLevel,
    min_sets_floor: u32,
    rir: ByLevel,
    session_tolerance: f64,
    required_patterns: Vec<String>,
    injury_rules: Vec<InjuryRule>,
    tag_keywords: BTreeMap<String, Vec<String>>,
    pattern_keywords: BTreeMap<String, Vec<String>>,
    secondary_by_pattern: BTreeMap<String, Vec<String>>,
    warm_up: WarmUpParts,
    deload: String,
}

static RULES: LazyLock<RulesFile> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../data/training.json"))
        .expect("data/training.json is valid (checked by a unit test)")
});

/// The muscle groups whose weekly volume is checked.
pub fn major_groups() -> &'static [String] {
    &RULES.major_groups
}

pub fn warm_up_parts() -> &'static WarmUpParts {
    &RULES.warm_up
}

pub fn deload_advice() -> &'static str {
    &RULES.deload
}

/// Patterns a week covers; `core` is met by core or carry work.
pub fn required_patterns() -> &'static [String] {
    &RULES.required_patterns
}

/// One person's training numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingTargets {
    pub experience_level: Experience,
    /// Hard sets per week for each major muscle group, fractional counting.
    pub weekly_sets_min: u32,
    pub weekly_sets_max: u32,
    /// The level's minimum did not fit the week's minutes and was lowered.
    pub time_limited: bool,
    pub rir_min: u32,
    pub rir_max: u32,
    /// The planned minutes of a session (warm-up included) lie in this range.
    pub session_minutes_min: u32,
    pub session_minutes_max: u32,
    pub warm_up_minutes: u32,
}

/// Seconds a hard set costs on average (about 40 s of work and 80 s of
/// rest): what the week's minutes are divided by to see what volume fits.
const SET_COST_SECONDS: f64 = 120.0;
/// The share of the week's sets that the major groups can get; the rest is
/// arms, calves, core and conditioning.
const MAJOR_SHARE: f64 = 0.6;

pub fn training_targets(p: &Profile) -> TrainingTargets {
    let level = p.experience_level;
    let volume = RULES.volume.get(level);
    let warm_up = warm_up_minutes(p.session_minutes);
    let working_seconds =
        f64::from(p.training_days) * f64::from(p.session_minutes - warm_up) * 60.0;
    let fits = (working_seconds / SET_COST_SECONDS * MAJOR_SHARE / RULES.major_groups.len() as f64)
        .floor() as u32;
    let min = volume.min.min(fits.max(RULES.min_sets_floor));
    let rir = RULES.rir.get(level);
    let tol = RULES.session_tolerance;
    let minutes = f64::from(p.session_minutes);
    TrainingTargets {
        experience_level: level,
        weekly_sets_min: min,
        weekly_sets_max: volume.max,
        time_limited: min < volume.min,
        rir_min: rir.min,
        rir_max: rir.max,
        session_minutes_min: (minutes * (1.0 - tol)).ceil() as u32,
        session_minutes_max: (minutes * (1.0 + tol)).floor() as u32,
        warm_up_minutes: warm_up,
    }
}

/// About a sixth of the session, 3 to 10 minutes.
pub fn warm_up_minutes(session_minutes: u32) -> u32 {
    (f64::from(session_minutes) / 6.0).round().clamp(3.0, 10.0) as u32
}

/// The injury rules the person's injuries call for.
pub fn injury_rules(injuries: &[String]) -> Vec<&'static InjuryRule> {
    RULES
        .injury_rules
        .iter()
        .filter(|r| {
            injuries
                .iter()
                .any(|i| r.words.iter().any(|w| has_phrase(i, w)))
        })
        .collect()
}

/// Tags that the person's injuries rule out ("bad knees" → jump, lunge, deep_knee).
pub fn banned_tags(injuries: &[String]) -> HashSet<&'static str> {
    injury_rules(injuries)
        .into_iter()
        .flat_map(|r| r.avoid.iter().map(String::as_str))
        .collect()
}

/// Whether `phrase` occurs in `text` as whole words, plurals folded.
fn has_phrase(text: &str, phrase: &str) -> bool {
    let norm = |t: &str| words(t).iter().map(|w| singular(w)).collect::<Vec<_>>();
    let (text, phrase) = (norm(text), norm(phrase));
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase)
}

/// Whether a keyword occurs in a lowercased name, as text (keywords hold
/// hyphens and spaces: "push-up", "split squat").
fn mentions(name_lower: &str, keyword: &str) -> bool {
    name_lower.contains(keyword)
}

/// What the rules need to know of an exercise, from the library when the
/// name is one of its entries, else from keywords in the name.
#[derive(Debug, Clone, PartialEq)]
pub struct Traits {
    pub pattern: String,
    pub group: String,
    pub secondary: Vec<String>,
    pub tags: Vec<String>,
}

pub fn library_entry(name: &str) -> Option<&'static ExerciseDef> {
    let name = name.trim();
    library().iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

pub fn traits(e: &Exercise) -> Traits {
    if let Some(def) = library_entry(&e.name) {
        return Traits {
            pattern: def.pattern.clone(),
            group: def.group.clone(),
            secondary: def.secondary.clone(),
            tags: def.tags.clone(),
        };
    }
    let lower = e.name.to_lowercase();
    let tags = RULES
        .tag_keywords
        .iter()
        .filter(|(_, kws)| kws.iter().any(|k| mentions(&lower, k)))
        .map(|(tag, _)| tag.clone())
        .collect();
    let group = muscle_group(&e.muscle_group);
    // The order decides for names with two cues: "press" in "leg press"
    // is a squat, a "pull-through" is a hinge.
    let pattern = ["carry", "hinge", "squat", "pull", "push", "core"]
        .into_iter()
        .find(|p| {
            RULES
                .pattern_keywords
                .get(*p)
                .is_some_and(|kws| kws.iter().any(|k| mentions(&lower, k)))
        })
        .unwrap_or(if group == "conditioning" {
            "conditioning"
        } else {
            "isolation"
        })
        .to_owned();
    let secondary = RULES
        .secondary_by_pattern
        .get(&pattern)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| *s != group)
        .collect();
    Traits {
        pattern,
        group,
        secondary,
        tags,
    }
}

/// The model's muscle group in the library's words ("Quadriceps" → quads).
pub fn muscle_group(text: &str) -> String {
    let w = words(text)
        .into_iter()
        .map(|w| singular(&w))
        .collect::<Vec<_>>();
    let has = |k: &str| w.iter().any(|x| x == k);
    let table: [(&[&str], &str); 11] = [
        (&["chest", "pec", "pectoral"], "chest"),
        (&["back", "lat", "rhomboid", "trap"], "back"),
        (&["shoulder", "delt", "deltoid"], "shoulders"),
        (&["quad", "quadricep", "quadriceps"], "quads"),
        (&["hamstring"], "hamstrings"),
        (&["glute", "gluteal", "gluteus", "butt"], "glutes"),
        (&["bicep", "biceps"], "biceps"),
        (&["tricep", "triceps"], "triceps"),
        (&["calf", "calve"], "calves"),
        (&["core", "ab", "abs", "abdominal", "oblique"], "core"),
        (&["conditioning", "cardio", "interval"], "conditioning"),
    ];
    table
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| has(k)))
        .map_or_else(|| w.join(" "), |(_, g)| (*g).to_owned())
}

/// Seconds of work in one set of a prescription: reps at about 3 s each,
/// the time of a hold or an interval block, or the distance of a carry at
/// about a metre a second. "each" (side or way) doubles it.
pub fn work_seconds(reps: &str) -> f64 {
    let text = reps.to_lowercase();
    let both_sides = ["each", "per side", "per leg", "per arm"]
        .iter()
        .any(|k| text.contains(k));
    let sides = if both_sides { 2.0 } else { 1.0 };
    let numbers = numbers_in(&text);
    // "6 x 1 min hard / 1 min easy", "10 x 20 s on / 40 s off", "5 x 45 s".
    if let Some((rounds, rest)) = text.split_once(" x ") {
        let rounds = numbers_in(rounds).first().copied().unwrap_or(1.0);
        let (on, off) = rest.split_once('/').unwrap_or((rest, ""));
        let per_round = duration_seconds(on).unwrap_or(30.0)
            + duration_seconds(off).unwrap_or(if off.is_empty() { 30.0 } else { 0.0 });
        return rounds * per_round;
    }
    if let Some(seconds) = duration_seconds(&text) {
        return seconds * sides;
    }
    let mean = match numbers.as_slice() {
        [] => return 40.0,
        [n] => *n,
        [a, b, ..] => (a + b) / 2.0,
    };
    if text.contains(" m") && !text.contains("min") {
        return mean * sides;
    }
    let tempo = if text.contains("slow") { 6.0 } else { 3.0 };
    mean * tempo * sides
}

/// Seconds stated by a time ("30-45 s", "2 min", "20-30 min"), if any.
fn duration_seconds(text: &str) -> Option<f64> {
    let numbers = numbers_in(text);
    let mean = match numbers.as_slice() {
        [] => return None,
        [n] => *n,
        [a, b, ..] => (a + b) / 2.0,
    };
    let w = words(text);
    if w.iter()
        .any(|x| x == "min" || x == "minute" || x == "minutes")
    {
        Some(mean * 60.0)
    } else if w
        .iter()
        .any(|x| x == "s" || x == "sec" || x == "second" || x == "seconds")
    {
        Some(mean)
    } else {
        None
    }
}

fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse::<f64>().ok())
        .collect()
}

/// A session's planned minutes: the warm-up, then each exercise's sets of
/// work and rest.
pub fn planned_minutes(w: &Workout) -> f64 {
    let warm_up: u32 = w.warm_up.iter().map(|s| s.minutes).sum();
    let sets: f64 = w
        .exercises
        .iter()
        .map(|e| f64::from(e.sets) * (work_seconds(&e.reps) + f64::from(e.rest_seconds)))
        .sum();
    f64::from(warm_up) + sets / 60.0
}

/// Hard sets per muscle group over the week: full for the exercise's own
/// group, half for each secondary. Conditioning is not counted.
pub fn weekly_sets(plan: &WeeklyPlan) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for e in plan
        .days
        .iter()
        .filter_map(|d| d.workout.as_ref())
        .flat_map(|w| &w.exercises)
    {
        add_sets(&mut out, &traits(e), f64::from(e.sets));
    }
    out
}

pub fn add_sets(out: &mut BTreeMap<String, f64>, t: &Traits, sets: f64) {
    if t.pattern == "conditioning" {
        return;
    }
    *out.entry(t.group.clone()).or_default() += sets;
    for s in &t.secondary {
        *out.entry(s.clone()).or_default() += sets / 2.0;
    }
}

/// Whether a pattern of the week counts for a required one.
pub fn covers(pattern: &str, required: &str) -> bool {
    pattern == required || (required == "core" && pattern == "carry")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse_profile;
    use serde_json::json;

    fn profile(extra: serde_json::Value) -> Profile {
        let mut v = json!({
            "goal": "MUSCLE_GAIN", "sex": "female", "age": 30, "height_cm": 168, "weight_kg": 62,
            "activity_level": "active", "training_days": 4, "dietary_preference": "vegetarian"
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        parse_profile(&v).unwrap()
    }

    #[test]
    fn the_rules_parse_and_every_tag_and_pattern_is_known() {
        let tags: HashSet<&str> = library()
            .iter()
            .flat_map(|e| e.tags.iter().map(String::as_str))
            .collect();
        for r in &RULES.injury_rules {
            for t in &r.avoid {
                assert!(RULES.tag_keywords.contains_key(t), "{}: {t}", r.joint);
            }
        }
        for t in tags {
            assert!(RULES.tag_keywords.contains_key(t), "library tag {t}");
        }
        let patterns = [
            "squat",
            "hinge",
            "push",
            "pull",
            "core",
            "carry",
            "isolation",
            "conditioning",
        ];
        for e in library() {
            assert!(patterns.contains(&e.pattern.as_str()), "{}", e.name);
        }
        for p in required_patterns() {
            assert!(library().iter().any(|e| covers(&e.pattern, p)), "{p}");
        }
    }

    #[test]
    fn volume_follows_the_level_and_falls_only_when_the_week_is_short() {
        let beginner = training_targets(&profile(json!({})));
        assert_eq!(
            (beginner.weekly_sets_min, beginner.weekly_sets_max),
            (6, 12)
        );
        assert!(!beginner.time_limited);
        let intermediate = training_targets(&profile(json!({"experience_level": "intermediate"})));
        assert_eq!(
            (intermediate.weekly_sets_min, intermediate.weekly_sets_max),
            (10, 20)
        );
        assert_eq!((intermediate.rir_min, intermediate.rir_max), (1, 3));
        let short = training_targets(&profile(
            json!({"experience_level": "advanced", "training_days": 2, "session_minutes": 30}),
        ));
        assert!(
            short.time_limited && short.weekly_sets_min < 12,
            "{short:?}"
        );
        assert!(short.weekly_sets_min >= RULES.min_sets_floor && RULES.min_sets_floor >= 1);
        assert_eq!(
            (short.session_minutes_min, short.session_minutes_max),
            (26, 34)
        );
    }

    #[test]
    fn work_seconds_read_reps_holds_intervals_and_carries() {
        for (reps, seconds) in [
            ("8-12", 30.0),
            ("10-12 each", 66.0),
            ("3-5 slow", 24.0),
            ("30-45 s", 37.5),
            ("20-30 s each", 50.0),
            ("20-30 min", 1500.0),
            ("6 x 1 min hard / 1 min easy", 720.0),
            ("10 x 20 s on / 40 s off", 600.0),
            ("5 x 45 s", 375.0),
            ("30-40 m each", 70.0),
            ("AMRAP", 40.0),
        ] {
            assert_eq!(work_seconds(reps), seconds, "{reps}");
        }
    }

    #[test]
    fn names_outside_the_library_are_classified_by_keywords() {
        let e = |name: &str, group: &str| Exercise {
            name: name.into(),
            muscle_group: group.into(),
            ..Exercise::default()
        };
        let t = traits(&e("Seated Arnold press", "Shoulders"));
        assert_eq!(
            (t.pattern.as_str(), t.group.as_str()),
            ("push", "shoulders")
        );
        assert!(t.tags.contains(&"overhead".to_owned()));
        let t = traits(&e("Cable lateral raise", "delts"));
        assert!(t.tags.contains(&"shoulder_raise".to_owned()), "{t:?}");
        assert_eq!(
            traits(&e("Trap-bar deadlift", "Hamstrings")).pattern,
            "hinge"
        );
        assert_eq!(traits(&e("Hack squat", "Quadriceps")).group, "quads");
        assert_eq!(traits(&e("Leg press", "legs")).pattern, "squat");
        assert_eq!(traits(&e("Farmer's walk carry", "core")).pattern, "carry");
        // A library name keeps the library's facts whatever the model says.
        let t = traits(&e("dumbbell lateral raise", "chest"));
        assert_eq!(t.group, "shoulders");
    }

    #[test]
    fn injuries_name_their_rules_as_whole_words() {
        let rules = injury_rules(&["Shoulder impingement (left)".into()]);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].joint, "shoulder");
        let tags = banned_tags(&["bad knees".into(), "lower back pain".into()]);
        for t in ["jump", "lunge", "deep_knee", "spinal_load"] {
            assert!(tags.contains(t), "{t}");
        }
        assert!(banned_tags(&["backpack strap rash".into()]).is_empty());
    }
}
