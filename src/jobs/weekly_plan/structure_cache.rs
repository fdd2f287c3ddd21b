//! Stage 1's week structure, shared by everyone whose structure inputs match
//! (goal, training days, session minutes, equipment, experience, injuries,
//! avoided exercises): on a hit the structure call is skipped. The key is a
//! hash of those fields, the model and [`PROMPT_VERSION`]; entries expire.
//! Only a structure whose week passed the validator is stored, and only its
//! days' training flags and foci: nothing that could name a person.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::types::Json;

use crate::plan::Profile;
use crate::plan::model::{DayOutline, WeekStructure};
use crate::plan::profile::{Equipment, Experience, Goal};
use crate::plan::text::words;

/// Bump when the structure prompt changes what a structure means.
pub const PROMPT_VERSION: i32 = 1;

pub const LOOKUPS: &str = "plan_structure_cache_lookups_total";

/// What a week's structure depends on, in a canonical form.
#[derive(Serialize)]
struct Inputs<'a> {
    goal: Goal,
    training_days: u8,
    session_minutes: u32,
    equipment: Vec<Equipment>,
    experience_level: Experience,
    injuries: Vec<String>,
    avoided_exercises: Vec<String>,
    model: &'a str,
    prompt_version: i32,
}

/// Lists compared as sets of their words ("Bad knees" = "bad  knees").
fn canonical(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|i| words(i).join(" "))
        .filter(|i| !i.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn key(p: &Profile, model: &str) -> String {
    let mut equipment = p.equipment.clone();
    equipment.sort();
    equipment.dedup();
    let inputs = Inputs {
        goal: p.goal,
        training_days: p.training_days,
        session_minutes: p.session_minutes,
        equipment,
        experience_level: p.experience_level,
        injuries: canonical(&p.injuries),
        avoided_exercises: canonical(&p.avoided_exercises),
        model,
        prompt_version: PROMPT_VERSION,
    };
    let json = serde_json::to_vec(&inputs).expect("structure inputs serialize");
    format!("{:x}", Sha256::digest(json))
}

/// The stored days: the training flags and foci only.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct StoredDay {
    day: u8,
    is_training_day: bool,
    focus: String,
}

/// A live entry's structure with this person's daily targets, counting the hit.
pub async fn get(
    db: &PgPool,
    key: &str,
    kcal: u32,
    protein_g: u32,
) -> sqlx::Result<Option<WeekStructure>> {
    let row: Option<(Json<Vec<StoredDay>>,)> = sqlx::query_as(
        "update plan_structure_cache set hits = hits + 1 \
         where key = $1 and expires_at > now() returning days",
    )
    .bind(key)
    .fetch_optional(db)
    .await?;
    let structure = row.map(|(Json(days),)| WeekStructure {
        days: days
            .into_iter()
            .map(|d| DayOutline {
                day: d.day,
                is_training_day: d.is_training_day,
                focus: d.focus,
                kcal,
                protein_g,
            })
            .collect(),
        rationale: "The same arrangement of training days and foci as earlier plans for the same \
                    goal, schedule, equipment, experience and restrictions."
            .to_owned(),
    });
    let result = if structure.is_some() { "hit" } else { "miss" };
    metrics::counter!(LOOKUPS, "result" => result).increment(1);
    Ok(structure)
}

/// Stores (or renews) the structure of a week that passed the validator;
/// expired entries are cleared a few at a time on the way.
pub async fn put(
    db: &PgPool,
    key: &str,
    model: &str,
    s: &WeekStructure,
    ttl: Duration,
) -> sqlx::Result<()> {
    let days: Vec<StoredDay> = s
        .days
        .iter()
        .map(|d| StoredDay {
            day: d.day,
            is_training_day: d.is_training_day,
            focus: d.focus.clone(),
        })
        .collect();
    sqlx::query(
        "with expired as ( \
             delete from plan_structure_cache where key in ( \
                 select key from plan_structure_cache where expires_at <= now() limit 100)) \
         insert into plan_structure_cache (key, model, prompt_version, days, expires_at) \
         values ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
         on conflict (key) do update set days = excluded.days, expires_at = excluded.expires_at, \
             created_at = now(), hits = 0 \
         where plan_structure_cache.expires_at <= now()",
    )
    .bind(key)
    .bind(model)
    .bind(PROMPT_VERSION)
    .bind(Json(days))
    .bind(ttl.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_profile;
    use serde_json::json;

    fn profile(extra: serde_json::Value) -> Profile {
        let mut v = json!({
            "goal": "FAT_LOSS", "sex": "female", "age": 30, "height_cm": 165, "weight_kg": 70,
            "activity_level": "active", "training_days": 3, "dietary_preference": "vegan",
            "equipment": ["dumbbells", "bench"], "injuries": ["Bad knees"]
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        parse_profile(&v).unwrap()
    }

    #[test]
    fn the_key_depends_on_the_structure_inputs_and_nothing_personal() {
        let base = key(&profile(json!({})), "m");
        for same in [
            json!({"weight_kg": 95, "age": 52, "sex": "male", "dietary_preference": "vegetarian"}),
            json!({"equipment": ["bench", "dumbbells", "bench"]}),
            json!({"injuries": ["bad   knees"], "allergies": ["peanuts"]}),
        ] {
            assert_eq!(key(&profile(same.clone()), "m"), base, "{same}");
        }
        for other in [
            json!({"training_days": 4}),
            json!({"session_minutes": 45}),
            json!({"equipment": ["full_gym"]}),
            json!({"experience_level": "advanced"}),
            json!({"injuries": []}),
            json!({"avoided_exercises": ["burpees"]}),
            json!({"goal": "MUSCLE_GAIN"}),
        ] {
            assert_ne!(key(&profile(other.clone()), "m"), base, "{other}");
        }
        assert_ne!(key(&profile(json!({})), "other-model"), base);
        assert_eq!(base.len(), 64);
    }
}
