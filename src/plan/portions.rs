//! Portions solved, not forced: the grams of a day's ingredients are chosen
//! by a linear program (good_lp with the pure-Rust microlp solver) so that
//! the day lands on its energy and macro targets with every ingredient
//! inside its realistic serving bounds, each meal near its share of the day
//! and each ingredient near the amount the recipe (or the model) suggested.
//! The solution is then rounded to kitchen steps (5 g, whole eggs) and
//! nudged step by step back inside the tolerances. A day that cannot be
//! solved is reported, never fudged: the planner repairs it with other foods.

use good_lp::{
    Expression, ProblemVariables, Solution, SolverModel, Variable, constraint, microlp, variable,
};

use super::foods::{Food, Macros};

/// How far a day may be from its targets, as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub kcal: f64,
    pub protein: f64,
    pub fat: f64,
    pub carbs: f64,
}

/// The promise of a saved plan: kcal within 2 %, protein within 5 %, fat
/// and carbohydrate within 10 % of the day's targets.
pub const TOLERANCE: Tolerance = Tolerance {
    kcal: 0.02,
    protein: 0.05,
    fat: 0.10,
    carbs: 0.10,
};

/// The solver aims well inside the tolerance, leaving room for rounding.
const SOLVER_SHARE_OF_TOLERANCE: f64 = 0.6;

/// A solution is accepted only this far inside the tolerance: the stated
/// numbers are rounded (ingredients to 0.1, days to whole units), and a day
/// at the very edge could round across it.
pub const ACCEPTED: Tolerance = Tolerance {
    kcal: TOLERANCE.kcal * 0.9,
    protein: TOLERANCE.protein * 0.9,
    fat: TOLERANCE.fat * 0.9,
    carbs: TOLERANCE.carbs * 0.9,
};

/// A day's targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayTargets {
    pub kcal: f64,
    pub protein_g: f64,
    pub fat_g: f64,
    pub carbs_g: f64,
}

impl DayTargets {
    fn of(&self, m: Macro) -> f64 {
        match m {
            Macro::Kcal => self.kcal,
            Macro::Protein => self.protein_g,
            Macro::Fat => self.fat_g,
            Macro::Carbs => self.carbs_g,
        }
    }
}

/// One ingredient of one meal, with the grams suggested for it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub food: &'a Food,
    pub meal: usize,
    pub suggested_g: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Macro {
    Kcal,
    Protein,
    Fat,
    Carbs,
}

impl Macro {
    pub const ALL: [Macro; 4] = [Macro::Kcal, Macro::Protein, Macro::Fat, Macro::Carbs];

    pub fn as_str(self) -> &'static str {
        match self {
            Macro::Kcal => "kcal",
            Macro::Protein => "protein",
            Macro::Fat => "fat",
            Macro::Carbs => "carbohydrate",
        }
    }

    fn per_100g(self, f: &Food) -> f64 {
        match self {
            Macro::Kcal => f.kcal,
            Macro::Protein => f.protein_g,
            Macro::Fat => f.fat_g,
            Macro::Carbs => f.carbs_g,
        }
    }

    fn of(self, m: &Macros) -> f64 {
        match self {
            Macro::Kcal => m.kcal,
            Macro::Protein => m.protein_g,
            Macro::Fat => m.fat_g,
            Macro::Carbs => m.carbs_g,
        }
    }

    fn tolerance(self, t: &Tolerance) -> f64 {
        match self {
            Macro::Kcal => t.kcal,
            Macro::Protein => t.protein,
            Macro::Fat => t.fat,
            Macro::Carbs => t.carbs,
        }
    }
}

