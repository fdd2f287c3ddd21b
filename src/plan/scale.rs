//! Exact-sum scaling of meals, shared by the fixer and the offline generator
//! so that both meet the validator's "meals sum exactly to the targets".

use super::model::Meal;

/// Splits `total` into whole parts proportional to `weights` that add up to
/// exactly `total` (largest-remainder method). All-zero weights split evenly.
/// Integer arithmetic throughout, so huge weights cannot lose precision.
pub fn apportion(total: u32, weights: &[u64]) -> Vec<u32> {
    if weights.is_empty() {
        return Vec::new();
    }
    let even = weights.iter().all(|w| *w == 0);
    let weight = |i: usize| if even { 1 } else { u128::from(weights[i]) };
    let sum: u128 = (0..weights.len()).map(weight).sum();
    let total_wide = u128::from(total);
    let mut parts: Vec<u32> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for i in 0..weights.len() {
        let exact = total_wide * weight(i);
        // Each part is at most `total`, so it fits in u32.
        parts.push((exact / sum) as u32);
        remainders.push((exact % sum, i));
    }
    let assigned: u64 = parts.iter().map(|p| u64::from(*p)).sum();
    let missing = u64::from(total) - assigned;
    // Largest remainder first; ties go to the earlier meal, for determinism.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take(missing as usize) {
        parts[i] += 1;
    }
    parts
}

/// Rescales the meals so that their kcal sum to `kcal` and their protein to
/// `protein_g`, keeping the proportions the meals had. Protein follows the
/// meals' own protein split, or their kcal split when they state no protein.
/// Does nothing to an empty list (the caller supplies meals first).
pub fn scale_meals(meals: &mut [Meal], kcal: u32, protein_g: u32) {
    let kcal_weights: Vec<u64> = meals.iter().map(|m| u64::from(m.kcal)).collect();
    let protein_weights: Vec<u64> = if meals.iter().any(|m| m.protein_g > 0) {
        meals.iter().map(|m| u64::from(m.protein_g)).collect()
    } else {
        kcal_weights.clone()
    };
    let kcal_parts = apportion(kcal, &kcal_weights);
    let protein_parts = apportion(protein_g, &protein_weights);
    for ((meal, k), p) in meals.iter_mut().zip(kcal_parts).zip(protein_parts) {
        meal.kcal = k;
        meal.protein_g = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_proportional_and_sum_exactly() {
        assert_eq!(apportion(100, &[1, 1, 1]), [34, 33, 33]);
        assert_eq!(apportion(2000, &[500, 700, 300, 500]), [500, 700, 300, 500]);
        assert_eq!(apportion(7, &[0, 0]), [4, 3]);
        assert_eq!(apportion(0, &[5, 9]), [0, 0]);
        assert!(apportion(5, &[]).is_empty());
    }

    #[test]
    fn huge_weights_do_not_overflow_or_drift() {
        let parts = apportion(u32::MAX, &[u64::MAX, u64::MAX, 1]);
        assert_eq!(
            parts.iter().map(|p| u64::from(*p)).sum::<u64>(),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn meals_without_protein_take_protein_in_proportion_to_kcal() {
        let meal = |kcal| Meal {
            name: "m".into(),
            items: vec![],
            kcal,
            protein_g: 0,
        };
        let mut meals = vec![meal(300), meal(600), meal(100)];
        scale_meals(&mut meals, 2000, 150);
        let kcal: Vec<u32> = meals.iter().map(|m| m.kcal).collect();
        let protein: Vec<u32> = meals.iter().map(|m| m.protein_g).collect();
        assert_eq!(kcal, [600, 1200, 200]);
        assert_eq!(protein, [45, 90, 15]);
    }
}
