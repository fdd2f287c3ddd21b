//! Off-peak economy: the provider's windows, the off-peak price and how
//! long economy jobs may wait for them.

use std::time::Duration;

use clap::Args;

use super::SettingError;
use crate::offpeak::{Economy, Form, OffPeak};

/// When the provider's tokens are cheaper, and how economy jobs use it.
#[derive(Debug, Clone, Args)]
pub struct EconomySettings {
    /// The provider's peak windows in UTC; everything else is off-peak, e.g.
    /// "mon-fri 01:00-04:00,06:00-10:00" (groups separated by `;`, each with
    /// an optional weekday range; windows may wrap midnight). Unset, with
    /// LLM_OFFPEAK_WINDOWS unset too: no windows known, economy jobs run at once.
    #[arg(long, env = "LLM_PEAK_WINDOWS")]
    pub llm_peak_windows: Option<String>,

    /// The provider's off-peak windows in UTC, listed directly, e.g.
    /// "16:30-00:30" (same syntax as LLM_PEAK_WINDOWS; set one of the two).
    #[arg(long, env = "LLM_OFFPEAK_WINDOWS")]
    pub llm_offpeak_windows: Option<String>,

    /// Off-peak price as a share of the LLM_PRICE_* prices, for tokens
    /// bought in an off-peak window (DeepSeek: 0.5).
    #[arg(long, env = "LLM_OFFPEAK_PRICE_FACTOR", default_value_t = 0.5)]
    pub llm_offpeak_price_factor: f64,

    /// Hours an economy job that names no deadline may wait for an
    /// off-peak window, from its earliest start.
    #[arg(long, env = "ECONOMY_MAX_DELAY_HOURS", default_value_t = 24.0)]
    pub economy_max_delay_hours: f64,

    /// Seconds an off-peak start must leave before an economy job's
    /// deadline for the job to wait for it (room for a run and a retry);
    /// otherwise it runs at once.
    #[arg(long, env = "ECONOMY_START_MARGIN_SECONDS", default_value_t = 1800.0)]
    pub economy_start_margin_seconds: f64,
}

impl Default for EconomySettings {
    fn default() -> Self {
        super::defaults()
    }
}

impl EconomySettings {
    /// The off-peak windows, None when none are configured; a bad value
    /// or both settings at once is one error naming the setting.
    pub fn windows(&self) -> Result<Option<OffPeak>, SettingError> {
        let set = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        match (set(&self.llm_peak_windows), set(&self.llm_offpeak_windows)) {
            (Some(_), Some(_)) => Err(SettingError {
                field: "LLM_PEAK_WINDOWS, LLM_OFFPEAK_WINDOWS",
                message: "both are set; set one: the peak windows, or the off-peak ones".into(),
            }),
            (Some(spec), None) => OffPeak::parse(&spec, Form::Peak)
                .map(Some)
                .map_err(|message| SettingError {
                    field: "LLM_PEAK_WINDOWS",
                    message,
                }),
            (None, Some(spec)) => {
                OffPeak::parse(&spec, Form::OffPeak)
                    .map(Some)
                    .map_err(|message| SettingError {
                        field: "LLM_OFFPEAK_WINDOWS",
                        message,
                    })
            }
            (None, None) => Ok(None),
        }
    }

    /// Everything checked, ready for the API, the worker and the LLM client.
    pub fn economy(&self) -> Result<Economy, SettingError> {
        let windows = self.windows()?;
        let f = self.llm_offpeak_price_factor;
        if !(f.is_finite() && (0.0..=1.0).contains(&f)) {
            return Err(SettingError {
                field: "LLM_OFFPEAK_PRICE_FACTOR",
                message: format!("must be between 0 and 1, got {f}"),
            });
        }
        let h = self.economy_max_delay_hours;
        if !(h.is_finite() && h > 0.0 && h <= 366.0 * 24.0) {
            return Err(SettingError {
                field: "ECONOMY_MAX_DELAY_HOURS",
                message: format!("must be more than 0 and at most 8784 (366 days), got {h}"),
            });
        }
        let m = self.economy_start_margin_seconds;
        if !(m.is_finite() && m >= 0.0) {
            return Err(SettingError {
                field: "ECONOMY_START_MARGIN_SECONDS",
                message: format!("must be 0 or more, got {m}"),
            });
        }
        Ok(Economy {
            windows,
            max_delay: Duration::from_secs_f64(h * 3600.0),
            start_margin: Duration::from_secs_f64(m),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_window_settings_at_once_are_refused_naming_both() {
        let s = EconomySettings {
            llm_peak_windows: Some("01:00-04:00".into()),
            llm_offpeak_windows: Some("16:30-00:30".into()),
            ..EconomySettings::default()
        };
        let err = s.economy().unwrap_err().to_string();
        assert!(
            err.contains("LLM_PEAK_WINDOWS") && err.contains("LLM_OFFPEAK_WINDOWS"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_window_is_refused_naming_its_setting() {
        let s = EconomySettings {
            llm_offpeak_windows: Some("16:30-25:00".into()),
            ..EconomySettings::default()
        };
        let err = s.economy().unwrap_err();
        assert_eq!(err.field, "LLM_OFFPEAK_WINDOWS");
        assert!(err.message.contains("16:30-25:00"), "{}", err.message);
    }

    #[test]
    fn no_windows_by_default() {
        let e = EconomySettings::default().economy().unwrap();
        assert!(e.windows.is_none());
        assert_eq!(e.max_delay, Duration::from_secs(24 * 3600));
    }
}
