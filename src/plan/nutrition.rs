//! Daily calorie and macro targets: the one implementation that the worker,
//! the API and `plan-worker targets` share, so the app never keeps a copy.
//!
//! Sources (see specs/external-apis.md §4):
//! - BMR: Mifflin MD, St Jeor ST et al., "A new predictive equation for resting
//!   energy expenditure in healthy individuals", Am J Clin Nutr 1990;51(2):241-7.
//! - Activity factors: the multipliers published with it (Medscape calculator 846).
//! - Protein: ISSN position stand, Jäger et al., JISSN 2017;14:20, per kg of
//!   a reference weight (goal body weight at BMI 25 for BMI 25 and above).
//! - Macro split: IOM AMDR 2005 (protein 10-35 %, fat 20-35 %, carbohydrate
//!   45-65 % of energy), 4/4/9 kcal per gram.

use serde::{Deserialize, Serialize};

use super::profile::{ActivityLevel, Goal, Profile, Sex};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub bmr_kcal: f64,
    pub activity_factor: f64,
    pub tdee_kcal: f64,
    /// Fraction of TDEE added (+) or removed (-) for the goal.
    pub goal_adjustment: f64,
    pub kcal: u32,
    pub protein_g: u32,
    pub fat_g: u32,
    pub carbs_g: u32,
    pub kcal_floor: u32,
    pub clamped_to_floor: bool,
    /// The bodyweight protein and the fat minimum are computed on (see
    /// `protein_reference_kg`); equals weight_kg below BMI 25.
    pub protein_reference_kg: f64,
    /// Which weight that is: `actual_body_weight` or `goal_body_weight_bmi_25`.
    pub protein_reference: String,
    /// Protein per kg of the reference weight, as set.
    pub protein_g_per_kg: f64,
    /// Shares of energy from protein, fat and carbohydrate (4/9/4 kcal/g).
    pub energy_shares: EnergyShares,
}

/// Fractions of the day's energy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnergyShares {
    pub protein: f64,
    pub fat: f64,
    pub carbs: f64,
}

/// Mifflin-St Jeor (1990), kcal/day: 10·kg + 6.25·cm − 5·age, +5 men, −161 women.
pub fn bmr_kcal(sex: Sex, weight_kg: f64, height_cm: f64, age: u32) -> f64 {
    let base = 10.0 * weight_kg + 6.25 * height_cm - 5.0 * f64::from(age);
    match sex {
        Sex::Male => base + 5.0,
        Sex::Female => base - 161.0,
    }
}

pub fn activity_factor(level: ActivityLevel) -> f64 {
    match level {
        ActivityLevel::Sedentary => 1.2,
        ActivityLevel::LightlyActive => 1.375,
        ActivityLevel::ModeratelyActive => 1.55,
        ActivityLevel::Active => 1.725,
        ActivityLevel::VeryActive => 1.9,
    }
}

/// Goal adjustment as a fraction of TDEE.
///
/// | goal          | adj   | source |
/// |---------------|-------|--------|
/// | FAT_LOSS      | −0.20 | NHLBI: a 500-1,000 kcal/day deficit; −20 % is the middle of the −15…−25 % band apps use; Aragon et al. 2017 (ISSN) favour slower loss for lean people |
/// | MAINTENANCE   | 0     | by definition |
/// | RECOMPOSITION | −0.10 | a heuristic: between maintenance and a mild deficit, with high protein; no position stand gives a number |
/// | MUSCLE_GAIN   | +0.10 | Iraki et al., Sports 2019;7(7):154: a ~10-20 % surplus |
///
/// Muscle gain takes the low end of Iraki's band on purpose: the old server
/// used 1.10 and the app 1.15, and users saw two numbers. One number now, and
/// the low end limits fat gain for the novice-to-intermediate users we serve.
pub fn goal_adjustment(goal: Goal) -> f64 {
    match goal {
        Goal::FatLoss => -0.20,
        Goal::Maintenance => 0.0,
        Goal::Recomposition => -0.10,
        Goal::MuscleGain => 0.10,
    }
}

/// Protein in g per kg of bodyweight (Jäger 2017: 1.4-2.0 for most exercisers,
/// more in a deficit; Iraki 2019: 1.6-2.2 when gaining).
pub fn protein_g_per_kg(goal: Goal) -> f64 {
    match goal {
        Goal::Maintenance => 1.6,
        Goal::MuscleGain => 1.8,
        Goal::FatLoss => 2.2,
        Goal::Recomposition => 2.0,
    }
}

