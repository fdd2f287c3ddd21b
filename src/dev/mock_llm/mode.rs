//! How the mock answers one call, and scripts of answers per call.
//!
//! A mode is `name` or `name:arg`; a script is modes separated by commas,
//! answered in order, the last one repeating: `"429,429,ok"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One answer of the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockMode {
    /// `ok` or `ok:NAME`: a valid completion whose content comes from the
    /// default responder or the named one.
    Ok { responder: Option<String> },
    /// `slow[:MS]` (default 10000): `ok`, after an extra delay.
    Slow { delay: Duration },
    /// `rate_limit[:SECS]` or `429[:SECS]` (default 1): 429 with `Retry-After: SECS`.
    RateLimit { retry_after_secs: u64 },
    /// `rate_limit_ms[:MS]` (default 1500): 429 with OpenAI's `retry-after-ms`
    /// and the rounded-up `Retry-After`.
    RateLimitMs { retry_after_ms: u64 },
    /// `quota_exceeded`: OpenAI's 429 `insufficient_quota` (billing, not pacing).
    QuotaExceeded,
    /// `server_error` or `500`.
    ServerError,
    /// `bad_gateway` or `502`: an HTML page from a proxy, not JSON.
    BadGateway,
    /// `overloaded` or `503`: DeepSeek's "Server Overloaded".
    Overloaded,
    /// `unauthorized` or `401`: DeepSeek's "Authentication Fails".
    Unauthorized,
    /// `insufficient_balance` or `402`: DeepSeek's real 402 body.
    InsufficientBalance,
    /// `http:CODE`: any status with an OpenAI-shaped error body.
    Status(u16),
    /// `blank`: content of only spaces with finish_reason stop, as DeepSeek's
    /// JSON mode does when the output is not JSON.
    Blank,
    /// `broken_json`: content that is almost JSON (a trailing comma).
    BrokenJson,
    /// `truncated`: finish_reason length and JSON cut in the middle.
    Truncated,
    /// `keepalive[:LINES]` (default 5): blank lines streamed with pauses
    /// before a valid body, as a busy DeepSeek does.
    Keepalive { lines: u32 },
    /// `insufficient_system_resource`: DeepSeek's finish_reason of that name.
    InsufficientSystemResource,
    /// `content_filter`: finish_reason content_filter with partial content.
    ContentFilter,
    /// `disconnect`: a 200 whose body breaks off mid-way.
    Disconnect,
}

impl MockMode {
    /// `ok` with the default responder.
    pub fn ok() -> Self {
        MockMode::Ok { responder: None }
    }

    /// The named responder this answer needs, if any.
    pub fn responder_name(&self) -> Option<&str> {
        match self {
            MockMode::Ok { responder } => responder.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad mock mode {input:?}: {reason}")]
pub struct MockModeError {
    pub input: String,
    pub reason: String,
}

impl FromStr for MockMode {
    type Err = MockModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s, None),
        };
        let err = |reason: &str| MockModeError {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let num = |default: u64| -> Result<u64, MockModeError> {
            arg.map_or(Ok(default), |a| {
                a.parse()
                    .map_err(|_| err("the argument must be a whole number"))
            })
        };
        let no_arg = |mode: MockMode| match arg {
            None => Ok(mode),
            Some(_) => Err(err("this mode takes no argument")),
        };
        match name.to_ascii_lowercase().as_str() {
            "ok" => match arg {
                Some("") => Err(err("empty responder name")),
                a => Ok(MockMode::Ok {
                    responder: a.map(str::to_owned),
                }),
            },
            "slow" => Ok(MockMode::Slow {
                delay: Duration::from_millis(num(10_000)?),
            }),
            "rate_limit" | "429" => Ok(MockMode::RateLimit {
                retry_after_secs: num(1)?,
            }),
            "rate_limit_ms" => Ok(MockMode::RateLimitMs {
                retry_after_ms: num(1_500)?,
            }),
            "quota_exceeded" => no_arg(MockMode::QuotaExceeded),
            "server_error" | "500" => no_arg(MockMode::ServerError),
            "bad_gateway" | "502" => no_arg(MockMode::BadGateway),
            "overloaded" | "503" => no_arg(MockMode::Overloaded),
            "unauthorized" | "401" => no_arg(MockMode::Unauthorized),
            "insufficient_balance" | "402" => no_arg(MockMode::InsufficientBalance),
            "http" => match u16::try_from(num(0)?) {
                Ok(code @ 300..=599) => Ok(MockMode::Status(code)),
                _ => Err(err(
                    "http needs a status between 300 and 599, e.g. http:404",
                )),
            },
            "blank" => no_arg(MockMode::Blank),
            "broken_json" => no_arg(MockMode::BrokenJson),
            "truncated" => no_arg(MockMode::Truncated),
            "keepalive" => {
                let lines = u32::try_from(num(5)?).map_err(|_| err("too many lines"))?;
                Ok(MockMode::Keepalive { lines })
            }
            "insufficient_system_resource" => no_arg(MockMode::InsufficientSystemResource),
            "content_filter" => no_arg(MockMode::ContentFilter),
            "disconnect" => no_arg(MockMode::Disconnect),
            _ => Err(err("unknown mode")),
        }
    }
}

impl fmt::Display for MockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MockMode::Ok { responder: None } => f.write_str("ok"),
            MockMode::Ok { responder: Some(n) } => write!(f, "ok:{n}"),
            MockMode::Slow { delay } => write!(f, "slow:{}", delay.as_millis()),
            MockMode::RateLimit { retry_after_secs } => write!(f, "rate_limit:{retry_after_secs}"),
            MockMode::RateLimitMs { retry_after_ms } => write!(f, "rate_limit_ms:{retry_after_ms}"),
            MockMode::QuotaExceeded => f.write_str("quota_exceeded"),
            MockMode::ServerError => f.write_str("server_error"),
            MockMode::BadGateway => f.write_str("bad_gateway"),
            MockMode::Overloaded => f.write_str("overloaded"),
            MockMode::Unauthorized => f.write_str("unauthorized"),
            MockMode::InsufficientBalance => f.write_str("insufficient_balance"),
            MockMode::Status(code) => write!(f, "http:{code}"),
            MockMode::Blank => f.write_str("blank"),
            MockMode::BrokenJson => f.write_str("broken_json"),
            MockMode::Truncated => f.write_str("truncated"),
            MockMode::Keepalive { lines } => write!(f, "keepalive:{lines}"),
            MockMode::InsufficientSystemResource => f.write_str("insufficient_system_resource"),
            MockMode::ContentFilter => f.write_str("content_filter"),
            MockMode::Disconnect => f.write_str("disconnect"),
        }
    }
}

