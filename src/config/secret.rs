//! Settings that hold secrets print as `[redacted]`, so a settings struct
//! can be logged or shown with `{:?}` whole: tokens and keys are a
//! `Secret`, and database URLs lose their password.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A token, key or password from the settings. Reading it takes an
/// explicit `expose()`, so it cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced; a URL that does not parse is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "[unparsable URL, redacted]".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("redacted"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "redacted".into()
                } else {
                    v
                };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_everything_but_its_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5432/plans?sslmode=require"),
            "postgres://app:redacted@db.internal:5432/plans?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@db/plans?password=hunter2&sslmode=require"),
            "postgres://app@db/plans?password=redacted&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert!(!redact_url("host=db password=hunter2").contains("hunter2"));
    }
}
