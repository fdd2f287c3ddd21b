//! Does a meal name or food item break the user's diet or allergies?
//!
//! The keyword lists live in `data/diet_keywords.json` so that dishes and
//! languages can be added without touching code. Matching is on whole words
//! (so "eggplant" is not egg) with per-category exceptions ("coconut milk" is
//! not dairy) and neutralizing qualifiers ("vegan cheese").

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::profile::DietaryPreference;
use super::text::{singular, words as tokenize};

/// The animal-product categories a diet can forbid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FoodCategory {
    Meat,
    Fish,
    Shellfish,
    Egg,
    Dairy,
    OtherAnimal,
}

impl FoodCategory {
    pub const ALL: [FoodCategory; 6] = [
        FoodCategory::Meat,
        FoodCategory::Fish,
        FoodCategory::Shellfish,
        FoodCategory::Egg,
        FoodCategory::Dairy,
        FoodCategory::OtherAnimal,
    ];

    /// The key of the category in `diet_keywords.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            FoodCategory::Meat => "meat",
            FoodCategory::Fish => "fish",
            FoodCategory::Shellfish => "shellfish",
            FoodCategory::Egg => "egg",
            FoodCategory::Dairy => "dairy",
            FoodCategory::OtherAnimal => "other_animal",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FoodCategory::Meat => "meat or poultry (including gelatin, lard, broths)",
            FoodCategory::Fish => "fish (including fish sauce, anchovy, dashi)",
            FoodCategory::Shellfish => "shellfish or other seafood",
            FoodCategory::Egg => "eggs (including mayonnaise, meringue, custard)",
            FoodCategory::Dairy => "dairy (milk, cheese, butter, ghee, yogurt, paneer, whey)",
            FoodCategory::OtherAnimal => "other animal products (honey, beeswax, carmine)",
        }
    }
}

/// What each diet excludes: vegetarian no meat, fish or eggs; eggitarian no
/// meat or fish; vegan no animal products at all.
pub fn forbidden_categories(diet: DietaryPreference) -> &'static [FoodCategory] {
    use FoodCategory::*;
    match diet {
        DietaryPreference::NonVegetarian => &[],
        DietaryPreference::Eggitarian => &[Meat, Fish, Shellfish],
        DietaryPreference::Vegetarian => &[Meat, Fish, Shellfish, Egg],
        DietaryPreference::Vegan => &[Meat, Fish, Shellfish, Egg, Dairy, OtherAnimal],
    }
}

/// A keyword found in a text, and the category or allergy it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub category: String,
    pub keyword: String,
}

/// The first word of `text` that the diet forbids, if any.
pub fn diet_violation(text: &str, diet: DietaryPreference) -> Option<Hit> {
    let forbidden: Vec<usize> = forbidden_categories(diet)
        .iter()
        .map(|c| KEYWORDS.id_of(*c))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    let index = &KEYWORDS.index;
    let (cat, keyword) = index
        .hits(&tokenize(text), &|c| forbidden.contains(&c), true)
        .pop()?;
    Some(Hit {
        category: index.names[cat].clone(),
        keyword,
    })
}

/// Every animal-product category found in `text`. It does not depend on the
/// diet, so a library can compute it once per dish.
pub fn categories_in(text: &str) -> Vec<FoodCategory> {
    let found = KEYWORDS.index.hits(&tokenize(text), &|_| true, false);
    FoodCategory::ALL
        .into_iter()
        .filter(|c| found.iter().any(|(cat, _)| *cat == KEYWORDS.id_of(*c)))
        .collect()
}

/// One sentence per diet, for prompts, from the same data the validator uses.
pub fn diet_rule_text(diet: DietaryPreference) -> String {
    let forbidden = forbidden_categories(diet);
    if forbidden.is_empty() {
        return "non_vegetarian: every food is allowed (allergies still apply).".to_owned();
    }
    let labels: Vec<&str> = forbidden.iter().map(|c| c.label()).collect();
    let allowed = match diet {
        DietaryPreference::Eggitarian => " Eggs and dairy are allowed.",
        DietaryPreference::Vegetarian => " Dairy is allowed.",
        _ => "",
    };
    format!(
        "{}: no {} in any meal name or item, not even in sauces, broths or baked goods.{allowed}",
        diet.as_str(),
        labels.join("; no ")
    )
}

