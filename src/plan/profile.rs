//! The user's profile, parsed by hand from a job's `profile_snapshot`.
//!
//! Parsing walks the JSON object field by field instead of using a serde
//! derive, because a derive stops at the first bad field and the app must be
//! told about every one of them at once (INVALID_PROFILE names them all).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error_code::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Goal {
    MuscleGain,
    FatLoss,
    Maintenance,
    Recomposition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityLevel {
    Sedentary,
    LightlyActive,
    ModeratelyActive,
    Active,
    VeryActive,
}

/// How long the person has trained regularly: it sets the weekly volume and
/// how close to failure the working sets go (data/training.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Experience {
    /// Under about a year, or returning after a long break (the default: a
    /// plan that is too easy does less harm than one that is too hard).
    Beginner,
    Intermediate,
    Advanced,
}

impl Experience {
    pub fn as_str(self) -> &'static str {
        match self {
            Experience::Beginner => "beginner",
            Experience::Intermediate => "intermediate",
            Experience::Advanced => "advanced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Equipment {
    Bodyweight,
    Dumbbells,
    Barbell,
    Kettlebell,
    ResistanceBands,
    PullUpBar,
    Bench,
    CableMachine,
    Machines,
    FullGym,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DietaryPreference {
    Vegetarian,
    Eggitarian,
    NonVegetarian,
    Vegan,
}

/// A device push token. Kept for the notifier, but its `Debug` is redacted
/// and it is never serialized, so it cannot leak into logs or prompts.
#[derive(Clone, PartialEq, Eq)]
pub struct PushToken(String);

/// Longest token accepted. Expo's tokens are about 40 characters; the cap
/// keeps an arbitrary string out of the snapshot, the outbox and requests.
pub const MAX_PUSH_TOKEN_CHARS: usize = 200;

impl PushToken {
    /// Accepts only Expo's forms, `ExponentPushToken[...]` and
    /// `ExpoPushToken[...]`, whose body is letters, digits, `-` and `_`:
    /// anything else would be sent to Expo on the user's behalf. Surrounding
    /// whitespace is trimmed (apps paste tokens).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if s.chars().count() > MAX_PUSH_TOKEN_CHARS {
            return Err(format!("must be at most {MAX_PUSH_TOKEN_CHARS} characters"));
        }
        let body = ["ExponentPushToken[", "ExpoPushToken["]
            .iter()
            .find_map(|prefix| s.strip_prefix(prefix))
            .and_then(|rest| rest.strip_suffix(']'));
        match body {
            Some(b)
                if !b.is_empty()
                    && b.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Self(s.to_owned()))
            }
            // The value is not echoed: it may be someone's token.
            _ => Err(
                "must be an Expo push token, ExponentPushToken[...] or ExpoPushToken[...]"
                    .to_owned(),
            ),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushToken(<redacted>)")
    }
}

/// A validated profile. `Serialize` gives the canonical snake_case form used
/// in prompts; it leaves out `push_token` and the unknown `extra` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub goal: Goal,
    pub sex: Sex,
    pub age: u32,
    pub height_cm: f64,
    pub weight_kg: f64,
    pub activity_level: ActivityLevel,
    pub training_days: u8,
    pub session_minutes: u32,
    pub experience_level: Experience,
    pub equipment: Vec<Equipment>,
    pub dietary_preference: DietaryPreference,
    pub allergies: Vec<String>,
    pub avoided_exercises: Vec<String>,
    pub injuries: Vec<String>,
    pub meals_per_day: u8,
    /// Meal plans: cuisines the user likes (snake_case, from [`CUISINES`]);
    /// empty means any. Neutral dishes ("international") always fit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cuisine_preferences: Vec<String>,
    /// Meal plans: the most hands-on preparation a dish may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prep_minutes: Option<u32>,
    pub supplements: Vec<String>,
    pub locale: String,
    #[serde(skip)]
    pub push_token: Option<PushToken>,
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

impl Profile {
    /// Whether the user can use `e`: bodyweight always, everything with a full gym.
    pub fn has_equipment(&self, e: Equipment) -> bool {
        e == Equipment::Bodyweight
            || self.equipment.contains(&e)
            || self.equipment.contains(&Equipment::FullGym)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub fields: Vec<FieldError>,
}

impl ProfileError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidProfile
    }
}

impl std::error::Error for ProfileError {}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid profile: ")?;
        for (i, e) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

