//! Operators' sessions: the login check, the session cookie, the CSRF token
//! and the Origin check of every POST.
//!
//! Sessions are stateless: the cookie carries the operator's name, its
//! expiry and a random session id, signed with HMAC-SHA256 under a key made
//! at random when the process starts. Why not a table: the console lives on
//! each worker's internal ops listener, and operator tokens are read at
//! start, so revoking one (removing it from ADMIN_TOKENS) means a restart,
//! which also makes a new key and so ends every session at once. A table
//! would add a write per login and a read per page for nothing more. The
//! cost: a logout clears the cookie but cannot revoke a copy of it before
//! it expires (OPS_CONSOLE_SESSION_MINUTES bounds that).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::HeaderMap;
use axum::http::header;

/// The session cookie's name.
pub const COOKIE: &str = "plan_ops_session";

/// How long a refused login waits before it answers: guessing is slow, and
/// the wait is the same whatever was wrong with the token.
pub const REFUSAL_DELAY: Duration = Duration::from_secs(1);

/// A signed-in operator, read from a valid cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub operator: String,
    pub expires_at: u64,
    /// Random per login; the CSRF token is derived from it.
    sid: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session cookie")]
    Missing,
    #[error("the session cookie is malformed or its signature is wrong")]
    Invalid,
    #[error("the session has expired")]
    Expired,
    #[error("the session's operator is no longer configured")]
    UnknownOperator,
}

/// The keys and settings of this process's sessions.
pub struct Sessions {
    key: hmac::Key,
    ttl: Duration,
    secure: bool,
    /// Operators' names and tokens (ADMIN_TOKEN as "admin", ADMIN_TOKENS).
    operators: Vec<(String, String)>,
}

impl Sessions {
    pub fn new(operators: Vec<(String, String)>, ttl: Duration, secure: bool) -> Self {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random generator works");
        Sessions {
            key,
            ttl,
            secure,
            operators,
        }
    }

    /// Whether any operator may sign in at all.
    pub fn enabled(&self) -> bool {
        !self.operators.is_empty()
    }

