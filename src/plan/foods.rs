//! The food table: basic foods from USDA SR28 and IFCT 2017 with their
//! composition per 100 g, diet class, allergens and realistic serving
//! bounds (`data/foods.csv`, made by `scripts/build-foods.py` from the raw
//! datasets; see `data/FOODS.md`). Every number a plan states is computed
//! from this table, so anyone with the raw files can recompute it.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::diet::{AllergyMatcher, allergy_groups};
use super::profile::{DietaryPreference, Profile};

/// Which dataset a food comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    #[serde(rename = "usda_sr28")]
    UsdaSr28,
    #[serde(rename = "ifct2017")]
    Ifct2017,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::UsdaSr28 => "usda_sr28",
            Source::Ifct2017 => "ifct2017",
        }
    }
}

/// The most restrictive diet that may eat a food.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DietClass {
    Vegan,
    /// Dairy, honey.
    Vegetarian,
    /// Eggs.
    Eggitarian,
    Fish,
    Meat,
}

impl DietClass {
    /// Whether someone with `diet` eats foods of this class.
    pub fn allowed_for(self, diet: DietaryPreference) -> bool {
        use DietClass as C;
        use DietaryPreference as D;
        match diet {
            D::Vegan => self == C::Vegan,
            D::Vegetarian => matches!(self, C::Vegan | C::Vegetarian),
            D::Eggitarian => matches!(self, C::Vegan | C::Vegetarian | C::Eggitarian),
            D::NonVegetarian => true,
        }
    }
}

/// What a planner builds a meal from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Protein,
    Carb,
    Fat,
    Vegetable,
    Fruit,
    Dairy,
    Flavor,
}

/// One row of the table; composition per 100 g edible portion.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Food {
    pub id: String,
    pub source: Source,
    pub code: String,
    pub name: String,
    /// Food group, also the grocery aisle.
    pub group: String,
    pub diet: DietClass,
    #[serde(deserialize_with = "pipe_list")]
    pub allergens: Vec<String>,
    pub kcal: f64,
    pub protein_g: f64,
    pub fat_g: f64,
    pub carbs_g: f64,
    pub fiber_g: f64,
    pub role: Role,
    /// One serving's bounds and rounding step, in grams.
    pub min_g: f64,
    pub max_g: f64,
    pub step_g: f64,
    /// Weight of one piece for foods eaten by the piece (eggs), else 0.
    pub unit_g: f64,
    #[serde(default)]
    pub household_desc: String,
    #[serde(default)]
    pub household_g: Option<f64>,
}

/// Energy and macros of an amount of food.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Macros {
    pub kcal: f64,
    pub protein_g: f64,
    pub fat_g: f64,
    pub carbs_g: f64,
}

impl Macros {
    pub fn add(&mut self, o: Macros) {
        self.kcal += o.kcal;
        self.protein_g += o.protein_g;
        self.fat_g += o.fat_g;
        self.carbs_g += o.carbs_g;
    }
}

impl Food {
    /// The composition of `grams` of this food.
    pub fn macros(&self, grams: f64) -> Macros {
        let f = grams / 100.0;
        Macros {
            kcal: self.kcal * f,
            protein_g: self.protein_g * f,
            fat_g: self.fat_g * f,
            carbs_g: self.carbs_g * f,
        }
    }

    /// `grams` in the dataset's household measure ("1.5 cup"), when it has one.
    pub fn household(&self, grams: f64) -> Option<String> {
        if self.unit_g > 0.0 {
            let n = (grams / self.unit_g).round();
            return Some(format!("{n} × {} g piece", self.unit_g.round()));
        }
        let per = self.household_g.filter(|g| *g > 0.0)?;
        // A measure may be "0.5 cup" or "3 oz" for its grams: count in
        // the unit it names.
        let (count, unit) = match self.household_desc.split_once(' ') {
            Some((n, unit)) if n.parse::<f64>().is_ok() => (n.parse::<f64>().ok()?, unit),
            _ => (1.0, self.household_desc.as_str()),
        };
        if unit.is_empty() {
            return None;
        }
        let amount = (grams / per * count * 4.0).round() / 4.0;
        (amount >= 0.25).then(|| format!("{amount} {unit}"))
    }
}

fn pipe_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.split('|')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The whole table, indexed by id.
pub struct Catalogue {
    foods: Vec<Food>,
    by_id: HashMap<String, usize>,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    Catalogue::parse(include_str!("../../data/foods.csv"))
        .expect("data/foods.csv is valid (checked by a unit test)")
});

/// The compiled-in table.
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

