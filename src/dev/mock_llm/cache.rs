//! A prompt prefix cache like DeepSeek's context cache: a prompt hits for
//! every leading 64-token unit whose whole prefix an earlier prompt had.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::MockMessage;

/// Tokens in one cache unit, as DeepSeek stores them.
pub(super) const UNIT_TOKENS: u32 = 64;
/// Characters in one unit at the mock's 4 characters a token.
const UNIT_CHARS: usize = UNIT_TOKENS as usize * 4;
/// Prefixes remembered before the cache forgets everything and starts
/// again: a few megabytes, far more than a benchmark's shared prefixes.
const MAX_ENTRIES: usize = 250_000;

/// Hashes of every prefix (in whole units) seen so far.
#[derive(Debug, Default)]
pub(super) struct PrefixCache {
    seen: HashSet<u64>,
    max_entries: usize,
}

impl PrefixCache {
    pub fn new() -> Self {
        PrefixCache::with_capacity(MAX_ENTRIES)
    }

    fn with_capacity(max_entries: usize) -> Self {
        PrefixCache {
            seen: HashSet::new(),
            max_entries,
        }
    }

    /// The prompt's cached tokens (64 per leading unit seen before), then
    /// remembers all its units.
    pub fn lookup_and_insert(&mut self, messages: &[MockMessage]) -> u32 {
        let units = unit_hashes(messages);
        let hits = units.iter().take_while(|h| self.seen.contains(h)).count();
        // Past the first miss every prefix is new (each hash covers all before it).
        if self.seen.len() + (units.len() - hits) > self.max_entries {
            // Forgetting at once keeps memory bounded without an LRU; a
            // provider's cache is best-effort too.
            self.seen.clear();
        }
        self.seen.extend(units);
        u32::try_from(hits)
            .unwrap_or(u32::MAX)
            .saturating_mul(UNIT_TOKENS)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// One hash per whole unit of the prompt, each covering the prompt from its
/// start to the end of that unit, so that an early difference changes every
/// later hash (a prefix cache, not a set of chunks).
fn unit_hashes(messages: &[MockMessage]) -> Vec<u64> {
    let mut hasher = DefaultHasher::new();
    let mut out = Vec::new();
    let mut in_unit = 0usize;
    let text = messages
        .iter()
        .flat_map(|m| [m.role.as_str(), "\n", m.content.as_str(), "\n"]);
    for c in text.flat_map(str::chars) {
        c.hash(&mut hasher);
        in_unit += 1;
        if in_unit == UNIT_CHARS {
            out.push(hasher.finish());
            in_unit = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(system: &str, user: &str) -> Vec<MockMessage> {
        vec![
            MockMessage {
                role: "system".into(),
                content: system.into(),
            },
            MockMessage {
                role: "user".into(),
                content: user.into(),
            },
        ]
    }

    #[test]
    fn a_repeated_prefix_hits_in_whole_units_and_a_new_one_misses() {
        let mut cache = PrefixCache::new();
        let rules = "r".repeat(1000);
        // "system\n" + 1000 + "\n" = 1008 chars: 3 whole units before the user part.
        assert_eq!(cache.lookup_and_insert(&prompt(&rules, "alice")), 0);
        assert_eq!(
            cache.lookup_and_insert(&prompt(&rules, "bob")),
            3 * UNIT_TOKENS
        );
        let same = prompt(&rules, &"x".repeat(600));
        assert_eq!(cache.lookup_and_insert(&same), 3 * UNIT_TOKENS);
        assert_eq!(
            cache.lookup_and_insert(&same),
            6 * UNIT_TOKENS,
            "every whole unit of an exact repeat hits; the partial last one never does"
        );
    }

    #[test]
    fn a_changed_first_character_misses_everything() {
        let mut cache = PrefixCache::new();
        let rules = "r".repeat(2000);
        cache.lookup_and_insert(&prompt(&rules, "u"));
        let changed = format!("R{}", &rules[1..]);
        assert_eq!(cache.lookup_and_insert(&prompt(&changed, "u")), 0);
        // The role is part of the prefix as well.
        let as_user = vec![MockMessage {
            role: "user".into(),
            content: rules.clone(),
        }];
        assert_eq!(cache.lookup_and_insert(&as_user), 0);
    }

    #[test]
    fn a_prompt_shorter_than_a_unit_never_hits() {
        let mut cache = PrefixCache::new();
        let short = prompt("rules", "hi");
        cache.lookup_and_insert(&short);
        assert_eq!(cache.lookup_and_insert(&short), 0);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn past_its_capacity_the_cache_forgets_and_starts_again() {
        let mut cache = PrefixCache::with_capacity(5);
        let a = prompt(&"a".repeat(1024), "");
        cache.lookup_and_insert(&a);
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.lookup_and_insert(&a), 4 * UNIT_TOKENS);
        let b = prompt(&"b".repeat(1024), "");
        assert_eq!(cache.lookup_and_insert(&b), 0);
        assert_eq!(cache.len(), 4, "a was forgotten to make room for b");
        assert_eq!(cache.lookup_and_insert(&a), 0);
    }
}