    /// The operator whose token this is. Every token is compared in
    /// constant time, so the time taken says nothing of which matched.
    pub fn check_token(&self, token: &str) -> Option<&str> {
        let token = token.trim();
        let mut found = None;
        for (name, t) in &self.operators {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) && !token.is_empty() {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// A new session of `operator` and its `Set-Cookie` value.
    pub fn start(&self, operator: &str) -> (Session, String) {
        let mut sid = [0u8; 16];
        SystemRandom::new()
            .fill(&mut sid)
            .expect("the system random generator works");
        let session = Session {
            operator: operator.to_owned(),
            expires_at: unix_now() + self.ttl.as_secs(),
            sid: hex(&sid),
        };
        let payload = session.payload();
        let mac = hex(hmac::sign(&self.key, payload.as_bytes()).as_ref());
        let cookie = format!(
            "{COOKIE}={payload}|{mac}; Path=/ops; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.ttl.as_secs(),
            if self.secure { "; Secure" } else { "" }
        );
        (session, cookie)
    }

    /// A `Set-Cookie` value that removes the session cookie.
    pub fn end(&self) -> String {
        format!(
            "{COOKIE}=; Path=/ops; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The session of a request's cookies.
    pub fn read(&self, headers: &HeaderMap) -> Result<Session, SessionError> {
        let value = cookie_value(headers, COOKIE).ok_or(SessionError::Missing)?;
        let (payload, mac) = value.rsplit_once('|').ok_or(SessionError::Invalid)?;
        let mac = unhex(mac).ok_or(SessionError::Invalid)?;
        hmac::verify(&self.key, payload.as_bytes(), &mac).map_err(|_| SessionError::Invalid)?;
        let mut parts = payload.split('|');
        let (Some(operator), Some(expires), Some(sid), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Invalid);
        };
        let expires_at: u64 = expires.parse().map_err(|_| SessionError::Invalid)?;
        if expires_at <= unix_now() {
            return Err(SessionError::Expired);
        }
        if !self.operators.iter().any(|(name, _)| name == operator) {
            return Err(SessionError::UnknownOperator);
        }
        Ok(Session {
            operator: operator.to_owned(),
            expires_at,
            sid: sid.to_owned(),
        })
    }

    /// The CSRF token of a session: a MAC of its id, so it needs no storage
    /// and is worthless outside that session.
    pub fn csrf_token(&self, session: &Session) -> String {
        hex(hmac::sign(&self.key, format!("csrf|{}", session.sid).as_bytes()).as_ref())
    }

    /// Whether a submitted CSRF token is the session's.
    pub fn csrf_ok(&self, session: &Session, submitted: &str) -> bool {
        let Some(mac) = unhex(submitted.trim()) else {
            return false;
        };
        hmac::verify(&self.key, format!("csrf|{}", session.sid).as_bytes(), &mac).is_ok()
    }
}

impl Session {
    fn payload(&self) -> String {
        format!("{}|{}|{}", self.operator, self.expires_at, self.sid)
    }
}

/// Whether a POST comes from a page of this console. A browser sends
/// `Origin` with every POST; it must name the host the request was sent to.
/// Without it (curl, an old browser), `Sec-Fetch-Site`, when sent, must
/// not say cross-site; the CSRF token is checked in any case.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            _ => false,
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sessions() -> Sessions {
        Sessions::new(
            vec![
                ("admin".into(), "admin-token-0123456789".into()),
                ("alice".into(), "alice-token-0123456789".into()),
            ],
            Duration::from_secs(600),
            false,
        )
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        h
    }

    #[test]
    fn a_token_names_its_operator_and_nothing_else_does() {
        let s = sessions();
        assert_eq!(s.check_token("alice-token-0123456789"), Some("alice"));
        assert_eq!(s.check_token(" admin-token-0123456789 "), Some("admin"));
        for bad in ["", "alice-token-012345678", "alice-token-01234567890", "x"] {
            assert_eq!(s.check_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_cookie_reads_back_as_its_session_and_a_changed_one_does_not() {
        let s = sessions();
        let (session, cookie) = s.start("alice");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/ops", "Max-Age=600"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains("Secure"));
        assert_eq!(s.read(&with_cookie(&cookie)), Ok(session.clone()));

        // Another operator's name under the same signature.
        let forged = cookie.replacen("alice", "admin", 1);
        assert_eq!(s.read(&with_cookie(&forged)), Err(SessionError::Invalid));
        // A later expiry.
        let later = cookie.replacen(
            &session.expires_at.to_string(),
            &(session.expires_at + 9999).to_string(),
            1,
        );
        assert_eq!(s.read(&with_cookie(&later)), Err(SessionError::Invalid));
        // Another process's key.
        assert_eq!(
            sessions().read(&with_cookie(&cookie)),
            Err(SessionError::Invalid)
        );
        assert_eq!(s.read(&HeaderMap::new()), Err(SessionError::Missing));
    }

    #[test]
    fn an_expired_session_is_refused() {
        let s = Sessions::new(
            vec![("admin".into(), "admin-token-0123456789".into())],
            Duration::ZERO,
            true,
        );
        let (_, cookie) = s.start("admin");
        assert!(cookie.contains("; Secure"));
        assert_eq!(s.read(&with_cookie(&cookie)), Err(SessionError::Expired));
    }

    #[test]
    fn the_csrf_token_belongs_to_one_session() {
        let s = sessions();
        let (a, _) = s.start("alice");
        let (b, _) = s.start("alice");
        let token = s.csrf_token(&a);
        assert!(s.csrf_ok(&a, &token));
        assert!(!s.csrf_ok(&b, &token));
        assert!(!s.csrf_ok(&a, ""));
        assert!(!s.csrf_ok(&a, "zz"));
    }

    #[test]
    fn a_post_from_another_origin_is_not_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9464"));
        assert!(
            same_origin(&h),
            "no Origin, no Sec-Fetch-Site: the token decides"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9464"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}
