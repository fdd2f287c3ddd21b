//! Request bodies whose large constant parts are shared between calls.
//!
//! A weekly plan's system message is the same ~25 KB for every person of a
//! diet (that is what makes the provider's cache hit). Serialised into each
//! body, a thousand calls in flight held a thousand copies of it. A body
//! here is a list of byte chunks: a message whose content is static text
//! of at least `SHARED_MIN` bytes is one chunk, escaped once per process
//! and referenced by every call; the rest is serialised per call as before.
//! Clones (a call sent again after an overload) copy no bytes.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde::Serialize;

use super::Message;

/// Static contents shorter than this are serialised with the call: a shared
/// chunk costs a lookup, worth it only for the big ones.
const SHARED_MIN: usize = 1024;

/// A chat request's JSON body as chunks.
#[derive(Debug, Clone)]
pub(crate) struct RequestBody {
    chunks: Arc<[Bytes]>,
    len: u64,
}

impl RequestBody {
    /// `head` is the request without its messages (a JSON object of at
    /// least one field); `messages` are appended as its last field.
    pub fn new(head: &impl Serialize, messages: &[Message]) -> serde_json::Result<Self> {
        let mut open = serde_json::to_vec(head)?;
        if open.pop() != Some(b'}') || open.len() < 2 {
            return Err(<serde_json::Error as serde::ser::Error>::custom(
                "the request head must be a JSON object with a field",
            ));
        }
        open.extend_from_slice(br#","messages":["#);
        let mut chunks = Vec::with_capacity(2 + 2 * messages.len());
        let mut pending = open;
        for (i, m) in messages.iter().enumerate() {
            if i > 0 {
                pending.push(b',');
            }
            pending.extend_from_slice(br#"{"role":"#);
            serde_json::to_writer(&mut pending, &m.role)?;
            pending.extend_from_slice(br#","content":"#);
            match &m.content {
                Cow::Borrowed(text) if text.len() >= SHARED_MIN => {
                    chunks.push(Bytes::from(std::mem::take(&mut pending)));
                    chunks.push(shared(text));
                }
                content => serde_json::to_writer(&mut pending, content.as_ref())?,
            }
            pending.push(b'}');
        }
        pending.extend_from_slice(b"]}");
        chunks.push(Bytes::from(pending));
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        Ok(RequestBody {
            chunks: chunks.into(),
            len,
        })
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The body for one send; it tells its exact length, so the request
    /// carries a Content-Length (no chunked encoding on HTTP/1.1).
    pub fn to_reqwest(&self) -> reqwest::Body {
        reqwest::Body::wrap(Chunks {
            chunks: self.chunks.clone(),
            next: 0,
            left: self.len,
        })
    }

    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// `text` as a JSON string, escaped once per process. The texts are
/// static, so there are as many entries as there are such texts in the
/// program (a system message per diet, and the meal plans' own).
fn shared(text: &'static str) -> Bytes {
    static ESCAPED: Mutex<Vec<(&'static str, Bytes)>> = Mutex::new(Vec::new());
    let mut known = ESCAPED.lock().unwrap_or_else(|e| e.into_inner());
    // By address first: the same static is the common case; equal text at
    // another address (a const inlined twice) is still one entry.
    if let Some((_, b)) = known
        .iter()
        .find(|(t, _)| std::ptr::eq(*t, text) || *t == text)
    {
        return b.clone();
    }
    let b = Bytes::from(serde_json::to_vec(text).expect("a str serialises"));
    known.push((text, b.clone()));
    b
}

struct Chunks {
    chunks: Arc<[Bytes]>,
    next: usize,
    left: u64,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(chunk) = self.chunks.get(self.next).cloned() else {
            return Poll::Ready(None);
        };
        self.next += 1;
        self.left -= chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use std::sync::LazyLock;

    static RULES: LazyLock<String> = LazyLock::new(|| "Rules \"quoted\"\n\t\u{e9}. ".repeat(200));

    fn head() -> Value {
        json!({"model": "m", "stream": false, "user_id": "u"})
    }

    #[test]
    fn the_body_is_the_request_as_json_with_the_messages_last() {
        let messages = [
            Message::system(RULES.as_str()),
            Message::user("Plan for \"Ann\" \u{1F600}\n"),
            Message::assistant(String::from("{}")),
        ];
        let body = RequestBody::new(&head(), &messages).unwrap();
        let bytes = body.to_vec();
        assert_eq!(body.len(), bytes.len() as u64);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let mut want = head();
        want["messages"] = json!([
            {"role": "system", "content": RULES.as_str()},
            {"role": "user", "content": "Plan for \"Ann\" \u{1F600}\n"},
            {"role": "assistant", "content": "{}"},
        ]);
        assert_eq!(v, want);
    }

    #[test]
    fn a_long_static_content_is_one_copy_for_every_body() {
        let rules: &'static str = RULES.as_str();
        let a = RequestBody::new(&head(), &[Message::system(rules), Message::user("a")]).unwrap();
        let b = RequestBody::new(&head(), &[Message::system(rules), Message::user("b")]).unwrap();
        assert_eq!(a.chunks.len(), 3);
        let (sa, sb) = (&a.chunks[1], &b.chunks[1]);
        assert_eq!(sa.as_ptr(), sb.as_ptr(), "the same bytes, not a copy");
        assert_eq!(sa.len(), serde_json::to_vec(rules).unwrap().len());
        // Owned text, or short static text, goes in with the call.
        let owned = RequestBody::new(&head(), &[Message::system(rules.to_owned())]).unwrap();
        assert_eq!(owned.chunks.len(), 1);
        let short = RequestBody::new(&head(), &[Message::system("Be brief.")]).unwrap();
        assert_eq!(short.chunks.len(), 1);
        assert_eq!(owned.to_vec(), a_only_system(rules));
    }

    fn a_only_system(rules: &'static str) -> Vec<u8> {
        RequestBody::new(&head(), &[Message::system(rules)])
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_head_that_is_not_an_object_with_a_field_is_refused() {
        for bad in [json!({}), json!([1]), json!("x")] {
            assert!(RequestBody::new(&bad, &[]).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_sent_body_tells_its_exact_length_and_sends_every_chunk() {
        use http_body_util::BodyExt;
        let body = RequestBody::new(
            &head(),
            &[Message::system(RULES.as_str()), Message::user("u")],
        )
        .unwrap();
        let sent = Chunks {
            chunks: body.chunks.clone(),
            next: 0,
            left: body.len,
        };
        assert_eq!(sent.size_hint().exact(), Some(body.len()));
        let collected = sent.collect().await.unwrap().to_bytes();
        assert_eq!(collected.as_ref(), body.to_vec().as_slice());
    }
}