/// "Should not fall below 1,200 (women) or 1,500 (men) kcal/day except under
/// medical supervision" (a convention close to NHLBI's low-calorie-diet range).
pub fn kcal_floor(sex: Sex) -> u32 {
    match sex {
        Sex::Female => 1200,
        Sex::Male => 1500,
    }
}

const FAT_SHARE_OF_KCAL: f64 = 0.25;
const MIN_FAT_G_PER_KG: f64 = 0.5;
/// AMDR bounds (IOM 2005).
const FAT_SHARE: (f64, f64) = (0.20, 0.35);
const MAX_PROTEIN_SHARE: f64 = 0.35;
const MIN_CARBS_SHARE: f64 = 0.45;
/// From this BMI up, protein per kg of actual weight overshoots (ISSN).
const REFERENCE_BMI: f64 = 25.0;

/// g/kg figures come from studies of people of healthy weight; from BMI 25
/// up they overshoot (2.2 g × 150 kg = 330 g). The reference is then the goal
/// body weight, the weight of BMI 25 for the height (continuous at 25).
pub fn protein_reference_kg(weight_kg: f64, height_cm: f64) -> f64 {
    let height_m = height_cm / 100.0;
    weight_kg.min(REFERENCE_BMI * height_m * height_m)
}

pub fn targets(p: &Profile) -> Targets {
    let bmr = bmr_kcal(p.sex, p.weight_kg, p.height_cm, p.age);
    let factor = activity_factor(p.activity_level);
    let tdee = bmr * factor;
    let adjustment = goal_adjustment(p.goal);
    let floor = kcal_floor(p.sex);
    let goal_kcal = (tdee * (1.0 + adjustment)).round();
    let clamped = goal_kcal < f64::from(floor);
    let kcal = if clamped { floor } else { goal_kcal as u32 };
    let reference_kg = protein_reference_kg(p.weight_kg, p.height_cm);
    let basis = if reference_kg < p.weight_kg {
        "goal_body_weight_bmi_25"
    } else {
        "actual_body_weight"
    };
    let (protein_g, fat_g, carbs_g) = macros(kcal, reference_kg, protein_g_per_kg(p.goal));
    let e = f64::from(kcal);
    Targets {
        bmr_kcal: bmr,
        activity_factor: factor,
        tdee_kcal: tdee,
        goal_adjustment: adjustment,
        kcal,
        protein_g,
        fat_g,
        carbs_g,
        kcal_floor: floor,
        clamped_to_floor: clamped,
        protein_reference_kg: reference_kg,
        protein_reference: basis.to_owned(),
        protein_g_per_kg: (f64::from(protein_g) / reference_kg * 1000.0).round() / 1000.0,
        energy_shares: EnergyShares {
            protein: share(4.0 * f64::from(protein_g), e),
            fat: share(9.0 * f64::from(fat_g), e),
            carbs: share(4.0 * f64::from(carbs_g), e),
        },
    }
}

fn share(part: f64, whole: f64) -> f64 {
    (part / whole * 1000.0).round() / 1000.0
}

