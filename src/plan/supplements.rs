//! The supplement guide (`data/supplements.json`): what the prompts quote and
//! what the fixer and the offline generator put on a day's supplement card.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::diet::{AllergyMatcher, diet_violation};
use super::model::SupplementAdvice;
use super::profile::{DietaryPreference, Profile};
use super::text::words;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    A,
    B,
    C,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::A => "A",
            Evidence::B => "B",
            Evidence::C => "C",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supplement {
    pub id: String,
    pub group: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub evidence: Evidence,
    pub dose: String,
    pub timing: String,
    pub cautions: String,
    pub vegan_friendly: bool,
    pub vegetarian_friendly: bool,
    pub adults_only: bool,
    pub training_days_only: bool,
    pub core_for: Vec<String>,
    pub source: String,
}

#[derive(Deserialize)]
struct GuideFile {
    supplements: Vec<Supplement>,
}

static GUIDE: LazyLock<Vec<Supplement>> = LazyLock::new(|| {
    let file: GuideFile = serde_json::from_str(include_str!("../../data/supplements.json"))
        .expect("data/supplements.json is valid (checked by a unit test)");
    file.supplements
});

/// Every entry, in file order (the order of preference within a group).
pub fn guide() -> &'static [Supplement] {
    &GUIDE
}

impl Supplement {
    fn is_core_for(&self, diet: DietaryPreference) -> bool {
        self.core_for
            .iter()
            .any(|d| d == "all" || d == diet.as_str())
    }

    /// Whether a user asking for `wanted` means this entry: one of its
    /// names appears as whole words ("creatine hcl" means creatine).
    fn is_named_by(&self, wanted: &str) -> bool {
        let wanted = words(wanted);
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|n| words(n))
            .any(|n| !n.is_empty() && wanted.windows(n.len()).any(|w| w == n))
    }

    pub fn advice(&self) -> SupplementAdvice {
        SupplementAdvice {
            name: self.name.clone(),
            dose: self.dose.clone(),
            timing: self.timing.clone(),
            evidence: self.evidence.as_str().to_owned(),
        }
    }
}

/// The guide's entry a card names: by its name or aliases as whole words
/// ("Creatine monohydrate", "creatine").
pub fn named(name: &str) -> Option<&'static Supplement> {
    let name = name.trim();
    guide()
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .or_else(|| guide().iter().find(|s| s.is_named_by(name)))
}

/// Whether the entry fits the user's diet, allergies and age.
pub fn suits(s: &Supplement, p: &Profile) -> bool {
    let diet_ok = match p.dietary_preference {
        DietaryPreference::Vegan => s.vegan_friendly,
        DietaryPreference::Vegetarian | DietaryPreference::Eggitarian => s.vegetarian_friendly,
        DietaryPreference::NonVegetarian => true,
    };
    diet_ok
        && diet_violation(&s.name, p.dietary_preference).is_none()
        && AllergyMatcher::new(&p.allergies).find(&s.name).is_none()
        && !(s.adults_only && p.age < 18)
}

/// The entries for this user: the core ones for the diet plus the ones asked
/// for, one per group, each the first entry of its group that suits them
/// (a vegan asking for whey gets plant protein).
pub fn relevant(p: &Profile) -> Vec<&'static Supplement> {
    let wanted_group = |s: &Supplement| p.supplements.iter().any(|w| s.is_named_by(w));
    let mut groups: Vec<&str> = Vec::new();
    for s in guide() {
        if (s.is_core_for(p.dietary_preference) || wanted_group(s))
            && !groups.contains(&s.group.as_str())
        {
            groups.push(&s.group);
        }
    }
    groups
        .into_iter()
        .filter_map(|g| guide().iter().find(|s| s.group == g && suits(s, p)))
        .collect()
}

