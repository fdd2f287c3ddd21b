//! One job's page: its row, the timeline of its attempts with the internal
//! error detail, the LLM usage and cost, the profile (push tokens masked),
//! the saved plan in readable form, the actions, and the audit of what
//! operators did to it.

use maud::{Markup, html};
use serde_json::Value;

use super::Operator;
use super::pages::{actions_table, duration, jobs_link, layout, time};
use super::store::{Action, SavedPlan};
use crate::llm::Prices;
use crate::offpeak::OffPeak;
use crate::queue::store::{Attempt, JobRow, JobStatus};

pub struct JobView<'a> {
    pub job: &'a JobRow,
    pub profile: Option<&'a Value>,
    pub attempts: &'a [Attempt],
    pub plan: Option<&'a SavedPlan>,
    pub actions: &'a [Action],
    pub prices: Prices,
    /// Off-peak windows and their price factor (None: full price always).
    pub offpeak: Option<&'a (crate::offpeak::OffPeak, f64)>,
    pub notice: Option<String>,
}

pub fn render(op: &Operator, v: &JobView<'_>) -> Markup {
    let j = v.job;
    let body = html! {
        h1 { "Job " code #job-id { (j.id) } }
        @if let Some(n) = &v.notice { p.notice role="status" { (n) } }
        (actions(op, j))
        section.split {
            div { h2 { "Job" } (job_table(j)) }
            div {
                h2 { "LLM usage" }
                (usage(v.attempts, v.prices, v.offpeak))
            }
        }
        section {
            h2 { "Attempts" }
            (attempts(v.attempts))
        }
        section #plan {
            h2 { "Saved plan" }
            @match (j.plan_id, v.plan) {
                (None, _) => p.muted { "No plan saved." },
                (Some(id), None) => p.muted { "Plan " code { (id) } " is no longer kept." },
                (Some(_), Some(p)) => (plan(j, p)),
            }
        }
        section {
            h2 { "Profile snapshot" }
            @match v.profile {
                Some(p) if p.as_object().is_some_and(|o| !o.is_empty()) => {
                    pre.json #profile { (serde_json::to_string_pretty(&masked(p)).unwrap_or_default()) }
                }
                _ => p.muted { "Removed after the retention period (or empty)." },
            }
        }
        section {
            h2 { "Operator actions" }
            (actions_table(v.actions))
        }
    };
    layout(
        Some(op),
        &format!("Job {}", &j.id.to_string()[..8]),
        "Jobs",
        body,
    )
}

fn actions(op: &Operator, j: &JobRow) -> Markup {
    html! {
        div.actions-bar {
            @if matches!(j.status, JobStatus::Failed | JobStatus::Cancelled) {
                form method="post" action=(format!("/ops/jobs/{}/retry", j.id))
                    data-confirm="Retry this job? A new job is queued for the user with the same profile." {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button #retry type="submit" { "Retry" }
                }
            }
            @if j.status.is_active() {
                form method="post" action=(format!("/ops/jobs/{}/cancel", j.id))
                    data-confirm="Cancel this job? The user is told it was cancelled." {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button.danger #cancel type="submit" { "Cancel" }
                }
            }
            a href=(jobs_link(&[("user_id", &j.user_id.to_string())])) { "this user's jobs" }
        }
    }
}

fn job_table(j: &JobRow) -> Markup {
    let opt_time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time).unwrap_or_else(|| "–".into());
    html! {
        table.kv #job {
            tr { th { "status" } td { span class=(format!("status {}", j.status.as_str())) #job-status { (j.status.as_str()) } } }
            tr { th { "kind" } td { (j.kind) } }
            tr { th { "user" } td { code { (j.user_id) } } }
            tr { th { "progress" } td { (j.progress.as_deref().unwrap_or("–")) } }
            tr { th { "error" } td {
                @if let Some(c) = &j.error_code { code { (c) } } @else { "–" }
                @if let Some(m) = &j.error_message { br; span.muted { (m) } }
            } }
            tr { th { "retries" } td { (j.retry_count) " of " (j.max_retries) " · " (j.attempt_count) " attempts · " (j.rate_limit_deferrals) " rate-limit deferrals" } }
            tr { th { "worker" } td { (j.worker_id.as_deref().unwrap_or("–")) } }
            tr { th { "created" } td { (time(j.created_at)) } }
            tr { th { "due" } td { (time(j.run_after)) } }
            tr { th { "started" } td { (opt_time(j.started_at)) } }
            tr { th { "ended" } td { (opt_time(j.completed_at)) } }
            @if let Some(s) = j.running_seconds { tr { th { "running for" } td { (duration(s)) } } }
            @if let Some(t) = j.heartbeat_at { tr { th { "last heartbeat" } td { (time(t)) } } }
            tr { th { "plan" } td { @match j.plan_id { Some(p) => a href=(format!("/ops/jobs/{}/plan.json", j.id)) { code { (p) } }, None => "–" } } }
            @if let Some(t) = &j.trace_context { tr { th { "trace" } td { code { (t) } } } }
        }
    }
}

