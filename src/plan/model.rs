//! The plan as JSON: what the LLM is asked to return and what is saved in
//! `weekly_base_plans.plan`. Names stay plain snake_case for the model's sake.
//!
//! Deserialization forgives what LLMs vary in practice (numbers as strings,
//! units after numbers, null for absent, a single string for a list) but
//! refuses what would be a guess: a kcal "range", a negative amount, a
//! fractional day. Ranges of sets, rest and sleep ("60-90 s") read as their
//! midpoint, a fair single value for a prescription that was a range.
//! Rest days carry `"workout": null`; the fixer turns an empty workout into null.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Text that usually comes from the compiled-in food table: borrowed from
/// it (no copy per ingredient of every plan in flight), owned when it came
/// from outside (a model's answer, a saved plan read back).
pub type TableText = Cow<'static, str>;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WeeklyPlan {
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub days: Vec<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The week's ingredients summed per food (computed, never the model's).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub grocery_list: Vec<GroceryItem>,
}

/// One food of the week's shopping, with the week's total grams.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroceryItem {
    pub id: TableText,
    pub name: TableText,
    pub source: TableText,
    pub code: TableText,
    /// Food group, for the aisle.
    pub group: TableText,
    pub grams: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// 1 = Monday … 7 = Sunday.
    #[serde(deserialize_with = "lenient::day_number")]
    pub day: u8,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub is_training_day: bool,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub workout: Option<Workout>,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub nutrition: Nutrition,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub recovery: Recovery,
    #[serde(default, deserialize_with = "lenient::string")]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Workout {
    #[serde(default, deserialize_with = "lenient::string")]
    pub focus: String,
    #[serde(default, deserialize_with = "lenient::minutes")]
    pub duration_minutes: u32,
    /// Steps before the first working set; their minutes count in the session.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub warm_up: Vec<WarmUpStep>,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub exercises: Vec<Exercise>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WarmUpStep {
    #[serde(default, deserialize_with = "lenient::string")]
    pub step: String,
    #[serde(default, deserialize_with = "lenient::minutes")]
    pub minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Exercise {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::count")]
    pub sets: u32,
    /// Free text on purpose: "8-12", "30 s", "AMRAP" are all real prescriptions.
    #[serde(default, deserialize_with = "lenient::string")]
    pub reps: String,
    #[serde(default, deserialize_with = "lenient::seconds")]
    pub rest_seconds: u32,
    #[serde(default, deserialize_with = "lenient::string")]
    pub equipment: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub muscle_group: String,
    /// Reps in reserve on the working sets (0 = to failure); none for
    /// conditioning, where effort is set by the intervals.
    #[serde(default, deserialize_with = "lenient::opt_count")]
    pub rir: Option<u32>,
    /// How the exercise gets harder from week to week.
    #[serde(default, deserialize_with = "lenient::string")]
    pub progression: String,
}

/// A day's food. The numbers are the sums of the meals (computed from the
/// food table by the portion solver, never taken from the model).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Nutrition {
    #[serde(default, deserialize_with = "lenient::amount")]
    pub kcal: u32,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub protein_g: u32,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub fat_g: u32,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub carbs_g: u32,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub meals: Vec<Meal>,
}

/// A meal: ingredients in grams from the food table; its numbers are the
/// sums of its ingredients.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meal {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    /// breakfast, lunch, dinner or snack.
    #[serde(default, deserialize_with = "lenient::string")]
    pub slot: String,
    /// A meal plan's dish: its cuisine (snake_case, e.g. "middle_eastern").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub cuisine: Option<String>,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub ingredients: Vec<Ingredient>,
    /// The ingredients' names (kept for readers of the weekly plan's old
    /// shape; meal plans have none).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::string_list"
    )]
    pub items: Vec<String>,
    /// A meal plan's dish: how to cook it, in order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::string_list"
    )]
    pub steps: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_minutes"
    )]
    pub prep_minutes: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_minutes"
    )]
    pub cook_minutes: Option<u32>,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub kcal: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub protein_g: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub fat_g: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub carbs_g: f64,
    /// A meal plan's photo (Unsplash, with attribution): `null` until the
    /// images job found one, absent on weekly plans.
    #[serde(default, skip_serializing_if = "MealImage::is_absent")]
    pub image: MealImage,
}

