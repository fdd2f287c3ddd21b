use super::*;
use serde_json::json;

fn valid() -> Value {
    json!({
        "goal": "MUSCLE_GAIN", "sex": "male", "age": 30, "height_cm": 180,
        "weight_kg": 80, "activity_level": "moderately_active", "training_days": 4,
        "dietary_preference": "vegetarian"
    })
}

#[test]
fn a_minimal_profile_gets_the_documented_defaults() {
    let p = parse_profile(&valid()).unwrap();
    assert_eq!(p.goal, Goal::MuscleGain);
    assert_eq!(p.session_minutes, 60);
    assert_eq!(p.equipment, vec![Equipment::Bodyweight]);
    assert_eq!(p.meals_per_day, 4);
    assert_eq!(p.locale, "en");
    assert!(p.allergies.is_empty() && p.push_token.is_none());
}

#[test]
fn camel_case_keys_and_loose_enum_spellings_are_accepted() {
    let v = json!({
        "goal": "muscleGain", "sex": "Female", "age": "41", "heightCm": 165.5,
        "weightKg": "62.3", "activityLevel": "Lightly Active", "trainingDays": 3,
        "sessionMinutes": 45, "dietaryPreference": "non-vegetarian",
        "avoidedExercises": ["Burpees"], "mealsPerDay": 5,
        "equipment": ["Dumbbell", "Pull-up bar"], "pushToken": "ExponentPushToken[x]"
    });
    let p = parse_profile(&v).unwrap();
    assert_eq!(p.goal, Goal::MuscleGain);
    assert_eq!(p.sex, Sex::Female);
    assert_eq!(p.age, 41);
    assert_eq!(p.weight_kg, 62.3);
    assert_eq!(p.activity_level, ActivityLevel::LightlyActive);
    assert_eq!(p.dietary_preference, DietaryPreference::NonVegetarian);
    assert_eq!(
        p.equipment,
        vec![Equipment::Dumbbells, Equipment::PullUpBar]
    );
    assert_eq!(p.avoided_exercises, vec!["Burpees"]);
    assert_eq!(p.meals_per_day, 5);
    assert_eq!(
        p.push_token.as_ref().unwrap().expose(),
        "ExponentPushToken[x]"
    );
}

#[test]
fn every_bad_field_is_reported_with_its_canonical_name() {
    let mut v = valid();
    v["age"] = json!(7);
    v.as_object_mut().unwrap().remove("height_cm");
    v["goal"] = json!("BULK");
    v["mealsPerDay"] = json!(9);
    let err = parse_profile(&v).unwrap_err();
    let names: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["goal", "age", "height_cm", "meals_per_day"]);
    let text = err.to_string();
    assert!(
        text.starts_with("invalid profile: goal: unknown value \"BULK\""),
        "{text}"
    );
    assert!(
        text.contains("age: must be between 14 and 100, got 7"),
        "{text}"
    );
    assert!(text.contains("height_cm: required"), "{text}");
    assert_eq!(err.code(), ErrorCode::InvalidProfile);
}

#[test]
fn wrong_types_fractions_and_unknown_equipment_are_errors_not_guesses() {
    let mut v = valid();
    v["training_days"] = json!(3.5);
    v["sex"] = json!(1);
    v["equipment"] = json!(["dumbbells", "spaceship"]);
    v["allergies"] = json!([1, 2]);
    v["locale"] = json!("english please");
    let err = parse_profile(&v).unwrap_err();
    let names: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        names,
        ["sex", "training_days", "equipment", "allergies", "locale"]
    );
    assert!(err.to_string().contains("\"spaceship\""));
}