/// Matches meal texts against a user's allergies. An allergy that names a
/// known group ("dairy", "tree nuts", "gluten") covers the group's keywords;
/// anything else ("strawberries") is matched as the words themselves.
pub struct AllergyMatcher {
    rules: Vec<(String, AllergyRule)>,
}

enum AllergyRule {
    Groups(Vec<usize>),
    Literal(Index),
}

impl AllergyMatcher {
    pub fn new(allergies: &[String]) -> Self {
        let rules = allergies
            .iter()
            .filter_map(|a| Some((a.clone(), allergy_rule(a)?)))
            .collect();
        AllergyMatcher { rules }
    }

    /// The first allergy that `text` contains, with the word that matched.
    pub fn find(&self, text: &str) -> Option<Hit> {
        if self.rules.is_empty() {
            return None;
        }
        let tokens = tokenize(text);
        self.rules.iter().find_map(|(allergy, rule)| {
            let mut hits = match rule {
                AllergyRule::Groups(ids) => {
                    KEYWORDS.index.hits(&tokens, &|c| ids.contains(&c), true)
                }
                AllergyRule::Literal(index) => index.hits(&tokens, &|_| true, true),
            };
            Some(Hit {
                category: allergy.clone(),
                keyword: hits.pop()?.1,
            })
        })
    }
}

/// The keyword groups an allergy names ("tree nuts" -> tree_nut, "dairy" ->
/// dairy), empty when it names a food of its own ("strawberries").
pub fn allergy_groups(allergy: &str) -> Vec<&'static str> {
    let words: Vec<String> = tokenize(allergy)
        .into_iter()
        .filter(|t| !ALLERGY_FILLER.contains(&t.as_str()))
        .collect();
    let Some(last) = words.last() else {
        return Vec::new();
    };
    let with_last = |w: String| [&words[..words.len() - 1], &[w]].concat().join(" ");
    singular_forms(last)
        .map(with_last)
        .find_map(|p| KEYWORDS.allergy_aliases.get_key_value(&p))
        .map(|(_, groups)| groups.iter().filter_map(|g| group_name(g)).collect())
        .unwrap_or_default()
}

/// The static name of a keyword group.
fn group_name(g: &str) -> Option<&'static str> {
    const GROUPS: [&str; 11] = [
        "meat",
        "fish",
        "shellfish",
        "egg",
        "dairy",
        "other_animal",
        "gluten",
        "tree_nut",
        "peanut",
        "soy",
        "sesame",
    ];
    GROUPS.into_iter().find(|n| *n == g)
}

/// Words that describe the allergy rather than name the food.
const ALLERGY_FILLER: &[&str] = &[
    "allergy",
    "allergies",
    "allergic",
    "to",
    "intolerance",
    "intolerant",
    "sensitivity",
    "sensitive",
    "free",
    "product",
    "products",
    "severe",
    "mild",
];

fn allergy_rule(allergy: &str) -> Option<AllergyRule> {
    let words: Vec<String> = tokenize(allergy)
        .into_iter()
        .filter(|t| !ALLERGY_FILLER.contains(&t.as_str()))
        .collect();
    let last = words.last()?;
    let aliases = &KEYWORDS.allergy_aliases;
    let with_last = |w: String| [&words[..words.len() - 1], &[w]].concat().join(" ");
    let alias = singular_forms(last)
        .map(with_last)
        .find_map(|p| aliases.get(&p));
    match alias {
        Some(groups) => {
            let ids = groups.iter().filter_map(|g| KEYWORDS.index.id(g)).collect();
            Some(AllergyRule::Groups(ids))
        }
        None => {
            let mut index = Index::default();
            let id = index.add_category("literal", &[], &[]);
            index.add_keyword(&with_last(singular(last)), id);
            Some(AllergyRule::Literal(index))
        }
    }
}

/// The token itself and what it would be without a plural ending.
fn singular_forms(token: &str) -> impl Iterator<Item = String> + '_ {
    let ies = token.strip_suffix("ies").map(|s| format!("{s}y"));
    let es = token.strip_suffix("es").map(str::to_owned);
    let s = token.strip_suffix('s').map(str::to_owned);
    std::iter::once(token.to_owned())
        .chain(ies)
        .chain(es)
        .chain(s)
}

