//! The raw datasets the food table was made from, read independently of
//! the crate (USDA SR28 `^`/`~` files, IFCT 2017 `index.csv`), fetched by
//! `scripts/fetch-food-sources.sh` into `target/food-sources` (or
//! FOOD_SOURCES_DIR): what anyone would recompute a plan's numbers from.

use std::collections::HashMap;
use std::path::PathBuf;

/// kcal, protein, fat and carbohydrate per 100 g.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Per100g {
    pub kcal: f64,
    pub protein_g: f64,
    pub fat_g: f64,
    pub carbs_g: f64,
    pub fiber_g: f64,
}

pub fn sources_dir() -> PathBuf {
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
pub fn sr28_records(file: &str) -> Vec<Vec<String>> {
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

/// Every SR28 food's composition, by NDB number.
pub fn sr28() -> HashMap<String, Per100g> {
    let mut out: HashMap<String, Per100g> = HashMap::new();
    for r in sr28_records("NUT_DATA.txt") {
        let v: f64 = r[2].parse().unwrap();
        let e = out.entry(r[0].clone()).or_insert(Per100g {
            kcal: f64::NAN,
            protein_g: f64::NAN,
            fat_g: f64::NAN,
            carbs_g: f64::NAN,
            fiber_g: 0.0,
        });
        match r[1].as_str() {
            "208" => e.kcal = v,
            "203" => e.protein_g = v,
            "204" => e.fat_g = v,
            "205" => e.carbs_g = v,
            "291" => e.fiber_g = v,
            _ => {}
        }
    }
    out
}

/// IFCT rows as maps from the column's code (`enerc`, `protcnt`, ...).
pub fn ifct_rows() -> HashMap<String, HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(sources_dir().join("ifct2017/index.csv")).unwrap();
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

/// Every IFCT food's composition (energy converted from kJ), by code.
pub fn ifct() -> HashMap<String, Per100g> {
    ifct_rows()
        .into_iter()
        .map(|(code, row)| {
            let num = |k: &str| row[k].parse::<f64>().unwrap_or(0.0);
            let per = Per100g {
                kcal: num("enerc") / 4.184,
                protein_g: num("protcnt"),
                fat_g: num("fatce"),
                carbs_g: num("choavldf"),
                fiber_g: num("fibtg"),
            };
            (code, per)
        })
        .collect()
}

/// Both datasets, keyed by (source, code) as plans name them.
pub fn both() -> HashMap<(String, String), Per100g> {
    let mut out = HashMap::new();
    for (code, per) in sr28() {
        out.insert(("usda_sr28".to_owned(), code), per);
    }
    for (code, per) in ifct() {
        out.insert(("ifct2017".to_owned(), code), per);
    }
    out
}
