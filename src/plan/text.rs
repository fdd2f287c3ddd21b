//! Word-level text helpers shared by the diet, supplement and exercise matchers.

/// Lowercase words; anything that is not a letter or digit separates them.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The likely singular of an English plural ("strawberries" → "strawberry",
/// "lunges" → "lunge", "push-ups" word "ups" → "up"); other words unchanged.
pub fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies").filter(|s| s.len() > 1) {
        return format!("{stem}y");
    }
    for ending in ["oes", "ches", "shes", "xes", "sses"] {
        if word.len() > ending.len() + 1 && word.ends_with(ending) {
            return word[..word.len() - 2].to_owned();
        }
    }
    // "hummus", "couscous", "tennis", "glass" are not plurals.
    let not_plural = ["us", "is", "ss"].iter().any(|e| word.ends_with(e));
    match word.strip_suffix('s') {
        Some(stem) if !not_plural && stem.len() >= 2 => stem.to_owned(),
        _ => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_punctuation_and_lowercase() {
        assert_eq!(
            words("Lamb's Lettuce, pull-up BAR"),
            ["lamb", "s", "lettuce", "pull", "up", "bar"]
        );
    }

    #[test]
    fn common_plurals_become_singular_and_other_words_stay() {
        for (plural, one) in [
            ("strawberries", "strawberry"),
            ("tomatoes", "tomato"),
            ("lunges", "lunge"),
            ("ups", "up"),
            ("peanuts", "peanut"),
            ("boxes", "box"),
            ("glass", "glass"),
            ("hummus", "hummus"),
            ("fish", "fish"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
    }
}