/// `token` is `word` or (if allowed) a plural of it. Called for every
/// keyword at every position, so it compares slices instead of allocating.
fn word_matches(token: &str, word: &str, plural_ok: bool) -> bool {
    if token == word {
        return true;
    }
    plural_ok
        && (token.strip_suffix('s') == Some(word)
            || token.strip_suffix("es") == Some(word)
            || token
                .strip_suffix("ies")
                .is_some_and(|stem| word.strip_suffix('y') == Some(stem)))
}

fn phrase_at(tokens: &[String], i: usize, phrase: &[String]) -> bool {
    tokens.len() >= i + phrase.len()
        && phrase.iter().enumerate().all(|(k, w)| {
            let last = k + 1 == phrase.len();
            word_matches(&tokens[i + k], w, last)
        })
}

#[derive(Deserialize)]
struct RawCategory {
    keywords: Vec<String>,
    exceptions: Vec<String>,
    neutralizers: Vec<String>,
}

#[derive(Deserialize)]
struct RawKeywords {
    categories: HashMap<String, RawCategory>,
    allergy_aliases: HashMap<String, Vec<String>>,
}

struct Keywords {
    index: Index,
    /// Index ids of `FoodCategory::ALL`, in that order.
    food_ids: Vec<usize>,
    allergy_aliases: HashMap<String, Vec<String>>,
}

impl Keywords {
    fn id_of(&self, c: FoodCategory) -> usize {
        self.food_ids[c as usize]
    }
}

static KEYWORDS: LazyLock<Keywords> = LazyLock::new(|| {
    let raw: RawKeywords = serde_json::from_str(include_str!("../../data/diet_keywords.json"))
        .expect("data/diet_keywords.json is valid (checked by a unit test)");
    let mut index = Index::default();
    for (name, c) in &raw.categories {
        let id = index.add_category(name, &c.exceptions, &c.neutralizers);
        for k in &c.keywords {
            index.add_keyword(k, id);
        }
    }
    let food_ids = FoodCategory::ALL
        .iter()
        .map(|c| {
            index
                .id(c.as_str())
                .expect("every FoodCategory is in diet_keywords.json")
        })
        .collect();
    Keywords {
        index,
        food_ids,
        allergy_aliases: raw.allergy_aliases,
    }
});

type Phrase = Vec<String>;

/// Every category's keywords compiled into one index, so that a text is
/// scanned once for all categories: this runs for every item of every plan.
#[derive(Default)]
struct Index {
    /// Category names, by id.
    names: Vec<String>,
    words: HashMap<String, Vec<usize>>,
    /// Multi-word keywords, by their first word.
    phrases: HashMap<String, Vec<(Phrase, usize)>>,
    prefixes: Vec<(String, usize)>,
    suffixes: Vec<(String, usize)>,
    exceptions: Vec<Vec<Phrase>>,
    neutralizers: Vec<Vec<Phrase>>,
}