fn attempts(list: &[Attempt]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "Not claimed yet." }
        } @else {
            ol.timeline #attempts {
                @for a in list {
                    li class=(format!("attempt {}", a.outcome.as_deref().unwrap_or("running"))) {
                        div.head {
                            strong { "#" (a.attempt) " " (a.outcome.as_deref().unwrap_or("running")) }
                            @if let Some(c) = &a.error_code { " " code.code { (c) } }
                        }
                        div.muted {
                            (a.worker_id) " · " (time(a.started_at)) " → "
                            @match a.finished_at {
                                Some(f) => { (f.format("%H:%M:%S")) " (" (duration((f - a.started_at).num_milliseconds() as f64 / 1000.0)) ")" }
                                None => "running",
                            }
                        }
                        @if let Some(d) = &a.error_detail { pre.detail { (d) } }
                    }
                }
            }
        }
    }
}

/// Tokens summed over the attempts, and their cost at the LLM_PRICE_*
/// settings (none when the prices are not set): an attempt that started
/// off-peak at the off-peak price.
fn usage(list: &[Attempt], prices: Prices, offpeak: Option<&(OffPeak, f64)>) -> Markup {
    let field = |u: &Value, k: &str| u[k].as_u64().unwrap_or(0);
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let (mut calls, mut prompt, mut completion, mut hit, mut cost) = (0, 0, 0, 0, 0);
    for a in list {
        let Some(u) = a.llm_usage.as_ref() else {
            continue;
        };
        let (p, c, h) = (
            field(u, "prompt_tokens"),
            field(u, "completion_tokens"),
            field(u, "cache_hit_tokens"),
        );
        calls += field(u, "calls");
        prompt += p;
        completion += c;
        hit += h;
        let paid = match offpeak {
            Some((w, factor)) if w.contains(a.started_at) => prices.scaled(*factor),
            _ => prices,
        };
        cost += paid.micro_usd(clamp(p), clamp(c), clamp(h));
    }
    html! {
        @if calls == 0 {
            p.muted { "No LLM usage recorded." }
        } @else {
            table.kv #usage {
                tr { th { "calls" } td { (calls) } }
                tr { th { "prompt tokens" } td { (prompt) " (" (hit) " from cache)" } }
                tr { th { "completion tokens" } td { (completion) } }
                tr { th { "estimated cost" } td {
                    @if prices == Prices::default() { span.muted { "LLM_PRICE_* not set" } }
                    @else { (format!("${:.4}", cost as f64 / 1e6)) }
                } }
            }
        }
    }
}

fn plan(j: &JobRow, p: &SavedPlan) -> Markup {
    let days = p.plan["days"].as_array().map_or(&[][..], Vec::as_slice);
    html! {
        p {
            "Version " (p.version) " · " (p.source) @if let Some(m) = &p.model { " · " (m) }
            " · " @if p.is_active { "active" } @else { "superseded" } " · saved " (time(p.created_at))
            " · " a href=(format!("/ops/jobs/{}/plan.json", j.id)) { "JSON" }
        }
        @if let Some(t) = p.targets.as_object() {
            p.muted {
                "Targets: "
                @for (k, v) in t.iter().filter(|(_, v)| v.is_number()).take(8) { (k) " " (v) "; " }
            }
        }
        div.days {
            @for d in days { (day(d)) }
        }
        @if let Some(n) = p.plan["notes"].as_str() { p { (n) } }
    }
}

