//! The provider's off-peak windows: when tokens cost less (DeepSeek: half
//! price outside weekday peaks). Parsed from configuration, never written
//! in code, since providers move them.
//!
//! A spec lists windows in UTC as groups separated by `;`, each an
//! optional weekday qualifier and comma-separated `HH:MM-HH:MM` windows:
//! `mon-fri 01:00-04:00,06:00-10:00; sat 02:00-03:00`. A window may wrap
//! midnight (`22:00-02:00`, counted from the day it starts); `24:00` ends a
//! window at midnight. [`OffPeak`] holds the off-peak part of the week,
//! given directly or as the complement of peak windows.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Whether a spec lists the expensive or the cheap windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The windows are peak; off-peak is everything else.
    Peak,
    /// The windows are off-peak.
    OffPeak,
}

/// The off-peak seconds of the week, as sorted, disjoint, non-touching
/// `[start, end)` intervals counted from Monday 00:00 UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffPeak {
    intervals: Vec<(i64, i64)>,
}

/// One off-peak stretch of real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl OffPeak {
    /// Parses a spec of the given form; the error says what is wrong with
    /// which part (the caller names the setting).
    pub fn parse(spec: &str, form: Form) -> Result<OffPeak, String> {
        let mut listed = Vec::new();
        for group in spec.split(';').map(str::trim).filter(|g| !g.is_empty()) {
            let (days, windows) = split_days(group)?;
            for w in windows.split(',').map(str::trim) {
                let (start, end) = parse_window(w)?;
                let length = if end > start {
                    end - start
                } else {
                    end + DAY - start
                };
                for day in (0..7).filter(|d| days[*d as usize]) {
                    let from = day * DAY + start;
                    push_wrapping(&mut listed, from, from + length);
                }
            }
        }
        if listed.is_empty() {
            return Err("no window given (e.g. \"mon-fri 01:00-04:00,06:00-10:00\")".into());
        }
        let listed = merge(listed);
        let intervals = match form {
            Form::OffPeak => listed,
            Form::Peak => complement(&listed),
        };
        Ok(OffPeak { intervals })
    }

    /// Whether `t` is off-peak.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let s = second_of_week(t);
        self.intervals.iter().any(|&(a, b)| a <= s && s < b)
    }

    /// `t` itself when it is off-peak, else the start of the next off-peak
    /// stretch; None when the week has no off-peak time at all.
    pub fn next_offpeak_start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(t) {
            return Some(t);
        }
        self.stretches_from(t, 8).first().map(|s| s.start)
    }

    /// The off-peak stretches that end after `from`, up to `days` ahead of
    /// it, in order; one crossing a week's end is one stretch. The first
    /// may have begun before `from`.
    pub fn stretches_from(&self, from: DateTime<Utc>, days: i64) -> Vec<Stretch> {
        let monday = monday_of(from);
        let until = from + Duration::days(days);
        let mut out: Vec<Stretch> = Vec::new();
        // From the week before (a stretch may run into this one) to the
        // week that holds `until`.
        let weeks = days / 7 + 2;
        for w in -1..=weeks {
            let base = monday + Duration::seconds(w * WEEK);
            for &(a, b) in &self.intervals {
                let (start, end) = (base + Duration::seconds(a), base + Duration::seconds(b));
                match out.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    _ => out.push(Stretch { start, end }),
                }
            }
        }
        out.retain(|s| s.end > from && s.start < until);
        out
    }
}

/// How economy jobs are placed: the windows (None: none known, so economy
/// jobs run at once), the default deadline and the room a run needs.
#[derive(Debug, Clone, Default)]
pub struct Economy {
    pub windows: Option<OffPeak>,
    /// Deadline of an economy job that names none, from its earliest start.
    pub max_delay: std::time::Duration,
    /// An economy job waits for an off-peak start only when that start is
    /// at least this long before its deadline.
    pub start_margin: std::time::Duration,
}

/// The off-peak stretches the database places jobs in: `starts[i]` to
/// `ends[i]`, on the caller's windows, evaluated against the database's
/// clock (`plan_job_economy_run_after`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stretches {
    pub starts: Vec<DateTime<Utc>>,
    pub ends: Vec<DateTime<Utc>>,
}

/// Days of stretches handed to the database: a week and a day, so that the
/// next off-peak start, if the week has any, is always among them.
const STRETCH_DAYS: i64 = 8;