const GOALS: &[(&str, Goal)] = &[
    ("MUSCLE_GAIN", Goal::MuscleGain),
    ("FAT_LOSS", Goal::FatLoss),
    ("MAINTENANCE", Goal::Maintenance),
    ("RECOMPOSITION", Goal::Recomposition),
];
const EXPERIENCE: &[(&str, Experience)] = &[
    ("beginner", Experience::Beginner),
    ("intermediate", Experience::Intermediate),
    ("advanced", Experience::Advanced),
];
const SEXES: &[(&str, Sex)] = &[("male", Sex::Male), ("female", Sex::Female)];
const ACTIVITY_LEVELS: &[(&str, ActivityLevel)] = &[
    ("sedentary", ActivityLevel::Sedentary),
    ("lightly_active", ActivityLevel::LightlyActive),
    ("moderately_active", ActivityLevel::ModeratelyActive),
    ("active", ActivityLevel::Active),
    ("very_active", ActivityLevel::VeryActive),
];
const DIETS: &[(&str, DietaryPreference)] = &[
    ("vegetarian", DietaryPreference::Vegetarian),
    ("eggitarian", DietaryPreference::Eggitarian),
    ("non_vegetarian", DietaryPreference::NonVegetarian),
    ("vegan", DietaryPreference::Vegan),
];
/// Other spellings apps use: the seeds' "Non-veg", "non-vegetarian".
const DIET_ALIASES: &[(&str, DietaryPreference)] = &[
    ("non_veg", DietaryPreference::NonVegetarian),
    ("nonveg", DietaryPreference::NonVegetarian),
    ("non_vegeterian", DietaryPreference::NonVegetarian),
    ("nonvegetarian", DietaryPreference::NonVegetarian),
    ("omnivore", DietaryPreference::NonVegetarian),
    ("egg_vegetarian", DietaryPreference::Eggitarian),
    ("ovo_vegetarian", DietaryPreference::Eggitarian),
    ("lacto_vegetarian", DietaryPreference::Vegetarian),
];
const EQUIPMENT: &[(&str, Equipment)] = &[
    ("bodyweight", Equipment::Bodyweight),
    ("dumbbells", Equipment::Dumbbells),
    ("barbell", Equipment::Barbell),
    ("kettlebell", Equipment::Kettlebell),
    ("resistance_bands", Equipment::ResistanceBands),
    ("pull_up_bar", Equipment::PullUpBar),
    ("bench", Equipment::Bench),
    ("cable_machine", Equipment::CableMachine),
    ("machines", Equipment::Machines),
    ("full_gym", Equipment::FullGym),
];
/// Spellings that apps and LLMs commonly use for the same equipment.
const EQUIPMENT_ALIASES: &[(&str, Equipment)] = &[
    ("none", Equipment::Bodyweight),
    ("body_weight", Equipment::Bodyweight),
    ("dumbbell", Equipment::Dumbbells),
    ("barbells", Equipment::Barbell),
    ("kettlebells", Equipment::Kettlebell),
    ("resistance_band", Equipment::ResistanceBands),
    ("bands", Equipment::ResistanceBands),
    ("band", Equipment::ResistanceBands),
    ("pullup_bar", Equipment::PullUpBar),
    ("chin_up_bar", Equipment::PullUpBar),
    ("bench_press_bench", Equipment::Bench),
    ("cable", Equipment::CableMachine),
    ("cables", Equipment::CableMachine),
    ("machine", Equipment::Machines),
    ("gym", Equipment::FullGym),
    // Household things that every bodyweight exercise may use.
    ("mat", Equipment::Bodyweight),
    ("yoga_mat", Equipment::Bodyweight),
    ("exercise_mat", Equipment::Bodyweight),
    ("floor", Equipment::Bodyweight),
    ("wall", Equipment::Bodyweight),
    ("chair", Equipment::Bodyweight),
    ("towel", Equipment::Bodyweight),
    ("stairs", Equipment::Bodyweight),
    ("step", Equipment::Bodyweight),
    ("smith_machine", Equipment::Machines),
    ("leg_press", Equipment::Machines),
    ("treadmill", Equipment::Machines),
    ("exercise_bike", Equipment::Machines),
    ("stationary_bike", Equipment::Machines),
    ("rowing_machine", Equipment::Machines),
    ("ez_bar", Equipment::Barbell),
    ("ez_curl_bar", Equipment::Barbell),
    ("trap_bar", Equipment::Barbell),
    ("flat_bench", Equipment::Bench),
    ("adjustable_bench", Equipment::Bench),
];