/// A day of a weekly plan (workout, nutrition, recovery) or of a meal plan
/// (its nutrition at the top level).
fn day(d: &Value) -> Markup {
    let food = if d["nutrition"].is_object() {
        &d["nutrition"]
    } else {
        d
    };
    let title = d["name"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Day {}", d["day"]));
    html! {
        article.day {
            h3 { (title) @if d["is_training_day"] == true { " " span.badge { "training" } } }
            @if let Some(w) = d["workout"].as_object() {
                p { strong { (w.get("focus").and_then(Value::as_str).unwrap_or("Workout")) }
                    @if let Some(m) = w.get("duration_minutes") { " · " (m) " min" } }
                @if let Some(steps) = w.get("warm_up").and_then(Value::as_array).filter(|s| !s.is_empty()) {
                    p.muted { "Warm-up: "
                        @for (i, s) in steps.iter().enumerate() {
                            @if i > 0 { "; " }
                            (s["step"].as_str().unwrap_or("?")) " (" (s["minutes"]) " min)"
                        }
                    }
                }
                ul.exercises {
                    @for e in w.get("exercises").and_then(Value::as_array).map_or(&[][..], Vec::as_slice) {
                        li { (e["name"].as_str().unwrap_or("?")) " " span.muted { (e["sets"]) "×" (e["reps"].as_str().map(str::to_owned).unwrap_or_else(|| e["reps"].to_string())) ", rest " (e["rest_seconds"]) " s"
                            @if let Some(r) = e.get("rir").and_then(Value::as_u64) { ", RIR " (r) } }
                            @if let Some(p) = e.get("progression").and_then(Value::as_str).filter(|p| !p.is_empty()) {
                                br; span.muted { (p) }
                            }
                        }
                    }
                }
            }
            p.macros { (macros(food)) }
            ul.meals {
                @for m in food["meals"].as_array().map_or(&[][..], Vec::as_slice) {
                    li {
                        (m["name"].as_str().unwrap_or("?"))
                        @if let Some(s) = m["slot"].as_str() { " " span.muted { "(" (s) ")" } }
                        br; span.muted { (macros(m)) }
                    }
                }
            }
            @if let Some(r) = d["recovery"].as_object() {
                p.muted { "Sleep " (r.get("sleep_hours").map(Value::to_string).unwrap_or_default()) " h"
                    @if let Some(n) = r.get("notes").and_then(Value::as_str) { " · " (n) } }
            }
        }
    }
}

fn macros(v: &Value) -> String {
    let n = |k: &str| v[k].as_f64().map_or("?".to_owned(), |x| format!("{x:.0}"));
    format!(
        "{} kcal · P {} g · F {} g · C {} g",
        n("kcal"),
        n("protein_g"),
        n("fat_g"),
        n("carbs_g")
    )
}

/// The profile with every token-like value cut to its first characters:
/// an Expo push token lets anyone who holds it notify the user.
pub fn masked(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let secret = k.to_ascii_lowercase().contains("token");
                    (k.clone(), if secret { mask(v) } else { masked(v) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(masked).collect()),
        other => other.clone(),
    }
}

fn mask(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let keep: String = s.chars().take(6).collect();
            Value::String(format!("{keep}… (masked)"))
        }
        Value::Null => Value::Null,
        Value::Object(_) | Value::Array(_) => Value::String("(masked)".into()),
        other => Value::String(format!("{}… (masked)", &other.to_string()[..1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_tokens_are_masked_wherever_they_are_and_nothing_else_is() {
        let profile = json!({
            "age": 30,
            "push_token": "ExponentPushToken[abcdefghijkl]",
            "devices": [{"pushToken": "ExponentPushToken[zzz]", "os": "ios"}],
            "tokens": {"a": "b"},
        });
        let m = masked(&profile);
        assert_eq!(m["age"], 30);
        assert_eq!(m["push_token"], "Expone… (masked)");
        assert_eq!(m["devices"][0]["pushToken"], "Expone… (masked)");
        assert_eq!(m["devices"][0]["os"], "ios");
        assert_eq!(m["tokens"], "(masked)");
        assert!(!m.to_string().contains("abcdefghijkl"));
    }

    #[test]
    fn a_training_day_shows_its_warm_up_reps_in_reserve_and_progression() {
        let p = crate::plan::parse_profile(&json!({
            "goal": "MUSCLE_GAIN", "sex": "male", "age": 30, "height_cm": 180, "weight_kg": 80,
            "activity_level": "active", "training_days": 3, "dietary_preference": "vegan"
        }))
        .unwrap();
        let t = crate::plan::targets(&p);
        let plan = serde_json::to_value(crate::plan::offline::sketch(&p, &t)).unwrap();
        let html = day(&plan["days"][0]).into_string();
        let first = &plan["days"][0]["workout"]["exercises"][0];
        assert!(html.contains("Warm-up: Easy cardio"), "{html}");
        assert!(html.contains(&format!(", RIR {}", first["rir"])), "{html}");
        let progression = first["progression"].as_str().unwrap();
        assert!(
            html.contains(&maud::html! { (progression) }.into_string()),
            "{html}"
        );
    }
}