/// Why a day could not be solved: the targets the foods cannot reach
/// within their bounds, with how close they came.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(.misses))]
pub struct Unsolvable {
    pub misses: Vec<Miss>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Miss {
    pub what: Macro,
    pub target: f64,
    /// The closest the foods came.
    pub best: f64,
}

fn describe(misses: &[Miss]) -> String {
    let parts: Vec<String> = misses
        .iter()
        .map(|m| {
            format!(
                "{} reaches {:.0} of {:.0}",
                m.what.as_str(),
                m.best,
                m.target
            )
        })
        .collect();
    format!(
        "the foods cannot meet the day's targets within their serving bounds: {}",
        parts.join(", ")
    )
}

/// The grams of each item (same order), within bounds and steps, with the
/// day inside `TOLERANCE` of `t`. `meal_shares`: each meal's share of the
/// day's energy (they need not sum to 1; they are normalised).
pub fn solve_day(
    items: &[Item<'_>],
    meal_shares: &[f64],
    t: &DayTargets,
) -> Result<Vec<f64>, Unsolvable> {
    let exact = solve_lp(items, meal_shares, t, Some(SOLVER_SHARE_OF_TOLERANCE))
        .or_else(|_| solve_lp(items, meal_shares, t, Some(1.0)));
    let grams = match exact {
        Ok(g) => g,
        Err(()) => return Err(unsolvable(items, meal_shares, t)),
    };
    let rounded = round_to_steps(items, &grams, t);
    let misses = misses(items, &rounded, t, &ACCEPTED);
    if misses.is_empty() {
        Ok(rounded)
    } else {
        Err(Unsolvable { misses })
    }
}

/// The day's totals for `grams` of `items`.
pub fn totals(items: &[Item<'_>], grams: &[f64]) -> Macros {
    let mut sum = Macros::default();
    for (it, g) in items.iter().zip(grams) {
        sum.add(it.food.macros(*g));
    }
    sum
}

/// The targets `grams` miss by more than `tol`.
pub fn misses(items: &[Item<'_>], grams: &[f64], t: &DayTargets, tol: &Tolerance) -> Vec<Miss> {
    let sum = totals(items, grams);
    Macro::ALL
        .into_iter()
        .filter_map(|m| {
            let target = t.of(m);
            let best = m.of(&sum);
            let off = (best - target).abs() > m.tolerance(tol) * target;
            off.then_some(Miss {
                what: m,
                target,
                best,
            })
        })
        .collect()
}

/// The linear program. `band`: the share of the tolerance the day must land
/// in (hard constraints); `None` solves without them, as close as it can.
fn solve_lp(
    items: &[Item<'_>],
    meal_shares: &[f64],
    t: &DayTargets,
    band: Option<f64>,
) -> Result<Vec<f64>, ()> {
    let mut vars = ProblemVariables::new();
    let g: Vec<Variable> = items
        .iter()
        .map(|it| vars.add(variable().min(it.food.min_g).max(it.food.max_g)))
        .collect();
    let mut objective = Expression::from(0.0);
    let mut constraints = Vec::new();
    // Stay near the suggested amounts: |g - s| / s, through e >= ±(g - s).
    for (it, &gi) in items.iter().zip(&g) {
        let s = it.suggested_g.clamp(it.food.min_g, it.food.max_g);
        let e = vars.add(variable().min(0.0));
        constraints.push(constraint!(e >= gi - s));
        constraints.push(constraint!(e >= s - gi));
        objective += e * (1.0 / s.max(1.0));
    }
    // Each meal near its share of the day's energy.
    let total_share: f64 = meal_shares.iter().sum::<f64>().max(f64::EPSILON);
    for (meal, share) in meal_shares.iter().enumerate() {
        let want = t.kcal * share / total_share;
        let kcal: Expression = items
            .iter()
            .zip(&g)
            .filter(|(it, _)| it.meal == meal)
            .map(|(it, &gi)| gi * (it.food.kcal / 100.0))
            .sum();
        let e = vars.add(variable().min(0.0));
        constraints.push(constraint!(e >= kcal.clone() - want));
        constraints.push(constraint!(e >= want - kcal));
        objective += e * (2.0 / want.max(1.0));
    }
    // The day's targets: hard bands, and a pull toward the exact values.
    for m in Macro::ALL {
        let target = t.of(m);
        let total: Expression = items
            .iter()
            .zip(&g)
            .map(|(it, &gi)| gi * (m.per_100g(it.food) / 100.0))
            .sum();
        let e = vars.add(variable().min(0.0));
        constraints.push(constraint!(e >= total.clone() - target));
        constraints.push(constraint!(e >= target - total.clone()));
        objective += e * (20.0 / target.max(1.0));
        if let Some(band) = band {
            let slack = target * m.tolerance(&TOLERANCE) * band;
            constraints.push(constraint!(total.clone() <= target + slack));
            constraints.push(constraint!(total >= target - slack));
        }
    }
    let mut model = vars.minimise(objective).using(microlp);
    for c in constraints {
        model = model.with(c);
    }
    let solution = model.solve().map_err(|_| ())?;
    Ok(g.iter().map(|&v| solution.value(v)).collect())
}

/// How close the foods can come, for the error message.
fn unsolvable(items: &[Item<'_>], meal_shares: &[f64], t: &DayTargets) -> Unsolvable {
    let closest = solve_lp(items, meal_shares, t, None)
        .unwrap_or_else(|_| items.iter().map(|it| it.suggested_g).collect());
    let mut misses = misses(items, &closest, t, &TOLERANCE);
    if misses.is_empty() {
        // Only the rounding failed: name every target as it stands.
        misses = misses_at(items, &closest, t);
    }
    Unsolvable { misses }
}

fn misses_at(items: &[Item<'_>], grams: &[f64], t: &DayTargets) -> Vec<Miss> {
    let sum = totals(items, grams);
    Macro::ALL
        .into_iter()
        .map(|m| Miss {
            what: m,
            target: t.of(m),
            best: m.of(&sum),
        })
        .collect()
}

/// The grid an item's grams may take: multiples of its step within bounds.
fn grid(food: &Food) -> (f64, f64, f64) {
    let step = if food.unit_g > 0.0 {
        food.unit_g
    } else {
        food.step_g
    };
    let lo = (food.min_g / step).ceil() * step;
    let hi = (food.max_g / step).floor() * step;
    if lo > hi {
        (food.min_g, food.min_g, step)
    } else {
        (lo, hi, step)
    }
}

/// Rounds to kitchen steps, then moves one step at a time, always the move
/// that most reduces the error against the targets, until the day is
/// inside the tolerance or no step helps.
fn round_to_steps(items: &[Item<'_>], grams: &[f64], t: &DayTargets) -> Vec<f64> {
    let mut out: Vec<f64> = items
        .iter()
        .zip(grams)
        .map(|(it, g)| {
            let (lo, hi, step) = grid(it.food);
            ((g / step).round() * step).clamp(lo, hi)
        })
        .collect();
    let mut err = error(items, &out, t);
    for _ in 0..(items.len() * 8) {
        if err < 0.25 {
            break;
        }
        let mut best: Option<(usize, f64, f64)> = None;
        for (i, it) in items.iter().enumerate() {
            let (lo, hi, step) = grid(it.food);
            for delta in [step, -step] {
                let g = out[i] + delta;
                if g < lo - 1e-9 || g > hi + 1e-9 {
                    continue;
                }
                let old = out[i];
                out[i] = g;
                let e = error(items, &out, t);
                out[i] = old;
                if e < best.map_or(err, |b| b.2) {
                    best = Some((i, g, e));
                }
            }
        }
        match best {
            Some((i, g, e)) => {
                out[i] = g;
                err = e;
            }
            None => break,
        }
    }
    out
}

/// Squared distance from the targets in units of each tolerance.
fn error(items: &[Item<'_>], grams: &[f64], t: &DayTargets) -> f64 {
    let sum = totals(items, grams);
    Macro::ALL
        .into_iter()
        .map(|m| {
            let target = t.of(m).max(1.0);
            let off = (m.of(&sum) - target) / (target * m.tolerance(&TOLERANCE));
            off * off
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::foods::catalogue;

    fn items(foods: &[(&str, usize, f64)]) -> Vec<Item<'static>> {
        foods
            .iter()
            .map(|(id, meal, g)| Item {
                food: catalogue().get(id).unwrap_or_else(|| panic!("{id}")),
                meal: *meal,
                suggested_g: *g,
            })
            .collect()
    }

    const DAY: DayTargets = DayTargets {
        kcal: 2200.0,
        protein_g: 130.0,
        fat_g: 61.0,
        carbs_g: 283.0,
    };

    #[test]
    fn a_solved_day_is_on_target_with_every_portion_inside_its_bounds_and_steps() {
        let it = items(&[
            ("rolled_oats", 0, 60.0),
            ("milk_skim", 0, 250.0),
            ("banana", 0, 118.0),
            ("egg_whole", 0, 100.0),
            ("chicken_breast_raw", 1, 150.0),
            ("rice_brown_raw", 1, 70.0),
            ("broccoli", 1, 100.0),
            ("olive_oil", 1, 10.0),
            ("lentils_raw", 2, 60.0),
            ("rice_white_raw", 2, 60.0),
            ("spinach", 2, 80.0),
            ("canola_oil", 2, 8.0),
        ]);
        let grams = solve_day(&it, &[0.3, 0.35, 0.35], &DAY).expect("solvable");
        assert!(misses(&it, &grams, &DAY, &TOLERANCE).is_empty());
        for (item, g) in it.iter().zip(&grams) {
            let f = item.food;
            assert!((f.min_g..=f.max_g).contains(g), "{}: {g} g", f.id);
            let step = if f.unit_g > 0.0 { f.unit_g } else { f.step_g };
            assert!(
                ((g / step).round() * step - g).abs() < 1e-9,
                "{}: {g} g",
                f.id
            );
        }
        let eggs = grams[3];
        assert_eq!(eggs % 50.0, 0.0, "whole eggs: {eggs} g");
    }

    #[test]
    fn foods_that_cannot_reach_the_targets_within_bounds_are_unsolvable_naming_what() {
        let it = items(&[("spinach", 0, 100.0), ("cucumber", 1, 100.0)]);
        let err = solve_day(&it, &[0.5, 0.5], &DAY).unwrap_err();
        let what: Vec<Macro> = err.misses.iter().map(|m| m.what).collect();
        assert!(
            what.contains(&Macro::Kcal) && what.contains(&Macro::Protein),
            "{err}"
        );
        let kcal = err.misses.iter().find(|m| m.what == Macro::Kcal).unwrap();
        // At most 200 g spinach and 300 g cucumber: far below 2,200 kcal.
        assert!(kcal.best < 200.0, "{err}");
        assert!(err.to_string().contains("kcal reaches"), "{err}");
    }

    #[test]
    fn the_solver_stays_near_the_suggested_amounts_when_they_already_fit() {
        let it = items(&[("rice_white_raw", 0, 80.0), ("lentils_raw", 0, 60.0)]);
        let sum = totals(&it, &[80.0, 60.0]);
        let t = DayTargets {
            kcal: sum.kcal,
            protein_g: sum.protein_g,
            fat_g: sum.fat_g,
            carbs_g: sum.carbs_g,
        };
        assert_eq!(solve_day(&it, &[1.0], &t).unwrap(), vec![80.0, 60.0]);
    }
}