/// A meal's photo slot. Weekly plans' meals have none (`Absent`, not
/// written); a meal plan's meals always carry the key, `null` until found.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MealImage {
    #[default]
    Absent,
    Missing,
    Photo(Value),
}

impl MealImage {
    pub fn is_absent(&self) -> bool {
        matches!(self, MealImage::Absent)
    }
    pub fn photo(&self) -> Option<&Value> {
        match self {
            MealImage::Photo(v) => Some(v),
            _ => None,
        }
    }
}

impl Serialize for MealImage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MealImage::Photo(v) => v.serialize(s),
            MealImage::Absent | MealImage::Missing => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for MealImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Object(m) => MealImage::Photo(Value::Object(m)),
            // A model may invent an image: the images job finds real ones.
            _ => MealImage::Missing,
        })
    }
}

/// An amount of one food of the table. The model sends `id` and `grams`;
/// everything else is filled in from the table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ingredient {
    #[serde(default, alias = "food_id", deserialize_with = "lenient::text")]
    pub id: TableText,
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: TableText,
    #[serde(default, deserialize_with = "lenient::text")]
    pub source: TableText,
    #[serde(default, deserialize_with = "lenient::text")]
    pub code: TableText,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub grams: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub kcal: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub protein_g: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub fat_g: f64,
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub carbs_g: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recovery {
    #[serde(default, deserialize_with = "lenient::hours")]
    pub sleep_hours: f64,
    #[serde(default, deserialize_with = "lenient::string_list")]
    pub mobility: Vec<String>,
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub supplement_card: Vec<SupplementAdvice>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SupplementAdvice {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub dose: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub timing: String,
    /// Evidence level from the guide: "A", "B" or "C".
    #[serde(default, deserialize_with = "lenient::string")]
    pub evidence: String,
}

/// Stage 1: which days train, their focus, and the nutrition frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WeekStructure {
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub days: Vec<DayOutline>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayOutline {
    #[serde(deserialize_with = "lenient::day_number")]
    pub day: u8,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub is_training_day: bool,
    #[serde(default, deserialize_with = "lenient::string")]
    pub focus: String,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub kcal: u32,
    #[serde(default, deserialize_with = "lenient::amount")]
    pub protein_g: u32,
}

impl DayOutline {
    /// The stage-1 outline of a finished day (its focus, or "Rest").
    pub fn of(day: &Day) -> Self {
        DayOutline {
            day: day.day,
            is_training_day: day.is_training_day,
            focus: day
                .workout
                .as_ref()
                .map_or_else(|| "Rest".to_owned(), |w| w.focus.clone()),
            kcal: day.nutrition.kcal,
            protein_g: day.nutrition.protein_g,
        }
    }
}

pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// "Monday" for 1 … "Sunday" for 7; empty outside the week.
pub fn weekday_name(day: u8) -> &'static str {
    match day {
        1..=7 => WEEKDAYS[usize::from(day) - 1],
        _ => "",
    }
}

/// Parses a model's plan answer. Models sometimes wrap the object
/// (`{"plan": {...}}`) or send the bare list of days; both are unwrapped.
pub fn parse_plan(value: Value) -> Result<WeeklyPlan, serde_json::Error> {
    serde_json::from_value(unwrap_days(value))
}

/// Parses a model's stage-1 answer, unwrapping like `parse_plan`.
pub fn parse_structure(value: Value) -> Result<WeekStructure, serde_json::Error> {
    serde_json::from_value(unwrap_days(value))
}

/// `{"plan": {"days": ...}}` or a bare list of days, as `{"days": ...}`.
pub(crate) fn unwrap_days(value: Value) -> Value {
    match value {
        Value::Array(days) => serde_json::json!({ "days": days }),
        Value::Object(mut map) if !map.contains_key("days") && map.len() == 1 => {
            let (_, inner) = map.iter_mut().next().expect("one entry");
            if inner.get("days").is_some() {
                inner.take()
            } else {
                Value::Object(map)
            }
        }
        other => other,
    }
}