impl Equipment {
    pub const ALL: [Equipment; 10] = [
        Equipment::Bodyweight,
        Equipment::Dumbbells,
        Equipment::Barbell,
        Equipment::Kettlebell,
        Equipment::ResistanceBands,
        Equipment::PullUpBar,
        Equipment::Bench,
        Equipment::CableMachine,
        Equipment::Machines,
        Equipment::FullGym,
    ];

    pub fn as_str(self) -> &'static str {
        lookup_name(EQUIPMENT, self)
    }

    /// Parses the vocabulary and its common spellings ("Pull-up bar", "dumbbell").
    pub fn from_loose(s: &str) -> Option<Equipment> {
        let key = normalize_token(s);
        EQUIPMENT
            .iter()
            .chain(EQUIPMENT_ALIASES)
            .find(|(name, _)| *name == key)
            .map(|(_, e)| *e)
    }
}

impl Goal {
    pub fn as_str(self) -> &'static str {
        lookup_name(GOALS, self)
    }
}

impl ActivityLevel {
    pub fn as_str(self) -> &'static str {
        lookup_name(ACTIVITY_LEVELS, self)
    }
}

impl DietaryPreference {
    pub const ALL: [DietaryPreference; 4] = [
        DietaryPreference::Vegetarian,
        DietaryPreference::Eggitarian,
        DietaryPreference::NonVegetarian,
        DietaryPreference::Vegan,
    ];

    pub fn as_str(self) -> &'static str {
        lookup_name(DIETS, self)
    }
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        lookup_name(SEXES, self)
    }
}

fn lookup_name<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(name, _)| name)
}

