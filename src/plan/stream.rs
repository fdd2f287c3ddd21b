//! The elements of a JSON array as they arrive. A streamed stage-1 answer
//! (`{"days": [{...}, {...}, ...], ...}`) is read chunk by chunk, and each
//! day's outline is handed on as soon as its closing brace has arrived, so
//! that the day's own call can start while the model is still writing the
//! rest of the week. Only the structure is tracked (strings, escapes,
//! nesting); each element is parsed by the caller, and the whole answer is
//! parsed again at the end as if it had not been streamed.

/// Finds the first array under `key` (at any depth, so a wrapped answer
/// works too) and yields its object elements' text.
#[derive(Debug)]
pub struct ArrayItems {
    key: &'static str,
    buf: String,
    /// Next byte of `buf` to scan.
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
    string_start: usize,
    /// Byte range of the last complete string.
    last_string: (usize, usize),
    /// The last string was `key` and a colon followed it.
    after_key: bool,
    /// Depth inside the array, once found.
    array_depth: Option<usize>,
    item_start: Option<usize>,
    finished: bool,
}

impl ArrayItems {
    pub fn new(key: &'static str) -> Self {
        ArrayItems {
            key,
            buf: String::new(),
            pos: 0,
            depth: 0,
            in_string: false,
            escape: false,
            string_start: 0,
            last_string: (0, 0),
            after_key: false,
            array_depth: None,
            item_start: None,
            finished: false,
        }
    }

    /// Adds a chunk; returns the elements it completed, in order.
    pub fn feed(&mut self, chunk: &str) -> Vec<String> {
        self.buf.push_str(chunk);
        let mut out = Vec::new();
        // Structural characters are ASCII, so scanning bytes never splits
        // a character that matters.
        let bytes = self.buf.as_bytes();
        while self.pos < bytes.len() && !self.finished {
            let (i, b) = (self.pos, bytes[self.pos]);
            self.pos += 1;
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                    self.last_string = (self.string_start, i);
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.string_start = i + 1;
                    self.after_key = false;
                }
                b':' => {
                    let (s, e) = self.last_string;
                    self.after_key = self.array_depth.is_none() && &self.buf[s..e] == self.key;
                }
                b'[' if self.after_key => {
                    self.depth += 1;
                    self.array_depth = Some(self.depth);
                    self.after_key = false;
                }
                b'{' | b'[' => {
                    if b == b'{' && self.array_depth == Some(self.depth) {
                        self.item_start = Some(i);
                    }
                    self.depth += 1;
                    self.after_key = false;
                }
                b'}' | b']' => {
                    if b == b']' && self.array_depth == Some(self.depth) {
                        self.finished = true;
                    }
                    self.depth = self.depth.saturating_sub(1);
                    if b == b'}'
                        && self.array_depth == Some(self.depth)
                        && let Some(start) = self.item_start.take()
                    {
                        out.push(self.buf[start..=i].to_owned());
                    }
                }
                b if b.is_ascii_whitespace() => {}
                _ => self.after_key = false,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items_of(chunks: &[&str]) -> Vec<String> {
        let mut s = ArrayItems::new("days");
        chunks.iter().flat_map(|c| s.feed(c)).collect()
    }

    #[test]
    fn each_element_comes_out_once_its_closing_brace_arrives() {
        let mut s = ArrayItems::new("days");
        assert!(
            s.feed(r#"{"rationale": "a", "days": [{"day": 1, "focus": "Pu"#)
                .is_empty()
        );
        assert_eq!(
            s.feed(r#"sh"}, {"day""#),
            vec![r#"{"day": 1, "focus": "Push"}"#]
        );
        assert_eq!(
            s.feed(r#": 2, "x": {"y": [1, {"z": 2}]}}]}"#),
            vec![r#"{"day": 2, "x": {"y": [1, {"z": 2}]}}"#]
        );
        assert!(
            s.feed(r#", "days": [{"day": 3}]"#).is_empty(),
            "only the first array"
        );
    }

    #[test]
    fn strings_with_braces_quotes_and_the_key_itself_do_not_confuse_it() {
        let text = r#"{"note": "days: [ {", "days": [{"focus": "Legs } \"days\": [", "day": 1}, {"day": 2}]}"#;
        // Every split point gives the same elements.
        for cut in 0..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let got = items_of(&[&text[..cut], &text[cut..]]);
            assert_eq!(
                got,
                vec![
                    r#"{"focus": "Legs } \"days\": [", "day": 1}"#,
                    r#"{"day": 2}"#
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_wrapped_answer_is_found_and_a_value_named_days_is_not_a_key() {
        let got = items_of(&[r#"{"plan": {"title": "days", "days": [{"day": 5}]}}"#]);
        assert_eq!(got, vec![r#"{"day": 5}"#]);
        assert!(items_of(&[r#"{"a": "days", "b": [{"day": 1}]}"#]).is_empty());
    }

    #[test]
    fn multibyte_text_passes_through_whole() {
        let got = items_of(&[r#"{"days": [{"focus": "Unterkörper ✓"}]}"#]);
        assert_eq!(got, vec![r#"{"focus": "Unterkörper ✓"}"#]);
    }
}