/// Supplements the user asked for that will not appear, with the reason,
/// so that prompts can explain instead of silently dropping them.
pub fn declined(p: &Profile) -> Vec<String> {
    let chosen = relevant(p);
    p.supplements
        .iter()
        .filter_map(|w| {
            let named: Vec<&Supplement> = guide().iter().filter(|s| s.is_named_by(w)).collect();
            if named.is_empty() {
                Some(format!("{w} (not in the guide)"))
            } else if !named
                .iter()
                .any(|s| chosen.iter().any(|c| c.group == s.group))
            {
                Some(format!(
                    "{w} (not suitable for this user's diet, allergies or age)"
                ))
            } else {
                None
            }
        })
        .collect()
}

/// A day's supplement card; pre-workout items only on training days.
pub fn card(p: &Profile, is_training_day: bool) -> Vec<SupplementAdvice> {
    relevant(p)
        .into_iter()
        .filter(|s| is_training_day || !s.training_days_only)
        .map(Supplement::advice)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse_profile;
    use serde_json::json;

    fn profile(diet: &str, age: u32, wanted: &[&str], allergies: &[&str]) -> Profile {
        parse_profile(&json!({
            "goal": "MAINTENANCE", "sex": "female", "age": age, "height_cm": 165, "weight_kg": 60,
            "activity_level": "active", "training_days": 3, "dietary_preference": diet,
            "supplements": wanted, "allergies": allergies
        }))
        .unwrap()
    }

    fn ids(p: &Profile) -> Vec<&'static str> {
        relevant(p).iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn the_guide_parses_with_the_expected_entries() {
        let ids: Vec<&str> = guide().iter().map(|s| s.id.as_str()).collect();
        for id in [
            "creatine_monohydrate",
            "whey_protein",
            "caffeine",
            "vitamin_d",
            "melatonin",
            "ashwagandha",
        ] {
            assert!(ids.contains(&id), "{id}");
        }
    }

    #[test]
    fn a_vegan_gets_only_vegan_friendly_entries_including_b12() {
        let p = profile("vegan", 30, &["whey", "fish oil"], &[]);
        let got = ids(&p);
        assert!(relevant(&p).iter().all(|s| s.vegan_friendly));
        assert!(got.contains(&"plant_protein") && got.contains(&"omega3_algae_oil"));
        assert!(got.contains(&"vitamin_b12"));
        assert!(!got.contains(&"whey_protein"));
    }

    #[test]
    fn a_meat_eater_gets_fish_oil_and_whey_only_when_asked() {
        let got = ids(&profile("non_vegetarian", 30, &[], &[]));
        assert_eq!(
            got,
            ["creatine_monohydrate", "vitamin_d", "omega3_fish_oil"]
        );
        let asked = ids(&profile("non_vegetarian", 30, &["protein shake"], &[]));
        assert_eq!(asked[1], "whey_protein", "{asked:?}");
    }

    #[test]
    fn allergies_move_to_the_next_suitable_entry_of_the_group() {
        let got = ids(&profile(
            "non_vegetarian",
            30,
            &["protein powder"],
            &["dairy", "fish"],
        ));
        assert!(got.contains(&"plant_protein") && got.contains(&"omega3_algae_oil"));
    }

    #[test]
    fn teenagers_get_no_adults_only_entries_and_hear_why() {
        let p = profile("vegetarian", 16, &["caffeine", "unicorn dust"], &[]);
        assert!(relevant(&p).iter().all(|s| !s.adults_only));
        let declined = declined(&p);
        assert_eq!(declined.len(), 2);
        assert!(declined[0].starts_with("caffeine (not suitable"));
        assert_eq!(declined[1], "unicorn dust (not in the guide)");
    }

    #[test]
    fn caffeine_is_on_the_card_only_on_training_days() {
        let p = profile("vegetarian", 30, &["caffeine"], &[]);
        assert!(card(&p, true).iter().any(|a| a.name == "Caffeine"));
        assert!(!card(&p, false).iter().any(|a| a.name == "Caffeine"));
    }
}