#[test]
fn a_non_object_snapshot_is_one_clear_error() {
    let err = parse_profile(&json!([1, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid profile: profile: must be a JSON object, got an array"
    );
}

#[test]
fn unknown_fields_are_kept_aside_and_nulls_mean_absent() {
    let mut v = valid();
    v["favourite_colour"] = json!("teal");
    v["session_minutes"] = Value::Null;
    let p = parse_profile(&v).unwrap();
    assert_eq!(p.extra.get("favourite_colour"), Some(&json!("teal")));
    assert_eq!(p.session_minutes, 60);
}

#[test]
fn placeholder_entries_and_comma_strings_become_clean_lists() {
    let mut v = valid();
    v["allergies"] = json!("peanuts, none , Peanuts,shellfish");
    v["injuries"] = json!(["None"]);
    let p = parse_profile(&v).unwrap();
    assert_eq!(p.allergies, vec!["peanuts", "shellfish"]);
    assert!(p.injuries.is_empty());
}

#[test]
fn the_push_token_never_reaches_debug_output_or_serialization() {
    let mut v = valid();
    v["push_token"] = json!("ExponentPushToken[secret]");
    let p = parse_profile(&v).unwrap();
    assert!(!format!("{p:?}").contains("secret"));
    assert!(!serde_json::to_string(&p).unwrap().contains("secret"));
}

#[test]
fn the_canonical_serialization_parses_back_to_the_same_profile() {
    let mut v = valid();
    v["equipment"] = json!(["full_gym"]);
    v["allergies"] = json!(["sesame"]);
    let p = parse_profile(&v).unwrap();
    let canonical = serde_json::to_value(&p).unwrap();
    assert_eq!(canonical["goal"], "MUSCLE_GAIN");
    assert_eq!(canonical["activity_level"], "moderately_active");
    assert_eq!(parse_profile(&canonical).unwrap(), p);
}

#[test]
fn full_gym_implies_every_piece_of_equipment() {
    let mut v = valid();
    v["equipment"] = json!(["full_gym"]);
    let p = parse_profile(&v).unwrap();
    assert!(Equipment::ALL.iter().all(|e| p.has_equipment(*e)));
    let bw = parse_profile(&valid()).unwrap();
    assert!(bw.has_equipment(Equipment::Bodyweight) && !bw.has_equipment(Equipment::Barbell));
}

#[test]
fn the_seeds_diet_spellings_are_accepted() {
    for (spelling, diet) in [
        ("Vegetarian", DietaryPreference::Vegetarian),
        ("Eggitarian", DietaryPreference::Eggitarian),
        ("Non-veg", DietaryPreference::NonVegetarian),
        ("non-vegetarian", DietaryPreference::NonVegetarian),
        ("Vegan", DietaryPreference::Vegan),
    ] {
        let mut v = valid();
        v["dietary_preference"] = json!(spelling);
        let p = parse_profile(&v).unwrap_or_else(|e| panic!("{spelling}: {e}"));
        assert_eq!(p.dietary_preference, diet, "{spelling}");
    }
    let mut v = valid();
    v["dietary_preference"] = json!("carnivore");
    let err = parse_profile(&v).unwrap_err();
    assert_eq!(err.fields[0].field, "dietary_preference");
}

#[test]
fn only_expo_push_tokens_are_accepted_and_the_error_names_the_field() {
    for good in [
        "ExponentPushToken[xXx-_09]",
        "ExpoPushToken[abc]",
        " ExponentPushToken[x] ",
    ] {
        let mut v = valid();
        v["pushToken"] = json!(good);
        let p = parse_profile(&v).unwrap_or_else(|e| panic!("{good:?}: {e:?}"));
        assert_eq!(p.push_token.unwrap().expose(), good.trim());
    }
    let long = format!("ExponentPushToken[{}]", "a".repeat(60_000));
    for bad in [
        json!({"evil": [1, 2, 3]}),
        json!(12345),
        json!(long),
        json!("not-a-token"),
        json!("ExponentPushToken[]"),
        json!("ExponentPushToken[a b]"),
        json!("ExponentPushToken[a]x"),
        json!("ExponentPushToken[a\"}]"),
        json!(""),
    ] {
        for spelling in ["push_token", "pushToken"] {
            let mut v = valid();
            v[spelling] = bad.clone();
            let err = parse_profile(&v).expect_err(&format!("{spelling}: {bad:.40}"));
            assert_eq!(err.fields.len(), 1);
            assert_eq!(err.fields[0].field, "push_token");
            assert!(
                !err.fields[0].message.contains("aaaa"),
                "the value is not echoed"
            );
        }
    }
}

#[test]
fn a_null_under_one_spelling_never_lets_the_other_through_unvalidated() {
    let mut v = valid();
    v["push_token"] = json!(null);
    v["pushToken"] = json!({"evil": [1, 2, 3]});
    let err = parse_profile(&v).unwrap_err();
    assert_eq!(err.fields[0].field, "push_token");

    v["pushToken"] = json!("ExponentPushToken[ok]");
    let p = parse_profile(&v).unwrap();
    assert_eq!(p.push_token.unwrap().expose(), "ExponentPushToken[ok]");
}

#[test]
fn two_different_values_under_the_two_spellings_are_refused() {
    let mut v = valid();
    v["push_token"] = json!("ExponentPushToken[a]");
    v["pushToken"] = json!("ExponentPushToken[b]");
    let err = parse_profile(&v).unwrap_err();
    assert_eq!(err.fields[0].field, "push_token");
    assert!(err.fields[0].message.contains("both"), "{err:?}");

    v["pushToken"] = json!("ExponentPushToken[a]");
    assert!(
        parse_profile(&v).is_ok(),
        "the same value twice is one value"
    );
}

#[test]
fn a_nul_character_anywhere_is_refused_naming_its_field() {
    let mut v = valid();
    v["name"] = json!("Ali\u{0}ce");
    v["extra"] = json!({"note": "x\u{0}"});
    let err = parse_profile(&v).unwrap_err();
    let fields: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        ["extra.note", "name"],
        "only the NULs are wrong here"
    );
    v["equipment"] = json!(["Dumbbell", "Pull\u{0}-up bar"]);
    let err = parse_profile(&v).unwrap_err();
    let fields: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
    for want in ["name", "equipment[1]", "extra.note"] {
        assert!(fields.contains(&want), "{want} in {fields:?}");
    }
    assert!(err.fields.iter().any(|f| f.message.contains("NUL")));
}
