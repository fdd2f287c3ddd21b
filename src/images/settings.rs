//! The Unsplash settings: flags and env vars, their checks, and the client
//! they make. `config.rs` flattens this group into the commands that attach
//! meal images.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::unsplash::{Unsplash, UnsplashConfig};
use crate::config::SettingError;

/// Where meal images come from (off unless UNSPLASH_ACCESS_KEY is set).
#[derive(Clone, clap::Args)]
pub struct UnsplashSettings {
    /// Unsplash access key (Client-ID); unset: meals get no images.
    #[arg(long, env = "UNSPLASH_ACCESS_KEY", hide_env_values = true)]
    pub unsplash_access_key: Option<String>,

    /// Base URL of the Unsplash API.
    #[arg(
        long,
        env = "UNSPLASH_API_URL",
        default_value = "https://api.unsplash.com"
    )]
    pub unsplash_api_url: String,

    /// The application's name on Unsplash, sent as utm_source in attribution links.
    #[arg(long, env = "UNSPLASH_APP_NAME", default_value = "plan-worker")]
    pub unsplash_app_name: String,

    /// Requests per clock hour to Unsplash, shared by every worker (50 in
    /// demo mode, 5000 once approved for production).
    #[arg(long, env = "UNSPLASH_REQUESTS_PER_HOUR", default_value_t = 50)]
    pub unsplash_requests_per_hour: u32,

    /// Deadline of one Unsplash request in seconds.
    #[arg(long, env = "UNSPLASH_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub unsplash_timeout_seconds: f64,
}

// Written by hand: a derived Debug would print the access key wherever the
// settings are logged.
impl fmt::Debug for UnsplashSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsplashSettings")
            .field(
                "unsplash_access_key",
                &self.unsplash_access_key.as_ref().map(|_| "[redacted]"),
            )
            .field("unsplash_api_url", &self.unsplash_api_url)
            .field("unsplash_app_name", &self.unsplash_app_name)
            .field(
                "unsplash_requests_per_hour",
                &self.unsplash_requests_per_hour,
            )
            .field("unsplash_timeout_seconds", &self.unsplash_timeout_seconds)
            .finish()
    }
}

impl Default for UnsplashSettings {
    fn default() -> Self {
        defaults()
    }
}

/// The defaults of the group, read from its `#[arg]` attributes (environment
/// ignored), as `config.rs` does for its own groups.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let matches = cmd
        .try_get_matches_from(["defaults"])
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("the defaults are valid")
}

fn bad(field: &'static str, message: impl Into<String>) -> SettingError {
    SettingError {
        field,
        message: message.into(),
    }
}

impl UnsplashSettings {
    /// The access key, when one is set (blank counts as unset).
    fn key(&self) -> Option<&str> {
        self.unsplash_access_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// Refuses settings that would make the client misbehave, naming the field.
    pub fn check(&self) -> Result<(), SettingError> {
        if let Some(key) = self.key()
            && !key.bytes().all(|b| b.is_ascii_graphic())
        {
            // The key itself is never part of the message.
            return Err(bad(
                "unsplash_access_key",
                "has characters not allowed in an HTTP header",
            ));
        }
        self.api_url()?;
        if self.unsplash_app_name.trim().is_empty() {
            return Err(bad("unsplash_app_name", "must not be empty"));
        }
        if self.unsplash_requests_per_hour == 0 {
            return Err(bad(
                "unsplash_requests_per_hour",
                "must be at least 1 (unset UNSPLASH_ACCESS_KEY to turn images off)",
            ));
        }
        let t = self.unsplash_timeout_seconds;
        if !(t.is_finite() && t > 0.0) {
            return Err(bad(
                "unsplash_timeout_seconds",
                format!("must be a positive number of seconds, got {t}"),
            ));
        }
        Ok(())
    }

    fn api_url(&self) -> Result<Url, SettingError> {
        let url = Url::parse(self.unsplash_api_url.trim())
            .map_err(|e| bad("unsplash_api_url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(
                "unsplash_api_url",
                "must be an http(s) URL with a host",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("unsplash_api_url", "must have no query or fragment"));
        }
        Ok(url)
    }

    /// The client, or None when no access key is set (meals get no images).
    pub fn client(&self) -> Result<Option<Unsplash>, SettingError> {
        self.check()?;
        let Some(key) = self.key() else {
            return Ok(None);
        };
        Unsplash::new(UnsplashConfig {
            api_url: self.api_url()?,
            access_key: key.to_owned(),
            app_name: self.unsplash_app_name.trim().to_owned(),
            timeout: Duration::from_secs_f64(self.unsplash_timeout_seconds),
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key() -> UnsplashSettings {
        UnsplashSettings {
            unsplash_access_key: Some("secret-key-123".into()),
            ..UnsplashSettings::default()
        }
    }

    #[test]
    fn the_defaults_are_demo_mode_against_the_real_api() {
        let s = UnsplashSettings::default();
        assert_eq!(s.unsplash_api_url, "https://api.unsplash.com");
        assert_eq!(s.unsplash_app_name, "plan-worker");
        assert_eq!(s.unsplash_requests_per_hour, 50);
        assert_eq!(s.unsplash_timeout_seconds, 10.0);
        assert!(s.unsplash_access_key.is_none());
        s.check().unwrap();
    }

    #[test]
    fn without_a_key_there_is_no_client() {
        assert!(UnsplashSettings::default().client().unwrap().is_none());
        let blank = UnsplashSettings {
            unsplash_access_key: Some("  ".into()),
            ..UnsplashSettings::default()
        };
        assert!(blank.client().unwrap().is_none());
        assert!(with_key().client().unwrap().is_some());
    }

    #[test]
    fn each_bad_setting_is_refused_naming_its_field() {
        type Spoil = fn(&mut UnsplashSettings);
        let cases: [(&str, Spoil); 6] = [
            ("unsplash_api_url", |s| {
                s.unsplash_api_url = "api.unsplash.com".into()
            }),
            ("unsplash_api_url", |s| {
                s.unsplash_api_url = "ftp://x".into()
            }),
            ("unsplash_app_name", |s| s.unsplash_app_name = " ".into()),
            ("unsplash_requests_per_hour", |s| {
                s.unsplash_requests_per_hour = 0
            }),
            ("unsplash_timeout_seconds", |s| {
                s.unsplash_timeout_seconds = 0.0
            }),
            ("unsplash_access_key", |s| {
                s.unsplash_access_key = Some("secret key\n".into())
            }),
        ];
        for (field, spoil) in cases {
            let mut s = with_key();
            spoil(&mut s);
            let err = s.check().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(s.client().is_err());
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", with_key());
        assert!(!shown.contains("secret-key-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