/// "muscleGain", "Muscle Gain", "MUSCLE-GAIN" and "muscle_gain" all become
/// "muscle_gain", so the app's enum spellings need no coordination.
fn normalize_token(s: &str) -> String {
    let s = s.trim();
    let camel = s.chars().any(char::is_lowercase) && s.chars().any(char::is_uppercase);
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if camel && c.is_uppercase() && !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        match c {
            '-' | ' ' => out.push('_'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Canonical field names and the camelCase spelling also accepted.
const FIELDS: &[(&str, &str)] = &[
    ("goal", "goal"),
    ("sex", "sex"),
    ("age", "age"),
    ("height_cm", "heightCm"),
    ("weight_kg", "weightKg"),
    ("activity_level", "activityLevel"),
    ("training_days", "trainingDays"),
    ("session_minutes", "sessionMinutes"),
    ("experience_level", "experienceLevel"),
    ("equipment", "equipment"),
    ("dietary_preference", "dietaryPreference"),
    ("allergies", "allergies"),
    ("avoided_exercises", "avoidedExercises"),
    ("injuries", "injuries"),
    ("meals_per_day", "mealsPerDay"),
    ("cuisine_preferences", "cuisinePreferences"),
    ("max_prep_minutes", "maxPrepMinutes"),
    ("supplements", "supplements"),
    ("locale", "locale"),
    ("push_token", "pushToken"),
];

const MAX_LIST_ITEMS: usize = 50;
const MAX_ITEM_CHARS: usize = 100;

/// Collects every field error while the object is walked.
struct Walk<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Walk<'a> {
    /// The value of a field under either spelling; JSON null counts as
    /// absent, so a null under one spelling never hides the other. Two
    /// different values are refused: whichever one we picked, code that
    /// reads the other spelling (SQL reads the snapshot) would see a value
    /// nobody validated.
    fn get(&self, field: &str) -> Result<Option<&'a Value>, String> {
        let Some((snake, camel)) = FIELDS.iter().find(|(s, _)| *s == field) else {
            return Ok(None);
        };
        let given = |key: &str| self.obj.get(key).filter(|v| !v.is_null());
        match (given(snake), given(camel)) {
            (Some(a), Some(b)) if a != b => Err(format!(
                "given as both {snake} and {camel} with different values; send one"
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    fn required<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        match self.get(field) {
            Ok(None) => {
                self.fail(field, "required".to_owned());
                None
            }
            Ok(Some(v)) => self.check(field, parse(v)),
            Err(message) => self.check(field, Err(message)),
        }
    }

    fn optional<T>(
        &mut self,
        field: &str,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        match self.get(field) {
            Ok(None) => Some(default),
            Ok(Some(v)) => self.check(field, parse(v)),
            Err(message) => self.check(field, Err(message)),
        }
    }

    fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|message| self.fail(field, message)).ok()
    }

    fn fail(&mut self, field: &str, message: String) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message,
        });
    }

    fn extra(&self) -> Map<String, Value> {
        let known = |k: &str| FIELDS.iter().any(|(s, c)| *s == k || *c == k);
        self.obj
            .iter()
            .filter(|(k, _)| !known(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Parses and validates a profile snapshot, reporting every bad field.
/// The paths (`a.b[2]`) of every string or key holding U+0000.
fn nul_paths(value: &Value, at: &str) -> Vec<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => vec![at.to_owned()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| nul_paths(v, &format!("{at}[{i}]")))
            .collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                if k.contains('\0') {
                    vec![join(&k.replace('\0', "\\u0000"))]
                } else {
                    nul_paths(v, &join(k))
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn parse_profile(value: &Value) -> Result<Profile, ProfileError> {
    let Some(obj) = value.as_object() else {
        return Err(ProfileError {
            fields: vec![FieldError {
                field: "profile".to_owned(),
                message: format!("must be a JSON object, got {}", kind(value)),
            }],
        });
    };
    let mut w = Walk {
        obj,
        errors: Vec::new(),
    };
    // PostgreSQL's jsonb cannot store U+0000, anywhere (unknown fields too).
    for field in nul_paths(value, "") {
        w.errors.push(FieldError {
            field,
            message: "must not contain the NUL character (\\u0000)".to_owned(),
        });
    }
    let goal = w.required("goal", |v| enum_value(v, GOALS));
    let sex = w.required("sex", |v| enum_value(v, SEXES));
    let age = w.required("age", |v| whole_in(v, 14, 100));
    let height_cm = w.required("height_cm", |v| number_in(v, 120.0, 230.0));
    let weight_kg = w.required("weight_kg", |v| number_in(v, 35.0, 300.0));
    let activity_level = w.required("activity_level", |v| enum_value(v, ACTIVITY_LEVELS));
    let training_days = w.required("training_days", |v| whole_in(v, 1, 7));
    let session_minutes = w.optional("session_minutes", 60, |v| whole_in(v, 15, 180));
    let experience = w.optional("experience_level", Experience::Beginner, |v| {
        enum_value(v, EXPERIENCE)
    });
    let equipment = w.optional("equipment", vec![Equipment::Bodyweight], equipment_list);
    let diet = w.required("dietary_preference", |v| {
        enum_value(v, DIETS).or_else(|e| {
            let key = v.as_str().map(normalize_token).unwrap_or_default();
            DIET_ALIASES
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, d)| *d)
                .ok_or(e)
        })
    });
    let allergies = w.optional("allergies", Vec::new(), string_list);
    let avoided = w.optional("avoided_exercises", Vec::new(), string_list);
    let injuries = w.optional("injuries", Vec::new(), string_list);
    let meals_per_day = w.optional("meals_per_day", 4, |v| whole_in(v, 2, 6));
    let cuisines = w.optional("cuisine_preferences", Vec::new(), cuisine_list);
    let max_prep = w.optional("max_prep_minutes", None, |v| whole_in(v, 5, 240).map(Some));
    let supplements = w.optional("supplements", Vec::new(), string_list);
    let locale = w.optional("locale", "en".to_owned(), parse_locale);
    let push_token = w.optional("push_token", None, |v| parse_push_token(v).map(Some));
    let extra = w.extra();

    // Every field was read above so that all errors are collected; only now
    // does a missing one stop the build.
    let profile = (|| {
        Some(Profile {
            goal: goal?,
            sex: sex?,
            age: age? as u32,
            height_cm: height_cm?,
            weight_kg: weight_kg?,
            activity_level: activity_level?,
            training_days: training_days? as u8,
            session_minutes: session_minutes? as u32,
            experience_level: experience?,
            equipment: equipment?,
            dietary_preference: diet?,
            allergies: allergies?,
            avoided_exercises: avoided?,
            injuries: injuries?,
            meals_per_day: meals_per_day? as u8,
            cuisine_preferences: cuisines?,
            max_prep_minutes: max_prep?.map(|m| m as u32),
            supplements: supplements?,
            locale: locale?,
            push_token: push_token?,
            extra,
        })
    })();
    match profile {
        Some(p) if w.errors.is_empty() => Ok(p),
        _ => Err(ProfileError { fields: w.errors }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn enum_value<T: Copy>(v: &Value, table: &[(&str, T)]) -> Result<T, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("must be a string, got {}", kind(v)));
    };
    let key = normalize_token(s);
    table
        .iter()
        .find(|(name, _)| name.to_ascii_lowercase() == key)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown value {s:?} (expected one of: {})",
                names.join(", ")
            )
        })
}