impl Catalogue {
    /// Parses the CSV; every row is checked for sane bounds.
    pub fn parse(csv_text: &str) -> Result<Self, String> {
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let mut foods = Vec::new();
        for (i, row) in reader.deserialize::<Food>().enumerate() {
            let food = row.map_err(|e| format!("foods.csv row {}: {e}", i + 2))?;
            check_row(&food).map_err(|e| format!("foods.csv {}: {e}", food.id))?;
            foods.push(food);
        }
        let mut by_id = HashMap::with_capacity(foods.len());
        for (i, f) in foods.iter().enumerate() {
            if by_id.insert(f.id.clone(), i).is_some() {
                return Err(format!("foods.csv: duplicate id {}", f.id));
            }
        }
        Ok(Catalogue { foods, by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Food> {
        self.by_id.get(id).map(|&i| &self.foods[i])
    }

    pub fn all(&self) -> &[Food] {
        &self.foods
    }

    /// Foods whose id, name or group contain every word of `query`.
    pub fn search<'a>(&'a self, query: &str) -> Vec<&'a Food> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        self.foods
            .iter()
            .filter(|f| {
                let hay = format!("{} {} {}", f.id, f.name, f.group).to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }
}

fn check_row(f: &Food) -> Result<(), String> {
    let finite = [f.kcal, f.protein_g, f.fat_g, f.carbs_g, f.fiber_g];
    if finite.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err("composition must be finite and not negative".into());
    }
    if !(f.min_g > 0.0 && f.min_g <= f.max_g && f.step_g > 0.0) {
        return Err(format!(
            "bounds {}..{} step {} are not a range",
            f.min_g, f.max_g, f.step_g
        ));
    }
    Ok(())
}

/// What a profile may eat: its diet class and allergies, on foods (tags)
/// first, with the allergy keywords on the food's name as a second check.
pub struct FoodFilter {
    diet: DietaryPreference,
    allergen_tags: Vec<String>,
    matcher: AllergyMatcher,
}

impl FoodFilter {
    pub fn new(p: &Profile) -> Self {
        let mut allergen_tags: Vec<String> = Vec::new();
        for a in &p.allergies {
            for g in allergy_groups(a) {
                let tag = allergen_tag(g);
                if !allergen_tags.iter().any(|t| t == tag) {
                    allergen_tags.push(tag.to_owned());
                }
            }
        }
        FoodFilter {
            diet: p.dietary_preference,
            allergen_tags,
            matcher: AllergyMatcher::new(&p.allergies),
        }
    }

    /// The diet's foods, whoever eats them (no allergies): the catalogue
    /// every person of the diet is shown, before their own exclusions.
    pub fn for_diet(diet: DietaryPreference) -> Self {
        FoodFilter {
            diet,
            allergen_tags: Vec::new(),
            matcher: AllergyMatcher::new(&[]),
        }
    }

    /// Why `food` may not be eaten, if it may not.
    pub fn refusal(&self, food: &Food) -> Option<String> {
        if !food.diet.allowed_for(self.diet) {
            return Some(format!(
                "{} is {:?}, not {}",
                food.name,
                food.diet,
                self.diet.as_str()
            ));
        }
        if let Some(tag) = food
            .allergens
            .iter()
            .find(|t| self.allergen_tags.contains(t))
        {
            return Some(format!("{} contains {tag}", food.name));
        }
        self.matcher
            .find(&food.name)
            .map(|hit| format!("{} matches the allergy {}", food.name, hit.category))
    }

    /// Whether the diet alone allows `food` (allergies aside).
    pub fn diet_allows(&self, food: &Food) -> bool {
        food.diet.allowed_for(self.diet)
    }

    pub fn allows(&self, food: &Food) -> bool {
        self.refusal(food).is_none()
    }
}

/// What a profile's diet and allergies leave of the table, by role: the
/// words that explain an impossible profile.
pub fn what_is_left(p: &Profile) -> String {
    let filter = FoodFilter::new(p);
    let cat = catalogue();
    let allowed: Vec<&Food> = cat.all().iter().filter(|f| filter.allows(f)).collect();
    let protein = allowed.iter().filter(|f| f.role == Role::Protein).count();
    format!(
        "the diet {} with the allergies {:?} leaves {} of {} foods ({} protein foods)",
        p.dietary_preference.as_str(),
        p.allergies,
        allowed.len(),
        cat.all().len(),
        protein
    )
}

/// The table's allergen tag for a keyword group of `diet_keywords.json`.
fn allergen_tag(group: &str) -> &str {
    match group {
        "dairy" => "milk",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_table_parses_and_has_several_hundred_foods() {
        let c = catalogue();
        assert!(c.all().len() >= 200, "{} foods", c.all().len());
        let lentils = c.all().iter().find(|f| f.code == "16069").expect("16069");
        assert_eq!(lentils.source, Source::UsdaSr28);
        assert_eq!((lentils.kcal, lentils.protein_g), (352.0, 24.63));
        let paneer = c.all().iter().find(|f| f.code == "L003").expect("L003");
        assert!((paneer.kcal - 257.89).abs() < 0.01, "{}", paneer.kcal);
    }

    #[test]
    fn household_measures_count_in_the_unit_they_name() {
        let c = catalogue();
        let lentils = c.get("lentils_raw").unwrap();
        assert_eq!(lentils.household(96.0).as_deref(), Some("0.5 cup"));
        let mut half_cup = lentils.clone();
        half_cup.household_desc = "0.5 cup".into();
        half_cup.household_g = Some(96.0);
        assert_eq!(half_cup.household(192.0).as_deref(), Some("1 cup"));
        let egg = c.get("egg_whole").unwrap();
        assert_eq!(egg.household(100.0).as_deref(), Some("2 × 50 g piece"));
    }

    #[test]
    fn diets_nest_from_vegan_to_non_vegetarian() {
        use DietaryPreference as D;
        assert!(DietClass::Vegan.allowed_for(D::Vegan));
        assert!(!DietClass::Vegetarian.allowed_for(D::Vegan));
        assert!(DietClass::Vegetarian.allowed_for(D::Eggitarian));
        assert!(!DietClass::Eggitarian.allowed_for(D::Vegetarian));
        assert!(!DietClass::Fish.allowed_for(D::Eggitarian));
        assert!(DietClass::Meat.allowed_for(D::NonVegetarian));
    }
}