mod lenient {
    //! Field deserializers that read through a `serde_json::Value`, so one
    //! function can accept the several shapes a model might send.

    use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error};
    use serde_json::Value;

    use super::WEEKDAYS;

    /// null → `T::default()`, anything else as `T` would read it.
    pub fn or_default<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
        d: D,
    ) -> Result<T, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(v).map_err(D::Error::custom)
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(D::Error::custom(format!("expected a string, got {other}"))),
        }
    }

    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let item = |v: Value| match v {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(D::Error::custom(format!("expected a string, got {other}"))),
        };
        match Value::deserialize(d)? {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items.into_iter().map(item).collect(),
            other => Ok(vec![item(other)?]),
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => Ok(true),
                "false" | "no" => Ok(false),
                _ => Err(D::Error::custom(format!(
                    "expected true or false, got {s:?}"
                ))),
            },
            other => Err(D::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }

    /// 1..7, "3", or a weekday name ("Wednesday", "wed").
    pub fn day_number<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let v = Value::deserialize(d)?;
        if let Some(s) = v.as_str() {
            let s = s.trim().to_ascii_lowercase();
            let by_name = WEEKDAYS
                .iter()
                .position(|w| s.len() >= 3 && w.to_ascii_lowercase().starts_with(&s));
            if let Some(i) = by_name {
                return Ok(i as u8 + 1);
            }
        }
        // A day is an identity, not an amount: no ranges, no fractions.
        let (n, unit) = number_and_unit(&v).map_err(D::Error::custom)?;
        if v.as_str().is_some_and(is_range) || !unit.is_empty() || n.fract() != 0.0 || n > 255.0 {
            return Err(D::Error::custom(format!(
                "expected a day number 1-7, got {v}"
            )));
        }
        Ok(n as u8)
    }

    /// kcal and grams: 250, "250", "250 kcal", "30g". A range is refused:
    /// picking a number inside it would silently change the plan's totals.
    pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = Value::deserialize(d)?;
        if v.as_str().is_some_and(is_range) {
            return Err(D::Error::custom(format!(
                "expected one number, got the range {v}"
            )));
        }
        quantity(&v, &["", "kcal", "cal", "calories", "g", "grams"]).map_err(D::Error::custom)
    }

    /// Sets: 3, "3", "3 sets"; a range "3-4" becomes its rounded midpoint.
    pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        quantity(&Value::deserialize(d)?, &["", "sets", "x"]).map_err(D::Error::custom)
    }

    /// Reps in reserve: 2, "2", "2 RIR"; a range "1-2" becomes its rounded
    /// midpoint. Anything else is read as missing, which the validator
    /// names (one odd field should cost a repair, not the whole plan).
    pub fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        let (n, unit) = match number_and_unit(&v) {
            Ok(read) => read,
            Err(_) => return Ok(None),
        };
        let unit = unit.to_ascii_lowercase();
        Ok(["", "rir", "reps in reserve"]
            .contains(&unit.as_str())
            .then(|| n.round() as u32))
    }

    pub fn minutes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        quantity(&Value::deserialize(d)?, &["", "min", "mins", "minutes"]).map_err(D::Error::custom)
    }

    /// Rest: 90, "90s", "90 seconds", "1.5 min", or a range "60-90" (its midpoint).
    pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = Value::deserialize(d)?;
        let (n, unit) = number_and_unit(&v).map_err(D::Error::custom)?;
        let scale = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            _ => return Err(D::Error::custom(format!("unknown unit in {v}"))),
        };
        Ok((n * scale).round() as u32)
    }

    /// Sleep: 8, "7.5 hours", or a range "7-9" (its midpoint).
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let s = string(d)?;
        Ok((!s.trim().is_empty()).then(|| s.trim().to_owned()))
    }

    pub fn opt_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        quantity(&v, &["", "min", "mins", "minutes"])
            .map(Some)
            .map_err(D::Error::custom)
    }

    /// `string`, as owned table text.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<super::TableText, D::Error> {
        string(d).map(std::borrow::Cow::Owned)
    }

    /// A non-negative quantity that may have decimals ("120 g", "12.5").
    pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(0.0);
        }
        if v.as_str().is_some_and(is_range) {
            return Err(D::Error::custom(format!("expected one number, got {v}")));
        }
        let (n, _) = number_and_unit(&v).map_err(D::Error::custom)?;
        if n < 0.0 {
            return Err(D::Error::custom(format!("must not be negative, got {n}")));
        }
        Ok(n)
    }

    pub fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = Value::deserialize(d)?;
        let (n, unit) = number_and_unit(&v).map_err(D::Error::custom)?;
        match unit.as_str() {
            "" | "h" | "hr" | "hrs" | "hour" | "hours" => Ok(n),
            _ => Err(D::Error::custom(format!("unknown unit in {v}"))),
        }
    }

    fn is_range(s: &str) -> bool {
        let s = s.trim();
        s.get(1..)
            .is_some_and(|rest| rest.contains(['-', '–']) || rest.contains(" to "))
    }

    /// A whole, non-negative number with one of the allowed units.
    fn quantity(v: &Value, units: &[&str]) -> Result<u32, String> {
        let (n, unit) = number_and_unit(v)?;
        if !units.contains(&unit.as_str()) {
            return Err(format!("unexpected unit {unit:?} in {v}"));
        }
        if n > f64::from(u32::MAX) {
            return Err(format!("{v} is too large"));
        }
        Ok(n.round() as u32)
    }

    /// Reads a number (or "a-b" range, as its midpoint) and the unit after it.
    fn number_and_unit(v: &Value) -> Result<(f64, String), String> {
        let (n, unit) = match v {
            Value::Null => (0.0, String::new()),
            Value::Number(n) => (n.as_f64().unwrap_or(f64::NAN), String::new()),
            Value::String(s) => {
                parse_text(s).ok_or_else(|| format!("expected a number, got {s:?}"))?
            }
            other => return Err(format!("expected a number, got {other}")),
        };
        if !n.is_finite() || n < 0.0 {
            return Err(format!("expected a non-negative number, got {v}"));
        }
        Ok((n, unit))
    }

    fn parse_text(s: &str) -> Option<(f64, String)> {
        let s = s.trim().to_ascii_lowercase();
        let (first, rest) = split_number(&s)?;
        let rest = rest.trim_start();
        let range_rest = rest
            .strip_prefix('-')
            .or_else(|| rest.strip_prefix('–'))
            .or_else(|| rest.strip_prefix("to "));
        let (n, unit) = match range_rest.and_then(|r| split_number(r.trim_start())) {
            Some((second, unit)) => ((first + second) / 2.0, unit),
            None => (first, rest),
        };
        Some((n, unit.trim().to_owned()))
    }

    fn split_number(s: &str) -> Option<(f64, &str)> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let n = s[..end].parse::<f64>().ok()?;
        Some((n, &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day_json() -> Value {
        json!({
            "day": 1, "name": "Monday", "is_training_day": true,
            "workout": {"focus": "Push", "duration_minutes": 60,
                "warm_up": [{"step": "Easy bike", "minutes": 5}], "exercises": [
                {"name": "Push-up", "sets": 3, "reps": "8-12", "rest_seconds": 90,
                 "equipment": "bodyweight", "muscle_group": "chest", "rir": 2,
                 "progression": "Add a rep each week."}]},
            "nutrition": {"kcal": 2000, "protein_g": 150, "fat_g": 60, "carbs_g": 240, "meals": [
                {"name": "Lunch", "slot": "lunch", "items": ["Lentils"], "kcal": 352.0,
                 "protein_g": 24.6, "fat_g": 1.1, "carbs_g": 63.4,
                 "ingredients": [{"id": "lentils_raw", "name": "Lentils", "source": "usda_sr28",
                   "code": "16069", "grams": 100.0, "kcal": 352.0, "protein_g": 24.6,
                   "fat_g": 1.1, "carbs_g": 63.4, "household": "0.5 cup"}]}]},
            "recovery": {"sleep_hours": 8.0, "mobility": ["hip flexor stretch"],
                "supplement_card": [{"name": "Creatine", "dose": "3-5 g", "timing": "any", "evidence": "A"}],
                "notes": ""},
            "reason": "Push day."
        })
    }

    #[test]
    fn a_well_formed_plan_round_trips_unchanged() {
        let plan =
            parse_plan(json!({ "days": [day_json()], "notes": "n", "grocery_list": [] })).unwrap();
        let back = serde_json::to_value(&plan).unwrap();
        assert_eq!(back["days"][0], day_json());
        assert_eq!(parse_plan(back).unwrap(), plan);
    }

    #[test]
    fn numbers_sent_as_strings_with_units_are_read() {
        let mut d = day_json();
        d["day"] = json!("Wednesday");
        d["is_training_day"] = json!("true");
        d["nutrition"]["kcal"] = json!("2000 kcal");
        d["nutrition"]["meals"][0]["protein_g"] = json!("150g");
        d["workout"]["exercises"][0]["sets"] = json!("3");
        d["workout"]["exercises"][0]["reps"] = json!(10);
        d["workout"]["exercises"][0]["rest_seconds"] = json!("1.5 min");
        d["recovery"]["sleep_hours"] = json!("7-9 hours");
        let day = &parse_plan(json!({ "days": [d] })).unwrap().days[0];
        assert_eq!(day.day, 3);
        assert!(day.is_training_day);
        assert_eq!(day.nutrition.kcal, 2000);
        assert_eq!(day.nutrition.meals[0].protein_g, 150.0);
        let ex = &day.workout.as_ref().unwrap().exercises[0];
        assert_eq!((ex.sets, ex.reps.as_str(), ex.rest_seconds), (3, "10", 90));
        assert_eq!(day.recovery.sleep_hours, 8.0);
    }

    #[test]
    fn missing_and_null_optional_parts_default_instead_of_failing() {
        let plan = parse_plan(json!({ "days": [
            {"day": 6, "workout": null, "nutrition": {"meals": null}, "recovery": null}
        ]}))
        .unwrap();
        let d = &plan.days[0];
        assert!(d.workout.is_none() && !d.is_training_day && d.reason.is_empty());
        assert!(d.nutrition.meals.is_empty() && d.recovery.supplement_card.is_empty());
    }

    #[test]
    fn a_calorie_range_or_negative_amount_is_refused_rather_than_guessed() {
        for bad in [
            json!("1800-2000"),
            json!(-5),
            json!("lots"),
            json!("300 lbs"),
        ] {
            let mut d = day_json();
            d["nutrition"]["kcal"] = bad.clone();
            assert!(
                parse_plan(json!({ "days": [d] })).is_err(),
                "{bad} was accepted"
            );
        }
        assert!(parse_plan(json!({ "days": [{"name": "no day number"}] })).is_err());
        for bad_day in [json!("1-2"), json!(2.5), json!("someday")] {
            assert!(
                parse_plan(json!({ "days": [{ "day": bad_day }] })).is_err(),
                "{bad_day}"
            );
        }
    }

    #[test]
    fn a_wrapped_plan_or_a_bare_list_of_days_is_unwrapped() {
        let wrapped = parse_plan(json!({ "weekly_plan": { "days": [day_json()] } })).unwrap();
        let bare = parse_plan(json!([day_json()])).unwrap();
        assert_eq!(wrapped.days.len(), 1);
        assert_eq!(wrapped, bare);
    }

    #[test]
    fn the_week_structure_reads_loosely_typed_outlines() {
        let s = parse_structure(json!({
            "days": [{"day": "1", "is_training_day": "yes", "focus": "Legs", "kcal": "2100", "protein_g": 140}],
            "rationale": "r"
        }))
        .unwrap();
        assert_eq!(s.days[0].day, 1);
        assert!(s.days[0].is_training_day);
        assert_eq!((s.days[0].kcal, s.days[0].protein_g), (2100, 140));
    }

    #[test]
    fn weekday_names_follow_iso_numbering() {
        assert_eq!(weekday_name(1), "Monday");
        assert_eq!(weekday_name(7), "Sunday");
        assert_eq!(weekday_name(8), "");
    }
}