/// Numbers may arrive as JSON numbers or numeric strings ("72.5").
fn number(v: &Value) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| format!("must be a number, got {}", kind(v)))
}

fn number_in(v: &Value, lo: f64, hi: f64) -> Result<f64, String> {
    let n = number(v)?;
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between {lo} and {hi}, got {n}"))
    }
}

/// The cuisines of the recipe library; "international" is the neutral one.
pub const CUISINES: &[&str] = &[
    "american",
    "asian",
    "indian",
    "international",
    "italian",
    "mediterranean",
    "mexican",
    "middle_eastern",
];

/// A list of known cuisines ("Middle Eastern" and "middle-eastern" too).
fn cuisine_list(v: &Value) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in string_list(v)? {
        let key = normalize_token(&s);
        if !CUISINES.contains(&key.as_str()) {
            return Err(format!(
                "unknown cuisine {s:?} (expected any of: {})",
                CUISINES.join(", ")
            ));
        }
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

fn whole_in(v: &Value, lo: i64, hi: i64) -> Result<i64, String> {
    let n = number(v)?;
    if n.fract() != 0.0 {
        return Err(format!("must be a whole number, got {n}"));
    }
    if n < lo as f64 || n > hi as f64 {
        return Err(format!("must be between {lo} and {hi}, got {n}"));
    }
    Ok(n as i64)
}

/// Free-text entries that mean "nothing" in app forms, dropped so that an
/// allergy of "none" does not turn every meal containing "none" into a violation.
const NOTHING: &[&str] = &["none", "n/a", "na", "nil", "no", "-", "nothing"];

/// A list of strings, or one comma-separated string (what simple forms send).
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    let raw: Vec<&str> = match v {
        Value::String(s) => s.split(',').collect(),
        Value::Array(items) => {
            let strs: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            strs.ok_or("must be a list of strings")?
        }
        _ => return Err(format!("must be a list of strings, got {}", kind(v))),
    };
    let mut out: Vec<String> = Vec::new();
    for s in raw.iter().map(|s| s.trim()) {
        if s.is_empty() || NOTHING.contains(&s.to_lowercase().as_str()) {
            continue;
        }
        if s.chars().count() > MAX_ITEM_CHARS {
            return Err(format!(
                "entries must be at most {MAX_ITEM_CHARS} characters"
            ));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            out.push(s.to_owned());
        }
    }
    if out.len() > MAX_LIST_ITEMS {
        return Err(format!(
            "must have at most {MAX_LIST_ITEMS} entries, got {}",
            out.len()
        ));
    }
    Ok(out)
}

fn equipment_list(v: &Value) -> Result<Vec<Equipment>, String> {
    let names = string_list(v)?;
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| Equipment::from_loose(n).is_none())
        .map(|n| format!("{n:?}"))
        .collect();
    if !unknown.is_empty() {
        let allowed: Vec<&str> = EQUIPMENT.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown value {} (expected any of: {})",
            unknown.join(", "),
            allowed.join(", ")
        ));
    }
    let mut out: Vec<Equipment> = Vec::new();
    for e in names.iter().filter_map(|n| Equipment::from_loose(n)) {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        out.push(Equipment::Bodyweight);
    }
    Ok(out)
}

/// A BCP 47-like tag ("en", "pt-BR", "zh_Hant"); it reaches prompts, so keep it tame.
fn parse_locale(v: &Value) -> Result<String, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("must be a string, got {}", kind(v)));
    };
    let s = s.trim();
    let mut parts = s.split(['-', '_']);
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if lang_ok && rest_ok && s.len() <= 35 {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "must be a language tag like \"en\" or \"pt-BR\", got {s:?}"
        ))
    }
}

fn parse_push_token(v: &Value) -> Result<PushToken, String> {
    match v.as_str() {
        Some(s) => PushToken::parse(s),
        None => Err(format!("must be a string, got {}", kind(v))),
    }
}

#[cfg(test)]
mod tests;