/// Fat at 25 % of energy but at least 0.5 g/kg, inside the AMDR's 20-35 %;
/// protein by g/kg, capped so that it stays at most 35 % and carbohydrate
/// keeps at least 45 %; carbohydrate takes the rest. 4p + 4c + 9f lands
/// within a few kcal of `kcal`.
fn macros(kcal: u32, reference_kg: f64, protein_per_kg: f64) -> (u32, u32, u32) {
    let kcal = f64::from(kcal);
    let fat_share = (FAT_SHARE_OF_KCAL.max(reference_kg * MIN_FAT_G_PER_KG * 9.0 / kcal))
        .clamp(FAT_SHARE.0, FAT_SHARE.1);
    let fat = (kcal * fat_share / 9.0).round();
    let protein_cap = MAX_PROTEIN_SHARE.min(1.0 - MIN_CARBS_SHARE - fat * 9.0 / kcal);
    let protein = (reference_kg * protein_per_kg)
        .min((kcal * protein_cap / 4.0).floor())
        .round();
    let carbs = ((kcal - protein * 4.0 - fat * 9.0) / 4.0).round().max(0.0);
    (protein as u32, fat as u32, carbs as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse_profile;
    use serde_json::json;

    fn profile(goal: &str, sex: &str, age: u32, cm: f64, kg: f64, activity: &str) -> Profile {
        parse_profile(&json!({
            "goal": goal, "sex": sex, "age": age, "height_cm": cm, "weight_kg": kg,
            "activity_level": activity, "training_days": 3, "dietary_preference": "vegan"
        }))
        .unwrap()
    }

    fn macros_of(t: &Targets) -> (u32, u32, u32, u32) {
        (t.kcal, t.protein_g, t.fat_g, t.carbs_g)
    }

    #[test]
    fn a_moderately_active_man_gaining_muscle_gets_a_ten_percent_surplus() {
        // BMR = 800 + 1125 − 150 + 5 = 1780; TDEE = 1780 × 1.55 = 2759
        // kcal = 2759 × 1.10 = 3034.9 → 3035; protein = 1.8 × 80 = 144 (BMI 24.7)
        // fat = 3035 × 0.25 / 9 = 84.3 → 84; carbs = (3035 − 576 − 756) / 4 = 425.75 → 426
        let t = targets(&profile(
            "MUSCLE_GAIN",
            "male",
            30,
            180.0,
            80.0,
            "moderately_active",
        ));
        assert_eq!(t.bmr_kcal, 1780.0);
        assert!((t.tdee_kcal - 2759.0).abs() < 1e-9);
        assert_eq!(macros_of(&t), (3035, 144, 84, 426));
        assert!(!t.clamped_to_floor);
    }

    #[test]
    fn a_lightly_active_woman_losing_fat_gets_a_twenty_percent_deficit() {
        // BMR = 600 + 1031.25 − 125 − 161 = 1345.25; TDEE = × 1.375 = 1849.72
        // kcal = 1849.72 × 0.80 = 1479.78 → 1480; fat = 1480 × 0.25 / 9 = 41.1 → 41
        // protein = 2.2 × 60 = 132 capped at (1 − 0.45 − 369/1480) × 1480 / 4 = 111.25 → 111
        // carbs = (1480 − 444 − 369) / 4 = 166.75 → 167
        let t = targets(&profile(
            "FAT_LOSS",
            "female",
            25,
            165.0,
            60.0,
            "lightly_active",
        ));
        assert_eq!(t.bmr_kcal, 1345.25);
        assert_eq!(macros_of(&t), (1480, 111, 41, 167));
    }

    #[test]
    fn a_sedentary_man_maintaining_eats_his_tdee() {
        // BMR = 900 + 1100 − 225 + 5 = 1780; kcal = 1780 × 1.2 = 2136
        // BMI 29.1: reference = 25 × 1.76² = 77.44 kg; protein = 1.6 × 77.44 = 123.9 → 124
        // fat = 2136 × 0.25 / 9 = 59.3 → 59; carbs = (2136 − 496 − 531) / 4 = 277.25 → 277
        let t = targets(&profile(
            "MAINTENANCE",
            "male",
            45,
            176.0,
            90.0,
            "sedentary",
        ));
        assert_eq!(macros_of(&t), (2136, 124, 59, 277));
        assert_eq!(t.goal_adjustment, 0.0);
        assert!((t.protein_reference_kg - 77.44).abs() < 1e-9);
        assert_eq!(t.protein_reference, "goal_body_weight_bmi_25");
    }

    #[test]
    fn an_active_woman_recomposing_gets_a_ten_percent_deficit_and_high_protein() {
        // BMR = 660 + 1062.5 − 175 − 161 = 1386.5; TDEE = × 1.725 = 2391.71
        // kcal = 2391.71 × 0.90 = 2152.54 → 2153; protein = 2.0 × 66 = 132 (BMI 22.8)
        // fat = 2153 × 0.25 / 9 = 59.8 → 60; carbs = (2153 − 528 − 540) / 4 = 271.25 → 271
        let t = targets(&profile(
            "RECOMPOSITION",
            "female",
            35,
            170.0,
            66.0,
            "active",
        ));
        assert_eq!(macros_of(&t), (2153, 132, 60, 271));
    }

    #[test]
    fn a_very_active_man_losing_fat_keeps_his_protein_high() {
        // BMR = 760 + 1156.25 − 110 + 5 = 1811.25; TDEE = × 1.9 = 3441.375
        // kcal = 3441.375 × 0.80 = 2753.1 → 2753; protein = 2.2 × 76 = 167.2 → 167
        // fat = 2753 × 0.25 / 9 = 76.5 → 76; carbs = (2753 − 668 − 684) / 4 = 350.25 → 350
        // (protein 24 %, carbohydrate 51 %: inside the AMDR, no cap)
        let t = targets(&profile("FAT_LOSS", "male", 22, 185.0, 76.0, "very_active"));
        assert_eq!(macros_of(&t), (2753, 167, 76, 350));
    }

    #[test]
    fn a_small_older_woman_is_clamped_to_the_1200_kcal_floor() {
        // BMR = 450 + 937.5 − 350 − 161 = 876.5; TDEE = × 1.2 = 1051.8
        // goal = 1051.8 × 0.80 = 841.4 < 1200 → 1200, clamped; fat = 1200 × 0.25 / 9 = 33.3 → 33
        // protein = 2.2 × 45 = 99 capped at (1 − 0.45 − 297/1200) × 1200 / 4 = 90.75 → 90
        // carbs = (1200 − 360 − 297) / 4 = 135.75 → 136
        let t = targets(&profile("FAT_LOSS", "female", 70, 150.0, 45.0, "sedentary"));
        assert_eq!(macros_of(&t), (1200, 90, 33, 136));
        assert!(t.clamped_to_floor);
        assert_eq!(t.kcal_floor, 1200);
    }

    #[test]
    fn a_small_older_man_is_clamped_to_the_1500_kcal_floor() {
        // BMR = 500 + 1000 − 400 + 5 = 1105; goal = 1105 × 1.2 × 0.8 = 1060.8 → 1500
        // fat = 1500 × 0.25 / 9 = 41.7 → 42; protein = 2.2 × 50 = 110 ≤ cap 112
        // carbs = (1500 − 440 − 378) / 4 = 170.5 → 171
        let t = targets(&profile("FAT_LOSS", "male", 80, 160.0, 50.0, "sedentary"));
        assert_eq!(macros_of(&t), (1500, 110, 42, 171));
        assert!(t.clamped_to_floor);
    }

    #[test]
    fn protein_from_bmi_25_uses_the_goal_body_weight_and_stays_inside_the_amdr() {
        // reference = 25 × 1.6² = 64 kg; BMR = 1200 + 1000 − 200 − 161 = 1839
        // kcal = 1839 × 1.2 × 0.8 = 1765.44 → 1765; fat = 1765 × 0.25 / 9 = 49.03 → 49
        // protein = 2.2 × 64 = 140.8 capped at (1 − 0.45 − 441/1765) × 1765 / 4 = 132.5 → 132
        // carbs = (1765 − 528 − 441) / 4 = 199
        let t = targets(&profile(
            "FAT_LOSS",
            "female",
            40,
            160.0,
            120.0,
            "sedentary",
        ));
        assert!((t.protein_reference_kg - 64.0).abs() < 1e-9);
        assert_eq!(t.protein_reference, "goal_body_weight_bmi_25");
        assert_eq!(macros_of(&t), (1765, 132, 49, 199));
    }

    #[test]
    fn the_vegan_fat_loss_sample_no_longer_gets_41_percent_protein() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../examples/profiles/fat-loss-vegan-home.json"
        ))
        .unwrap();
        let t = targets(&parse_profile(&v).unwrap());
        assert!(t.energy_shares.protein <= 0.35, "{t:?}");
        assert!((0.20..=0.35).contains(&t.energy_shares.fat), "{t:?}");
        assert!(t.energy_shares.carbs >= 0.449, "{t:?}");
        let per_kg = t.protein_g_per_kg;
        assert!((1.4..=2.3).contains(&per_kg), "ISSN range: {per_kg}");
    }

    #[test]
    fn macros_add_up_to_the_calories_at_every_corner_of_the_profile_ranges() {
        for sex in ["male", "female"] {
            for goal in ["MUSCLE_GAIN", "FAT_LOSS", "MAINTENANCE", "RECOMPOSITION"] {
                for (age, cm, kg) in [
                    (14, 120.0, 35.0),
                    (100, 230.0, 300.0),
                    (14, 120.0, 300.0),
                    (100, 230.0, 35.0),
                ] {
                    let t = targets(&profile(goal, sex, age, cm, kg, "sedentary"));
                    let sum = 4 * t.protein_g + 4 * t.carbs_g + 9 * t.fat_g;
                    assert!(
                        sum.abs_diff(t.kcal) <= 4,
                        "{sex} {goal} {age} {cm} {kg}: {t:?}"
                    );
                    assert!(t.kcal >= t.kcal_floor);
                    let sh = t.energy_shares;
                    assert!(sh.protein <= 0.351, "{sex} {goal} {age} {cm} {kg}: {t:?}");
                    assert!((0.199..=0.351).contains(&sh.fat), "{t:?}");
                    assert!(sh.carbs >= 0.449, "{t:?}");
                }
            }
        }
    }
}