impl Index {
    fn id(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn add_category(
        &mut self,
        name: &str,
        exceptions: &[String],
        neutralizers: &[String],
    ) -> usize {
        self.names.push(name.to_owned());
        self.exceptions
            .push(exceptions.iter().map(|e| tokenize(e)).collect());
        self.neutralizers
            .push(neutralizers.iter().map(|n| tokenize(n)).collect());
        self.names.len() - 1
    }

    fn add_keyword(&mut self, keyword: &str, cat: usize) {
        let k = keyword.to_lowercase();
        if let Some(stem) = k.strip_suffix('*') {
            self.prefixes.push((stem.to_owned(), cat));
        } else if let Some(stem) = k.strip_prefix('*') {
            self.suffixes.push((stem.to_owned(), cat));
        } else {
            match tokenize(&k).as_slice() {
                [] => {}
                [word] => self.words.entry(word.clone()).or_default().push(cat),
                phrase => {
                    let first = phrase[0].clone();
                    self.phrases
                        .entry(first)
                        .or_default()
                        .push((phrase.to_vec(), cat));
                }
            }
        }
    }

    /// Keyword hits in text order, in the categories `wanted` accepts, minus
    /// those covered by an exception or neutralized; only the first if `first_only`.
    fn hits(
        &self,
        tokens: &[String],
        wanted: &dyn Fn(usize) -> bool,
        first_only: bool,
    ) -> Vec<(usize, String)> {
        let mut covered: Vec<Option<Vec<bool>>> = vec![None; self.names.len()];
        let mut out = Vec::new();
        let mut candidates = Vec::new();
        for i in 0..tokens.len() {
            candidates.clear();
            self.candidates_at(tokens, i, &mut candidates);
            for (cat, keyword, len) in candidates.drain(..) {
                if !wanted(cat) {
                    continue;
                }
                // Exceptions are worked out only once a keyword is found.
                let cov = covered[cat].get_or_insert_with(|| self.covered(cat, tokens));
                if cov[i..i + len].iter().any(|c| *c) || self.neutralized(cat, tokens, i) {
                    continue;
                }
                out.push((cat, keyword));
                if first_only {
                    return out;
                }
            }
        }
        out
    }

    /// Keywords starting at token `i`: (category, keyword, length in tokens).
    fn candidates_at(&self, tokens: &[String], i: usize, out: &mut Vec<(usize, String, usize)>) {
        let t = &tokens[i];
        let ies = t.strip_suffix("ies").map(|s| format!("{s}y"));
        let forms = [
            Some(t.as_str()),
            t.strip_suffix('s'),
            t.strip_suffix("es"),
            ies.as_deref(),
        ];
        for form in forms.into_iter().flatten() {
            for cat in self.words.get(form).into_iter().flatten() {
                out.push((*cat, form.to_owned(), 1));
            }
        }
        for (stem, cat) in &self.prefixes {
            if t.starts_with(stem.as_str()) {
                out.push((*cat, t.clone(), 1));
            }
        }
        for (stem, cat) in &self.suffixes {
            if t.ends_with(stem.as_str()) {
                out.push((*cat, t.clone(), 1));
            }
        }
        for (phrase, cat) in self.phrases.get(t).into_iter().flatten() {
            if phrase_at(tokens, i, phrase) {
                out.push((*cat, phrase.join(" "), phrase.len()));
            }
        }
    }

    fn covered(&self, cat: usize, tokens: &[String]) -> Vec<bool> {
        let mut covered = vec![false; tokens.len()];
        for e in &self.exceptions[cat] {
            for i in 0..tokens.len() {
                if phrase_at(tokens, i, e) {
                    covered[i..i + e.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        covered
    }

    /// "vegan cheese" is not dairy, but "non vegan cheese" still is.
    fn neutralized(&self, cat: usize, tokens: &[String], i: usize) -> bool {
        self.neutralizers[cat].iter().any(|n| {
            let Some(start) = i.checked_sub(n.len()) else {
                return false;
            };
            let negated = start > 0 && ["non", "not", "no"].contains(&tokens[start - 1].as_str());
            tokens[start..i] == n[..] && !negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DietaryPreference::*;

    fn breaks(text: &str, diet: DietaryPreference) -> Option<String> {
        diet_violation(text, diet).map(|h| format!("{}:{}", h.category, h.keyword))
    }

    #[test]
    fn the_keyword_data_parses_and_has_every_diet_category() {
        for c in FoodCategory::ALL {
            assert_eq!(KEYWORDS.index.names[KEYWORDS.id_of(c)], c.as_str());
        }
        for groups in KEYWORDS.allergy_aliases.values() {
            assert!(
                groups.iter().all(|g| KEYWORDS.index.id(g).is_some()),
                "{groups:?}"
            );
        }
    }

    #[test]
    fn meat_and_fish_are_found_in_many_languages_and_dishes() {
        for text in [
            "Grilled chicken breast",
            "Pollo asado",
            "Poulet rôti",
            "Hähnchenbrust mit Reis",
            "Murgh makhani",
            "Mutton keema",
            "Chicken biryani",
            "Bacon bits",
            "Pasta with guanciale",
            "Rindfleisch",
            "Currywurst",
        ] {
            assert_eq!(
                breaks(text, Vegetarian).map(|h| h.starts_with("meat")),
                Some(true),
                "{text}"
            );
        }
        for text in [
            "Tuna salad",
            "Salmon fillet",
            "Thunfischsalat",
            "Anchovies",
            "Fish sauce",
        ] {
            assert_eq!(
                breaks(text, Eggitarian).map(|h| h.starts_with("fish")),
                Some(true),
                "{text}"
            );
        }
        assert_eq!(
            breaks("Garlic prawns", Vegetarian).as_deref(),
            Some("shellfish:prawn")
        );
        assert_eq!(
            breaks("Shrimp tacos", Vegetarian).as_deref(),
            Some("shellfish:shrimp")
        );
    }

    #[test]
    fn eggs_break_vegetarian_but_not_eggitarian() {
        for text in [
            "Cheese omelette",
            "Spinach frittata",
            "2 boiled eggs",
            "Egg bhurji",
            "Huevos rancheros",
        ] {
            assert_eq!(
                breaks(text, Vegetarian).map(|h| h.starts_with("egg")),
                Some(true),
                "{text}"
            );
            assert_eq!(breaks(text, Eggitarian), None, "{text}");
        }
    }

    #[test]
    fn dairy_and_honey_break_only_vegan() {
        for text in [
            "Paneer tikka",
            "Ghee rice",
            "Greek yogurt",
            "Curd rice",
            "Whey shake",
            "Honey toast",
        ] {
            assert!(breaks(text, Vegan).is_some(), "{text}");
            assert_eq!(breaks(text, Vegetarian), None, "{text}");
        }
        assert_eq!(
            breaks("anything at all: chicken, eggs, milk", NonVegetarian),
            None
        );
    }

    #[test]
    fn look_alike_words_and_plant_versions_are_not_false_positives() {
        for text in [
            "Eggplant curry",
            "Roasted egg plant",
            "Coconut milk curry",
            "Oat milk latte",
            "Peanut butter toast",
            "Butternut squash soup",
            "Butter bean stew",
            "Chickpea omelette",
            "Vegan cheese",
            "Dairy-free yogurt",
            "Soy yogurt with berries",
            "Hamper of fruit",
            "Graham-style oat bars",
            "Honeydew melon",
            "Lamb's lettuce salad",
            "Cream of tartar",
            "Oyster mushroom stir-fry",
            "Veg keema",
            "Tofu scramble",
        ] {
            assert_eq!(breaks(text, Vegan), None, "{text}");
        }
    }

    #[test]
    fn a_negated_qualifier_does_not_neutralize() {
        assert_eq!(
            breaks("Non veg chicken thali", Vegetarian).as_deref(),
            Some("meat:chicken")
        );
        assert_eq!(
            breaks("Non-vegan cheese", Vegan).as_deref(),
            Some("dairy:cheese")
        );
    }

    #[test]
    fn allergies_match_named_groups_and_literal_foods_with_plurals() {
        let m = AllergyMatcher::new(&[
            "Peanuts".to_owned(),
            "lactose intolerance".to_owned(),
            "strawberries".to_owned(),
            "shellfish".to_owned(),
        ]);
        let hit = |t: &str| m.find(t).map(|h| h.category);
        assert_eq!(hit("Peanut butter toast").as_deref(), Some("Peanuts"));
        assert_eq!(hit("Satay tofu").as_deref(), Some("Peanuts"));
        assert_eq!(hit("Paneer wrap").as_deref(), Some("lactose intolerance"));
        assert_eq!(hit("Coconut milk curry"), None);
        assert_eq!(hit("Strawberry smoothie").as_deref(), Some("strawberries"));
        assert_eq!(hit("Garlic prawns").as_deref(), Some("shellfish"));
        assert_eq!(hit("Lentil soup"), None);
    }

    #[test]
    fn a_gluten_allergy_accepts_gluten_free_versions() {
        let m = AllergyMatcher::new(&["gluten".to_owned()]);
        assert!(m.find("Whole-wheat pasta").is_some());
        assert!(m.find("Chapati").is_some());
        assert!(m.find("Gluten-free pasta").is_none());
        assert!(m.find("Rice noodles").is_none());
    }

    #[test]
    fn categories_in_lists_every_animal_product_of_a_dish() {
        use FoodCategory::*;
        assert_eq!(
            categories_in("Cheese omelette with bacon"),
            [Meat, Egg, Dairy]
        );
        assert_eq!(categories_in("Lentil soup"), []);
    }

    #[test]
    fn rule_text_names_what_is_forbidden_and_allowed() {
        assert!(diet_rule_text(Vegetarian).contains("no eggs"));
        assert!(diet_rule_text(Vegetarian).contains("Dairy is allowed"));
        assert!(diet_rule_text(Vegan).contains("no dairy"));
        assert!(diet_rule_text(Eggitarian).contains("Eggs and dairy are allowed"));
    }
}
