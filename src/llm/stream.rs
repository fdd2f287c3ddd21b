//! Reading a streamed chat completion: server-sent events carrying
//! `chat.completion.chunk`s, accumulated into what a whole answer holds.

use super::wire::{WireChunk, WireUsage};

/// What the events of one streamed answer added up to.
#[derive(Debug, Default)]
pub(crate) struct Streamed {
    pub id: Option<String>,
    pub model: Option<String>,
    pub content: String,
    /// The last choice's finish_reason.
    pub finish_reason: Option<String>,
    /// From whichever chunk carried it: DeepSeek's last, OpenAI's extra one.
    pub usage: Option<WireUsage>,
    /// `data: [DONE]` arrived.
    pub done: bool,
}

impl Streamed {
    /// The stream ran to its end: a finish_reason or `[DONE]` arrived, not a
    /// connection that closed mid-answer.
    pub fn is_complete(&self) -> bool {
        self.done || self.finish_reason.is_some()
    }
}

/// Why the events could not be read.
#[derive(Debug)]
pub(crate) struct StreamError {
    pub reason: String,
    /// The offending text, for the error's excerpt.
    pub text: String,
}

/// Splits the body into lines as it arrives and reads its `data:` lines.
pub(crate) struct SseReader {
    line: Vec<u8>,
    max_bytes: usize,
    streamed: Streamed,
}

impl SseReader {
    /// A reader refusing a line or content longer than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        SseReader {
            line: Vec::new(),
            max_bytes,
            streamed: Streamed::default(),
        }
    }

    /// Reads `bytes`, handing each piece of content to `on_delta`; true once
    /// `[DONE]` has arrived (what follows it is not read).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<bool, StreamError> {
        let mut rest = bytes;
        while let Some(n) = rest.iter().position(|b| *b == b'\n') {
            self.push(&rest[..n])?;
            rest = &rest[n + 1..];
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, on_delta)?;
            if self.streamed.done {
                return Ok(true);
            }
        }
        self.push(rest)?;
        Ok(false)
    }

    /// What the stream added up to; a last line without its newline is read.
    pub fn finish(mut self, on_delta: &mut dyn FnMut(&str)) -> Result<Streamed, StreamError> {
        let line = std::mem::take(&mut self.line);
        if !self.streamed.done {
            self.line_done(&line, on_delta)?;
        }
        Ok(self.streamed)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if self.line.len() + bytes.len() > self.max_bytes {
            return Err(StreamError {
                reason: format!(
                    "a server-sent event line longer than {} bytes",
                    self.max_bytes
                ),
                text: String::new(),
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// One line: blank lines end an event and `:` lines are comments (the
    /// keep-alives of a busy provider); only `data:` carries anything.
    /// Each data line is read as a whole event, as both providers send one
    /// line per event: this also reads a server that omits the blank lines.
    fn line_done(
        &mut self,
        line: &[u8],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<(), StreamError> {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(());
        };
        let data = data.strip_prefix(' ').unwrap_or(data).trim_end();
        if data == "[DONE]" {
            self.streamed.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| StreamError {
            reason: format!("a streamed chunk is not JSON ({e})"),
            text: data.to_owned(),
        })?;
        self.apply(chunk, data, on_delta)
    }

    fn apply(
        &mut self,
        chunk: WireChunk,
        data: &str,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<(), StreamError> {
        if let Some(error) = chunk.error {
            return Err(StreamError {
                reason: format!("the provider broke off the stream: {}", error.message),
                text: data.to_owned(),
            });
        }
        let s = &mut self.streamed;
        s.id = s.id.take().or(chunk.id);
        s.model = s.model.take().or(chunk.model);
        if chunk.usage.is_some() {
            s.usage = chunk.usage;
        }
        for choice in chunk.choices {
            if let Some(piece) = choice.delta.and_then(|d| d.content) {
                if s.content.len() + piece.len() > self.max_bytes {
                    return Err(StreamError {
                        reason: format!("streamed content longer than {} bytes", self.max_bytes),
                        text: String::new(),
                    });
                }
                if !piece.is_empty() {
                    s.content.push_str(&piece);
                    on_delta(&piece);
                }
            }
            if choice.finish_reason.is_some() {
                s.finish_reason = choice.finish_reason;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(parts: &[&str]) -> (Result<Streamed, StreamError>, Vec<String>) {
        let mut deltas = Vec::new();
        let mut on_delta = |d: &str| deltas.push(d.to_owned());
        let mut r = SseReader::new(1 << 20);
        for p in parts {
            match r.feed(p.as_bytes(), &mut on_delta) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return (Err(e), deltas),
            }
        }
        let out = r.finish(&mut on_delta);
        (out, deltas)
    }

    #[test]
    fn events_split_anywhere_are_read_with_comments_and_crlf_ignored() {
        let text = ": keep-alive\r\n\r\ndata: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"{\\\"a\\\"\"}}]}\r\n\r\n\
                    data:{\"choices\":[{\"delta\":{\"content\":\":1}\"},\"finish_reason\":null}]}\n\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n\
                    data: [DONE]\n\ndata: {not read}\n\n";
        for split in [1, 7, 40, text.len()] {
            let parts: Vec<&str> = text
                .as_bytes()
                .chunks(split)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let (s, deltas) = read(&parts);
            let s = s.unwrap();
            assert_eq!(deltas, ["{\"a\"", ":1}"], "split {split}");
            assert_eq!(s.content, "{\"a\":1}");
            assert_eq!(s.finish_reason.as_deref(), Some("stop"));
            assert!(s.done && s.is_complete());
            assert_eq!(s.usage.unwrap().prompt_tokens, 3);
            assert_eq!(
                (s.id.as_deref(), s.model.as_deref()),
                (Some("c1"), Some("m"))
            );
        }
    }

    #[test]
    fn a_stream_cut_before_its_finish_is_incomplete() {
        let (s, deltas) = read(&["data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"a\"}}]}\n\n"]);
        let s = s.unwrap();
        assert_eq!(deltas.len(), 1);
        assert!(!s.is_complete());
    }

    #[test]
    fn a_chunk_that_is_not_json_or_an_error_event_fails_the_stream() {
        let (s, _) = read(&["data: {\"choices\": [\n\n"]);
        assert!(s.unwrap_err().reason.contains("not JSON"));
        let mut r = SseReader::new(1 << 20);
        let e = r
            .feed(
                b"data: {\"error\":{\"message\":\"overloaded\"}}\n",
                &mut |_| {},
            )
            .unwrap_err();
        assert!(e.reason.contains("overloaded"), "{}", e.reason);
    }

    #[test]
    fn a_line_past_the_limit_is_refused() {
        let mut r = SseReader::new(16);
        assert!(r.feed(&[b'x'; 17], &mut |_| {}).is_err());
    }
}
