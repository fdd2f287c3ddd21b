//! The console's pages but the job's (see `job_page`): layout, login,
//! overview, jobs, workers, kinds and the error page. Server-rendered;
//! the script only asks for a confirmation before an action. No inline
//! style or script: the Content-Security-Policy allows neither, so charts
//! are SVG with plain attributes.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::overview::Overview;
use super::store::{Action, FINISHED, JobLine, JobsFilter, KindNow, WorkerRow};
use super::{JobsQuery, Operator};
use crate::queue::store::JobStatus;

/// This process's listener, when it runs a worker.
#[derive(Debug, Clone, Copy)]
pub struct ListenerView {
    pub connected: bool,
    pub self_test_ok: bool,
}

const STATUSES: [JobStatus; 5] = [
    JobStatus::Pending,
    JobStatus::Processing,
    JobStatus::Completed,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

/// The page around every signed-in view.
pub fn layout(op: Option<&Operator>, title: &str, current: &str, body: Markup) -> Markup {
    let nav = [
        ("/ops/", "Overview"),
        ("/ops/jobs", "Jobs"),
        ("/ops/workers", "Workers"),
        ("/ops/kinds", "Kinds"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · plan-worker" }
                link rel="stylesheet" href="/ops/static/console.css";
                script src="/ops/static/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ops/" { "plan-worker" }
                    @if let Some(op) = op {
                        nav {
                            @for (href, label) in nav {
                                a href=(href) aria-current=[(label == current).then_some("page")] { (label) }
                            }
                        }
                        form.logout method="post" action="/ops/logout" {
                            input type="hidden" name="csrf" value=(op.csrf);
                            span.who { (op.name()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        "",
        html! {
            section.login {
                h1 { "Operators' console" }
                p { "Sign in with an operator token (ADMIN_TOKEN or one of ADMIN_TOKENS)." }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/ops/login" {
                    label for="token" { "Operator token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub fn error(code: StatusCode, message: &str) -> Markup {
    layout(
        None,
        code.canonical_reason().unwrap_or("Error"),
        "",
        html! {
            section.login {
                h1 { (code.as_u16()) " " (code.canonical_reason().unwrap_or("")) }
                p.error role="alert" { (message) }
                p { a href="/ops/" { "Back to the console" } }
            }
        },
    )
}

pub fn overview(op: &Operator, o: &Overview, listener: Option<ListenerView>) -> Markup {
    let live = o.workers.iter().filter(|w| w.lock_held).count();
    let slots: i64 = o.workers.iter().map(|w| i64::from(w.concurrency)).sum();
    let running: i64 = o.workers.iter().map(|w| w.running).sum();
    let body = html! {
        h1 { "Overview" }
        section.cards {
            div.card #failed-hour {
                span.label { "Failed, last hour" }
                a.value href="/ops/jobs?status=failed" { (o.hour_failed) }
            }
            div.card #completed-hour {
                span.label { "Completed, last hour" }
                span.value { (o.hour_completed) }
            }
            div.card #failure-ratio {
                span.label { "Failure ratio, last hour" }
                span.value { @match o.failure_ratio() { Some(r) => (format!("{:.1} %", r * 100.0)), None => "–" } }
            }
            div.card #oldest-pending {
                span.label { "Oldest due pending" }
                @match &o.oldest_pending {
                    Some(p) => a.value href=(format!("/ops/jobs/{}", p.id)) { (duration(p.waited_seconds)) },
                    None => span.value { "none" },
                }
            }
            div.card #workers-live {
                span.label { "Workers live" }
                a.value href="/ops/workers" { (live) }
                span.sub { (running) " of " (slots) " slots busy" }
            }
            div.card #listener {
                span.label { "Listener (this process)" }
                (listener_state(listener))
            }
        }
        section {
            h2 { "Finished per minute, last hour" }
            (minute_chart(&o.per_minute))
        }
        section.split {
            div {
                h2 { "Top error codes, last hour" }
                @if o.top_errors.is_empty() {
                    p.muted { "No job failed in the last hour." }
                } @else {
                    table #top-errors {
                        thead { tr { th { "error code" } th.num { "failed jobs" } } }
                        tbody {
                            @for (code, n) in &o.top_errors {
                                tr {
                                    td { a href=(jobs_link(&[("status", "failed"), ("error_code", code)])) { code { (code) } } }
                                    td.num { (n) }
                                }
                            }
                        }
                    }
                }
            }
            div {
                h2 { "Workers" }
                (workers_table(&o.workers))
            }
        }
        section {
            h2 { "Jobs by kind and status" }
            @if o.exact {
                p.muted { "Counted: the table holds fewer than 100,000 jobs." }
            } @else {
                p.muted { "Pending and processing are counted; finished totals (≈) are the planner's estimates: an exact count would read the whole table." }
            }
            (kinds_table(&o.kinds, !o.exact))
        }
        footer.muted { "Read in " (format!("{:.1}", o.took.as_secs_f64() * 1000.0)) " ms." }
    };
    layout(Some(op), "Overview", "Overview", body)
}

fn listener_state(l: Option<ListenerView>) -> Markup {
    html! {
        @match l {
            None => span.value.muted { "no worker" },
            Some(l) => {
                span.value { @if l.connected { "connected" } @else { span.bad { "disconnected" } } }
                span.sub {
                    "NOTIFY self-test: "
                    @if l.self_test_ok { span.good { "ok" } } @else { span.bad { "failing (polling)" } }
                }
            }
        }
    }
}

/// Stacked bars of completed / failed / cancelled, one per minute.
fn minute_chart(per_minute: &[[i64; 3]; 60]) -> Markup {
    let max = per_minute
        .iter()
        .map(|m| m.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h) = (600.0, 120.0);
    let bar = w / 60.0;
    html! {
        svg.chart #per-minute viewBox=(format!("0 0 {w} {}", h + 14.0)) role="img"
            aria-label="Jobs finished per minute over the last hour" {
            @for (i, m) in per_minute.iter().enumerate() {
                @let mut y = h;
                @for (j, n) in m.iter().enumerate() {
                    @if *n > 0 {
                        @let height = (*n as f64 / max as f64) * h;
                        @let top = { y -= height; y };
                        rect class=(FINISHED[j].as_str()) x=(format!("{:.1}", i as f64 * bar + 1.0))
                            y=(format!("{top:.1}")) width=(format!("{:.1}", bar - 2.0))
                            height=(format!("{height:.1}")) {
                            title { (format!("{} min ago: {n} {}", 59 - i, FINISHED[j].as_str())) }
                        }
                    }
                }
            }
            line x1="0" y1=(h) x2=(w) y2=(h) class="axis" {}
            text x="0" y=(h + 12.0) class="tick" { "60 min ago" }
            text x=(w) y=(h + 12.0) class="tick end" { "now · max " (max) "/min" }
        }
        p.legend {
            span.key.completed { "completed" } " "
            span.key.failed { "failed" } " "
            span.key.cancelled { "cancelled" }
        }
    }
}

fn kinds_table(kinds: &[KindNow], estimated: bool) -> Markup {
    let approx = if estimated { " ≈" } else { "" };
    html! {
        div.scroll {
            table #kinds {
                thead {
                    tr {
                        th { "kind" } th.num { "pending (due)" } th.num { "processing" }
                        th.num { "oldest due" }
                        @for s in FINISHED { th.num { (s.as_str()) (approx) } }
                    }
                }
                tbody {
                    @for k in kinds {
                        tr {
                            td { (k.kind) @if k.paused { " " span.badge.bad { "paused" } } }
                            td.num { a href=(jobs_link(&[("status", "pending"), ("kind", &k.kind)])) { (k.pending) } " (" (k.due) ")" }
                            td.num { a href=(jobs_link(&[("status", "processing"), ("kind", &k.kind)])) { (k.processing) } }
                            td.num { @if k.oldest_pending_seconds > 0.0 { (duration(k.oldest_pending_seconds)) } @else { "–" } }
                            @for (i, s) in FINISHED.iter().enumerate() {
                                td.num { a href=(jobs_link(&[("status", s.as_str()), ("kind", &k.kind)])) { (k.finished[i]) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn workers_table(workers: &[WorkerRow]) -> Markup {
    html! {
        @if workers.is_empty() {
            p.bad { "No worker is registered: nobody is generating plans." }
        } @else {
            div.scroll {
                table #workers {
                    thead { tr { th { "worker" } th { "kinds" } th.num { "slots busy" } th.num { "last heartbeat" } th { "state" } } }
                    tbody {
                        @for w in workers {
                            tr {
                                td { code { (w.id) } br; span.muted { (w.host) " pid " (w.pid) " · " (w.version) } }
                                td { (w.kinds.join(", ")) }
                                td.num { (w.running) " / " (w.concurrency) }
                                td.num { (duration(w.seen_seconds_ago)) " ago" }
                                td {
                                    @if !w.lock_held { span.bad { "dead (lock free)" } }
                                    @else if w.seen_seconds_ago > 2.0 * w.heartbeat_seconds { span.bad { "silent" } }
                                    @else { span.good { "live" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn jobs(
    op: &Operator,
    q: &JobsQuery,
    f: &JobsFilter,
    rows: &[JobLine],
    next: Option<&str>,
    kinds: &[String],
) -> Markup {
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        h1 { "Jobs" }
        form.filters method="get" action="/ops/jobs" {
            label { "status"
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[f.status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "kind"
                select name="kind" {
                    option value="" { "any" }
                    @for k in kinds {
                        option value=(k) selected[f.kind.as_deref() == Some(k.as_str())] { (k) }
                    }
                }
            }
            label { "error code" input type="text" name="error_code" value=(val(&q.error_code)) placeholder="AI_TIMEOUT"; }
            label { "user id" input type="text" name="user_id" value=(val(&q.user_id)) placeholder="uuid"; }
            label { "created from (UTC)" input type="datetime-local" name="from" value=(val(&q.from)); }
            label { "to (UTC)" input type="datetime-local" name="to" value=(val(&q.to)); }
            button type="submit" { "Filter" }
            a href="/ops/jobs" { "clear" }
        }
        @if rows.is_empty() {
            p.muted #no-jobs { "No job matches." }
        } @else {
            div.scroll {
                table #jobs {
                    thead { tr { th { "job" } th { "kind" } th { "status" } th { "error code" } th.num { "attempts" } th { "created (UTC)" } th { "user" } } }
                    tbody {
                        @for j in rows {
                            tr data-job-id=(j.id) {
                                td { a href=(format!("/ops/jobs/{}", j.id)) { code { (short(&j.id.to_string())) } } }
                                td { (j.kind) }
                                td { span class=(format!("status {}", j.status.as_str())) { (j.status.as_str()) } @if let Some(p) = &j.progress { " " span.muted { (p) } } }
                                td { @if let Some(c) = &j.error_code { code { (c) } } }
                                td.num { (j.attempt_count) }
                                td { (time(j.created_at)) }
                                td { a href=(jobs_link(&[("user_id", &j.user_id.to_string())])) { code { (short(&j.user_id.to_string())) } } }
                            }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if q.after.as_deref().is_some_and(|a| !a.is_empty()) {
                a href=(page_link(q, None)) { "← newest" }
            }
            @if let Some(n) = next {
                a #older rel="next" href=(page_link(q, Some(n))) { "older →" }
            }
        }
    };
    layout(Some(op), "Jobs", "Jobs", body)
}

pub fn workers(op: &Operator, workers: &[WorkerRow], listener: Option<ListenerView>) -> Markup {
    let body = html! {
        h1 { "Workers" }
        p { "This process's listener: " (listener_state(listener)) }
        (workers_table(workers))
        p.muted { "A worker is dead when its presence lock is free and its heartbeats stopped; the reaper then takes its jobs back." }
    };
    layout(Some(op), "Workers", "Workers", body)
}

pub fn kinds(op: &Operator, kinds: &[KindNow], actions: &[Action], notice: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Kinds" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.scroll {
            table #kind-switches {
                thead { tr { th { "kind" } th { "description" } th.num { "pending" } th.num { "processing" } th.num { "cap" } th { "state" } th {} } }
                tbody {
                    @for k in kinds {
                        tr data-kind=(k.kind) {
                            td { code { (k.kind) } }
                            td { (k.description) }
                            td.num { (k.pending) }
                            td.num { (k.processing) }
                            td.num { @match k.max_running { Some(n) => (n), None => "–" } }
                            td { @if k.paused { span.bad { "paused" } } @else { span.good { "running" } } }
                            td {
                                @let (verb, path) = if k.paused { ("Resume", "resume") } else { ("Pause", "pause") };
                                form method="post" action=(format!("/ops/kinds/{}/{path}", k.kind))
                                    data-confirm=(format!("{verb} {}?", k.kind)) {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    button type="submit" { (verb) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "A paused kind's jobs stay pending and are not claimed; running ones finish." }
        h2 { "Latest actions on kinds" }
        (actions_table(actions))
    };
    layout(Some(op), "Kinds", "Kinds", body)
}

pub fn actions_table(actions: &[Action]) -> Markup {
    html! {
        @if actions.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll {
                table.actions {
                    thead { tr { th { "when (UTC)" } th { "operator" } th { "action" } th { "detail" } } }
                    tbody {
                        @for a in actions {
                            tr { td { (time(a.at)) } td { (a.operator) } td { (a.action) } td { code { (a.detail.to_string()) } } }
                        }
                    }
                }
            }
        }
    }
}

/// A link to the jobs page with these filters.
pub fn jobs_link(params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    format!("/ops/jobs?{}", q.join("&"))
}

fn page_link(q: &JobsQuery, after: Option<&str>) -> String {
    let fields = [
        ("status", &q.status),
        ("kind", &q.kind),
        ("error_code", &q.error_code),
        ("user_id", &q.user_id),
        ("from", &q.from),
        ("to", &q.to),
    ];
    let mut params: Vec<(&str, &str)> = fields
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    if let Some(a) = after {
        params.push(("after", a));
    }
    jobs_link(&params)
}

/// Percent-encodes a query value (unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_their_values_and_durations_read_naturally() {
        assert_eq!(
            jobs_link(&[("status", "failed"), ("error_code", "A B&C")]),
            "/ops/jobs?status=failed&error_code=A%20B%26C"
        );
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(7800.0), "2 h 10 min");
        assert_eq!(duration(273600.0), "3 d 4 h");
    }
}