/// Answers per call: entry N answers call N (0-based); the last entry
/// answers every call after the script runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script(Vec<MockMode>);

impl Script {
    pub fn new(modes: Vec<MockMode>) -> Result<Self, MockModeError> {
        if modes.is_empty() {
            return Err(MockModeError {
                input: String::new(),
                reason: "empty script".into(),
            });
        }
        Ok(Script(modes))
    }

    /// A script of one mode, answering every call the same way.
    pub fn always(mode: MockMode) -> Self {
        Script(vec![mode])
    }

    /// The answer to call `n` (0-based).
    pub fn mode_for(&self, n: usize) -> &MockMode {
        &self.0[n.min(self.0.len() - 1)]
    }

    pub fn modes(&self) -> &[MockMode] {
        &self.0
    }
}

impl Default for Script {
    fn default() -> Self {
        Script::always(MockMode::ok())
    }
}

impl FromStr for Script {
    type Err = MockModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let modes = s
            .split(',')
            .filter(|m| !m.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Script::new(modes)
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_answers_in_order_and_repeats_its_last_entry() {
        let s: Script = "429, 429:3, ok".parse().unwrap();
        assert_eq!(
            s.mode_for(0),
            &MockMode::RateLimit {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            s.mode_for(1),
            &MockMode::RateLimit {
                retry_after_secs: 3
            }
        );
        assert_eq!(s.mode_for(2), &MockMode::ok());
        assert_eq!(s.mode_for(99), &MockMode::ok());
    }

    #[test]
    fn every_mode_round_trips_through_its_display() {
        let all = "ok,ok:diet_breaking,slow:250,rate_limit:2,rate_limit_ms:1500,quota_exceeded,\
                   server_error,bad_gateway,overloaded,unauthorized,insufficient_balance,http:404,\
                   blank,broken_json,truncated,keepalive:3,insufficient_system_resource,\
                   content_filter,disconnect";
        let s: Script = all.parse().unwrap();
        assert_eq!(s.modes().len(), 19);
        assert_eq!(s.to_string().parse::<Script>().unwrap(), s);
    }

    #[test]
    fn bad_modes_and_empty_scripts_are_refused_with_the_reason() {
        assert!(
            "teapot"
                .parse::<MockMode>()
                .unwrap_err()
                .reason
                .contains("unknown")
        );
        assert!("http:200".parse::<MockMode>().is_err());
        assert!("blank:3".parse::<MockMode>().is_err());
        assert!("slow:soon".parse::<MockMode>().is_err());
        assert!(" , ".parse::<Script>().is_err());
    }
}