impl Economy {
    /// The stretches from a day before `from` (clocks differ a little) on;
    /// None when no windows are known.
    pub fn stretches(&self, from: DateTime<Utc>) -> Option<Stretches> {
        let w = self.windows.as_ref()?;
        let (starts, ends) = w
            .stretches_from(from - Duration::days(1), STRETCH_DAYS + 1)
            .into_iter()
            .map(|s| (s.start, s.end))
            .unzip();
        Some(Stretches { starts, ends })
    }

    /// Whether a claim at `t` should ask the database to postpone economy
    /// jobs: windows are known and `t` is in a peak.
    pub fn is_peak(&self, t: DateTime<Utc>) -> bool {
        self.windows.as_ref().is_some_and(|w| !w.contains(t))
    }
}

/// A group's weekdays (every day when it names none) and its windows.
fn split_days(group: &str) -> Result<([bool; 7], &str), String> {
    let Some((head, rest)) = group.split_once(char::is_whitespace) else {
        return Ok(([true; 7], group));
    };
    let day = |name: &str| {
        DAYS.iter()
            .position(|d| name.eq_ignore_ascii_case(d))
            .ok_or_else(|| format!("{name:?}: not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let (first, last) = match head.split_once('-') {
        Some((a, b)) => (day(a)?, day(b)?),
        None => (day(head)?, day(head)?),
    };
    let mut days = [false; 7];
    let mut d = first;
    loop {
        days[d] = true;
        if d == last {
            break;
        }
        d = (d + 1) % 7;
    }
    Ok((days, rest.trim()))
}

/// `HH:MM-HH:MM` as seconds from midnight; an end at or before the start
/// wraps to the next day, except that equal ends are refused.
fn parse_window(w: &str) -> Result<(i64, i64), String> {
    let bad = || format!("{w:?}: expected HH:MM-HH:MM, e.g. 01:00-04:00");
    let (a, b) = w.split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        clock(a.trim(), false).ok_or_else(bad)?,
        clock(b.trim(), true).ok_or_else(bad)?,
    );
    if start == end {
        return Err(format!(
            "{w:?}: starts where it ends; a whole day is 00:00-24:00"
        ));
    }
    Ok((start, end))
}

fn clock(s: &str, may_be_24: bool) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if may_be_24 => Some(DAY),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// Adds `[from, to)` of the week, split where it passes Sunday's end.
fn push_wrapping(out: &mut Vec<(i64, i64)>, from: i64, to: i64) {
    if to <= WEEK {
        out.push((from, to));
    } else {
        out.push((from, WEEK));
        out.push((0, to - WEEK));
    }
}

/// Sorted, with overlapping and touching intervals joined.
fn merge(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn complement(v: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = 0;
    for &(a, b) in v {
        if a > at {
            out.push((at, a));
        }
        at = b;
    }
    if at < WEEK {
        out.push((at, WEEK));
    }
    out
}

fn monday_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = t.date_naive() - Duration::days(i64::from(t.weekday().num_days_from_monday()));
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn second_of_week(t: DateTime<Utc>) -> i64 {
    i64::from(t.weekday().num_days_from_monday()) * DAY + i64::from(t.num_seconds_from_midnight())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// DeepSeek's peaks at the time of writing (2026-12-07 is a Monday).
    fn deepseek() -> OffPeak {
        OffPeak::parse("mon-fri 01:00-04:00,06:00-10:00", Form::Peak).unwrap()
    }

    #[test]
    fn peak_windows_leave_the_rest_of_the_week_off_peak() {
        let w = deepseek();
        assert!(!w.contains(at("2026-12-07T01:00:00Z")));
        assert!(!w.contains(at("2026-12-07T03:59:59Z")));
        assert!(w.contains(at("2026-12-07T04:00:00Z")));
        assert!(w.contains(at("2026-12-07T05:59:59Z")));
        assert!(!w.contains(at("2026-12-07T06:00:00Z")));
        assert!(w.contains(at("2026-12-07T10:00:00Z")));
        assert!(w.contains(at("2026-12-07T00:59:59Z")));
    }

    #[test]
    fn the_weekend_is_off_peak_when_peaks_are_on_weekdays() {
        let w = deepseek();
        assert!(w.contains(at("2026-12-12T02:00:00Z")), "saturday");
        assert!(w.contains(at("2026-12-13T07:00:00Z")), "sunday");
        assert!(!w.contains(at("2026-12-11T07:00:00Z")), "friday");
    }

    #[test]
    fn the_next_start_is_the_end_of_the_current_peak() {
        let w = deepseek();
        assert_eq!(
            w.next_offpeak_start(at("2026-12-07T02:30:00Z")),
            Some(at("2026-12-07T04:00:00Z"))
        );
        assert_eq!(
            w.next_offpeak_start(at("2026-12-07T06:00:00Z")),
            Some(at("2026-12-07T10:00:00Z"))
        );
        let now = at("2026-12-07T12:00:00Z");
        assert_eq!(w.next_offpeak_start(now), Some(now), "off-peak now: now");
    }

    #[test]
    fn an_off_peak_window_may_wrap_midnight() {
        let w = OffPeak::parse("16:30-00:30", Form::OffPeak).unwrap();
        assert!(w.contains(at("2026-12-07T23:59:00Z")));
        assert!(w.contains(at("2026-12-08T00:29:59Z")));
        assert!(!w.contains(at("2026-12-08T00:30:00Z")));
        assert!(!w.contains(at("2026-12-08T16:29:00Z")));
        assert_eq!(
            w.next_offpeak_start(at("2026-12-08T09:00:00Z")),
            Some(at("2026-12-08T16:30:00Z"))
        );
    }

    #[test]
    fn a_window_wrapping_from_sunday_reaches_into_monday() {
        let w = OffPeak::parse("sun 22:00-02:00", Form::OffPeak).unwrap();
        assert!(w.contains(at("2026-12-13T23:00:00Z")), "sunday night");
        assert!(w.contains(at("2026-12-14T01:59:00Z")), "monday morning");
        assert!(!w.contains(at("2026-12-14T02:00:00Z")));
        assert!(
            !w.contains(at("2026-12-12T23:00:00Z")),
            "saturday is not listed"
        );
        // From Monday afternoon the next start is a week less a bit away.
        assert_eq!(
            w.next_offpeak_start(at("2026-12-14T12:00:00Z")),
            Some(at("2026-12-20T22:00:00Z"))
        );
    }

    #[test]
    fn adjacent_windows_make_one_stretch() {
        let w = OffPeak::parse("01:00-02:00,02:00-03:00", Form::OffPeak).unwrap();
        let s = w.stretches_from(at("2026-12-07T00:00:00Z"), 1);
        assert_eq!(s[0].start, at("2026-12-07T01:00:00Z"));
        assert_eq!(s[0].end, at("2026-12-07T03:00:00Z"));
        // Adjacent peaks leave no sliver of off-peak between them.
        let p = OffPeak::parse("01:00-02:00,02:00-03:00", Form::Peak).unwrap();
        assert!(!p.contains(at("2026-12-07T02:00:00Z")));
    }

    #[test]
    fn a_stretch_over_the_end_of_the_week_is_one_stretch() {
        let w = OffPeak::parse("sat-sun 00:00-24:00; mon 00:00-06:00", Form::OffPeak).unwrap();
        let s = w.stretches_from(at("2026-12-11T12:00:00Z"), 4);
        assert_eq!(s[0].start, at("2026-12-12T00:00:00Z"));
        assert_eq!(s[0].end, at("2026-12-14T06:00:00Z"));
    }

    #[test]
    fn weekday_ranges_may_wrap_the_week() {
        let w = OffPeak::parse("fri-mon 12:00-13:00", Form::OffPeak).unwrap();
        for day in ["2026-12-11", "2026-12-12", "2026-12-13", "2026-12-14"] {
            assert!(w.contains(at(&format!("{day}T12:30:00Z"))), "{day}");
        }
        assert!(!w.contains(at("2026-12-15T12:30:00Z")), "tuesday");
    }

    #[test]
    fn a_week_of_peak_has_no_next_start() {
        let w = OffPeak::parse("00:00-24:00", Form::Peak).unwrap();
        assert_eq!(w.next_offpeak_start(at("2026-12-07T12:00:00Z")), None);
        assert!(w.stretches_from(at("2026-12-07T12:00:00Z"), 8).is_empty());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("25:00-04:00", "HH:MM-HH:MM"),
            ("01:00", "HH:MM-HH:MM"),
            ("1:00-4:00", "HH:MM-HH:MM"),
            ("moon 01:00-02:00", "not a weekday"),
            ("03:00-03:00", "starts where it ends"),
            ("", "no window"),
            ("01:00-02:00,", "HH:MM-HH:MM"),
        ] {
            let err = OffPeak::parse(spec, Form::Peak).unwrap_err();
            assert!(err.contains(says), "{spec:?}: {err}");
        }
    }
}
