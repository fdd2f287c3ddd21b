//! The operators' console at `/ops/` on the ops listener: server-rendered
//! pages (maud), one stylesheet and one small script served by the binary,
//! nothing from elsewhere.
//!
//! - `session`: the login, the signed session cookie, CSRF and Origin checks
//! - `store`: the console's SQL (the actions reuse the queue's store and
//!   write `operator_actions` in the same transaction)
//! - `overview`: the overview's figures
//! - `pages`, `job_page`: the HTML

mod job_page;
pub mod overview;
mod pages;
pub mod session;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

use self::session::{Session, Sessions};
use self::store::{Done, JobsFilter};
use super::OpsState;
use crate::llm::Prices;
use crate::queue::store::{self as queue_store, JobStatus, StoreError};

/// Jobs per page of the jobs list.
pub const PAGE_SIZE: i64 = 50;

const STYLESHEET: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// The console's settings and session keys, one per process.
pub struct Console {
    pub sessions: Sessions,
    /// LLM prices, for the cost of a job's attempts (0: unknown).
    pub prices: Prices,
    /// The off-peak windows and the share of `prices` paid in them.
    pub offpeak: Option<(crate::offpeak::OffPeak, f64)>,
}

impl Console {
    /// `operators` are the names and tokens of ADMIN_TOKEN / ADMIN_TOKENS;
    /// with none, the console only says how to turn it on.
    pub fn new(
        operators: Vec<(String, String)>,
        session_ttl: Duration,
        secure_cookie: bool,
    ) -> Self {
        Console {
            sessions: Sessions::new(operators, session_ttl, secure_cookie),
            prices: Prices::default(),
            offpeak: None,
        }
    }

    pub fn with_prices(mut self, prices: Prices) -> Self {
        self.prices = prices;
        self
    }

    /// Attempts started in `windows` are costed at `factor` of the prices.
    pub fn with_offpeak(mut self, windows: Option<crate::offpeak::OffPeak>, factor: f64) -> Self {
        self.offpeak = windows.map(|w| (w, factor));
        self
    }

    /// A console nobody can sign in to (processes without operator tokens).
    pub fn disabled() -> Arc<Self> {
        Arc::new(Console::new(Vec::new(), Duration::from_secs(1), false))
    }
}

pub fn router() -> Router<OpsState> {
    Router::new()
        .route("/ops", get(|| async { Redirect::permanent("/ops/") }))
        .route("/ops/", get(overview))
        .route("/ops/login", get(login_form).post(login))
        .route("/ops/logout", post(logout))
        .route("/ops/static/console.css", get(stylesheet))
        .route("/ops/static/console.js", get(script))
        .route("/ops/jobs", get(jobs))
        .route("/ops/jobs/{id}", get(job))
        .route("/ops/jobs/{id}/plan.json", get(plan_json))
        .route("/ops/jobs/{id}/retry", post(retry))
        .route("/ops/jobs/{id}/cancel", post(cancel))
        .route("/ops/workers", get(workers))
        .route("/ops/kinds", get(kinds))
        .route("/ops/kinds/{kind}/pause", post(pause))
        .route("/ops/kinds/{kind}/resume", post(resume))
        .layer(axum::middleware::map_response(security_headers))
}

/// Every console answer: no framing, nothing loaded from elsewhere, no
/// inline script, and pages are never cached (they show live data and the
/// CSRF token).
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Why a console request was not answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("no operator tokens are configured")]
    Disabled,
    #[error("sign in first")]
    LoginRequired,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Disabled | ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::LoginRequired => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) | ConsoleError::Store(StoreError::InvalidInput { .. }) => {
                StatusCode::BAD_REQUEST
            }
            ConsoleError::Store(StoreError::Db(_)) | ConsoleError::Db(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let code = self.status_code();
        let message = match &self {
            ConsoleError::LoginRequired => return Redirect::to("/ops/login").into_response(),
            ConsoleError::Disabled => {
                "The console is off: set ADMIN_TOKEN or ADMIN_TOKENS to sign in.".to_owned()
            }
            ConsoleError::Store(StoreError::Db(e)) | ConsoleError::Db(e) => {
                // The database's words stay in the log.
                tracing::error!(error = %e, "console: database error");
                "The database failed to answer; see the worker's log.".to_owned()
            }
            other => other.to_string(),
        };
        (code, Html(pages::error(code, &message).into_string())).into_response()
    }
}

/// A signed-in operator: the extractor of every page but the login.
pub struct Operator {
    pub session: Session,
    pub csrf: String,
}

impl FromRequestParts<OpsState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, s: &OpsState) -> Result<Self, ConsoleError> {
        let sessions = &s.console.sessions;
        if !sessions.enabled() {
            return Err(ConsoleError::Disabled);
        }
        let session = sessions
            .read(&parts.headers)
            .map_err(|_| ConsoleError::LoginRequired)?;
        let csrf = sessions.csrf_token(&session);
        Ok(Operator { session, csrf })
    }
}

impl Operator {
    pub fn name(&self) -> &str {
        &self.session.operator
    }

    /// Refuses a POST that did not come from a console page of this
    /// session: Origin (or Sec-Fetch-Site) and the form's CSRF token.
    fn check_post(
        &self,
        s: &OpsState,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<(), ConsoleError> {
        if !session::same_origin(headers) {
            crate::telemetry::metrics::console_refused("origin");
            return Err(ConsoleError::Forbidden(
                "refused: this request came from another site",
            ));
        }
        if !s.console.sessions.csrf_ok(&self.session, csrf) {
            crate::telemetry::metrics::console_refused("csrf");
            return Err(ConsoleError::Forbidden(
                "refused: the form's CSRF token is missing or not this session's; reload the page",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

async fn login_form(State(s): State<OpsState>, headers: HeaderMap) -> Response {
    if !s.console.sessions.enabled() {
        return ConsoleError::Disabled.into_response();
    }
    if s.console.sessions.read(&headers).is_ok() {
        return Redirect::to("/ops/").into_response();
    }
    Html(pages::login(None).into_string()).into_response()
}

async fn login(
    State(s): State<OpsState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let sessions = &s.console.sessions;
    if !sessions.enabled() {
        return ConsoleError::Disabled.into_response();
    }
    if !session::same_origin(&headers) {
        crate::telemetry::metrics::console_refused("origin");
        return ConsoleError::Forbidden("refused: this request came from another site")
            .into_response();
    }
    let Some(name) = sessions.check_token(&form.token) else {
        crate::telemetry::metrics::console_login(false);
        tracing::warn!("console: a sign-in with a wrong token was refused");
        tokio::time::sleep(session::REFUSAL_DELAY).await;
        let page = pages::login(Some("That is not an operator token."));
        return (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response();
    };
    crate::telemetry::metrics::console_login(true);
    tracing::info!(operator = name, "console: operator signed in");
    let (_, cookie) = sessions.start(name);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ops/".into()),
        ],
    )
        .into_response()
}

async fn logout(
    State(s): State<OpsState>,
    op: Operator,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, ConsoleError> {
    op.check_post(&s, &headers, &form.csrf)?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, s.console.sessions.end()),
            (header::LOCATION, "/ops/login".into()),
        ],
    )
        .into_response())
}

async fn overview(State(s): State<OpsState>, op: Operator) -> Result<Html<String>, ConsoleError> {
    let o = overview::load(&s.db).await?;
    let listener = s.listener.as_ref().map(|l| pages::ListenerView {
        connected: l.is_connected(),
        self_test_ok: l.self_test_ok.load(std::sync::atomic::Ordering::SeqCst),
    });
    Ok(Html(pages::overview(&op, &o, listener).into_string()))
}

/// The jobs page's query string, as typed (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub error_code: Option<String>,
    pub user_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
}

impl JobsQuery {
    /// The filter, or what is wrong with a field.
    pub fn filter(&self) -> Result<JobsFilter, ConsoleError> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let bad = |field: &str, what: &str| ConsoleError::BadRequest(format!("{field}: {what}"));
        let status = match given(&self.status) {
            Some(s) => Some(
                <JobStatus as clap::ValueEnum>::from_str(&s, true).map_err(|_| {
                    bad(
                        "status",
                        "one of pending, processing, completed, failed, cancelled",
                    )
                })?,
            ),
            None => None,
        };
        let user_id = match given(&self.user_id) {
            Some(u) => Some(Uuid::parse_str(&u).map_err(|_| bad("user_id", "not a UUID"))?),
            None => None,
        };
        let time = |field: &str, v: &Option<String>| match given(v) {
            Some(t) => parse_time(&t)
                .map(Some)
                .ok_or_else(|| bad(field, "a time such as 2026-12-03T14:05 (UTC) or RFC 3339")),
            None => Ok(None),
        };
        let after = match given(&self.after) {
            Some(a) => Some(parse_cursor(&a).ok_or_else(|| bad("after", "not a page cursor"))?),
            None => None,
        };
        Ok(JobsFilter {
            status,
            kind: given(&self.kind),
            error_code: given(&self.error_code).map(|c| c.to_ascii_uppercase()),
            user_id,
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            after,
        })
    }
}

/// RFC 3339, or what a `datetime-local` field sends (taken as UTC).
fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|n| Utc.from_utc_datetime(&n))
}

/// A page cursor: the last row's created_at (microseconds) and id.
pub fn cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{id}", at.timestamp_micros())
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, Uuid::parse_str(id).ok()?))
}

async fn jobs(
    State(s): State<OpsState>,
    op: Operator,
    Query(q): Query<JobsQuery>,
) -> Result<Html<String>, ConsoleError> {
    let filter = q.filter()?;
    // One more than a page says whether there is a next one.
    let mut rows = store::jobs(&s.db, &filter, PAGE_SIZE + 1).await?;
    let next = (rows.len() as i64 > PAGE_SIZE).then(|| {
        rows.truncate(PAGE_SIZE as usize);
        let last = rows.last().expect("a full page");
        cursor(last.created_at, last.id)
    });
    let kinds: Vec<String> = sqlx::query_scalar("select kind from plan_job_kinds order by kind")
        .fetch_all(&s.db)
        .await?;
    Ok(Html(
        pages::jobs(&op, &q, &filter, &rows, next.as_deref(), &kinds).into_string(),
    ))
}

fn job_id(raw: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(raw).map_err(|_| ConsoleError::NotFound)
}

async fn job(
    State(s): State<OpsState>,
    op: Operator,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Html<String>, ConsoleError> {
    let id = job_id(&id)?;
    let Some(row) = queue_store::get_job(&s.db, id).await? else {
        return Err(ConsoleError::NotFound);
    };
    let profile = queue_store::profile_snapshot(&s.db, id).await?;
    let attempts = queue_store::attempts(&s.db, id).await?;
    let plan = match row.plan_id {
        Some(p) => store::saved_plan(&s.db, &row.kind, p).await?,
        None => None,
    };
    let actions = store::actions_on(&s.db, id).await?;
    let view = job_page::JobView {
        job: &row,
        profile: profile.as_ref(),
        attempts: &attempts,
        plan: plan.as_ref(),
        actions: &actions,
        prices: s.console.prices,
        offpeak: s.console.offpeak.as_ref(),
        notice: done.notice(),
    };
    Ok(Html(job_page::render(&op, &view).into_string()))
}

async fn plan_json(
    State(s): State<OpsState>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = job_id(&id)?;
    let row = queue_store::get_job(&s.db, id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let plan_id = row.plan_id.ok_or(ConsoleError::NotFound)?;
    let plan = store::saved_plan(&s.db, &row.kind, plan_id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let body = serde_json::json!({
        "id": plan.id, "version": plan.version, "source": plan.source, "model": plan.model,
        "is_active": plan.is_active, "created_at": plan.created_at,
        "targets": plan.targets, "plan": plan.plan,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
        .into_response())
}

/// What the page after an action says happened (`?done=...`).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
    from: Option<String>,
}

impl DoneQuery {
    fn notice(&self) -> Option<String> {
        let from = self.from.as_deref().and_then(|f| Uuid::parse_str(f).ok());
        match (self.done.as_deref()?, from) {
            ("retried", Some(f)) => Some(format!("Retried {f}: this is its new job.")),
            ("existed", Some(f)) => Some(format!(
                "Retry of {f}: the user already had this job active, so no new job was made."
            )),
            ("cancelled", _) => Some("Cancelled.".into()),
            ("final", _) => Some("Nothing to cancel: the job had already ended.".into()),
            _ => None,
        }
    }
}

async fn retry(
    State(s): State<OpsState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ConsoleError> {
    op.check_post(&s, &headers, &form.csrf)?;
    let id = job_id(&id)?;
    let created = store::retry(&s.db, op.name(), id).await?;
    crate::telemetry::metrics::console_action("retry");
    tracing::info!(operator = op.name(), job.id = %id, "console: job retried");
    let what = if created.existed {
        "existed"
    } else {
        "retried"
    };
    Ok(Redirect::to(&format!(
        "/ops/jobs/{}?done={what}&from={id}",
        created.job_id
    )))
}

async fn cancel(
    State(s): State<OpsState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ConsoleError> {
    op.check_post(&s, &headers, &form.csrf)?;
    let id = job_id(&id)?;
    let done = store::cancel(&s.db, op.name(), id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    crate::telemetry::metrics::console_action("cancel");
    tracing::info!(operator = op.name(), job.id = %id, "console: job cancel requested");
    let what = match done {
        Done::Cancelled { .. } => "cancelled",
        _ => "final",
    };
    Ok(Redirect::to(&format!("/ops/jobs/{id}?done={what}")))
}

async fn workers(State(s): State<OpsState>, op: Operator) -> Result<Html<String>, ConsoleError> {
    let mut conn = s.db.acquire().await?;
    let workers = store::workers(&mut conn).await?;
    drop(conn);
    let listener = s.listener.as_ref().map(|l| pages::ListenerView {
        connected: l.is_connected(),
        self_test_ok: l.self_test_ok.load(std::sync::atomic::Ordering::SeqCst),
    });
    Ok(Html(pages::workers(&op, &workers, listener).into_string()))
}

async fn kinds(
    State(s): State<OpsState>,
    op: Operator,
    Query(done): Query<DoneQuery>,
) -> Result<Html<String>, ConsoleError> {
    let mut conn = s.db.acquire().await?;
    let kinds = store::kinds_now(&mut conn).await?;
    let actions = store::kind_actions(&mut conn).await?;
    drop(conn);
    let notice = done.done.as_deref().map(str::to_owned);
    Ok(Html(
        pages::kinds(&op, &kinds, &actions, notice.as_deref()).into_string(),
    ))
}

async fn pause(
    State(s): State<OpsState>,
    op: Operator,
    Path(kind): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ConsoleError> {
    set_paused(&s, &op, &kind, &headers, &form, true).await
}

async fn resume(
    State(s): State<OpsState>,
    op: Operator,
    Path(kind): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ConsoleError> {
    set_paused(&s, &op, &kind, &headers, &form, false).await
}

async fn set_paused(
    s: &OpsState,
    op: &Operator,
    kind: &str,
    headers: &HeaderMap,
    form: &ActionForm,
    paused: bool,
) -> Result<Redirect, ConsoleError> {
    op.check_post(s, headers, &form.csrf)?;
    let done = store::set_paused(&s.db, op.name(), kind, paused).await?;
    let action = if paused { "pause" } else { "resume" };
    crate::telemetry::metrics::console_action(action);
    tracing::info!(operator = op.name(), kind, action, "console: kind switched");
    let what = match done {
        Done::KindPaused { changed: true } => format!("{kind} paused"),
        Done::KindPaused { changed: false } => format!("{kind} was already paused"),
        Done::KindResumed { changed: true } => format!("{kind} resumed"),
        _ => format!("{kind} was not paused"),
    };
    Ok(Redirect::to(&format!(
        "/ops/kinds?done={}",
        pages::url_encode(&what)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_query_reads_every_filter_and_names_a_bad_field() {
        let q = JobsQuery {
            status: Some("Failed".into()),
            kind: Some(" meal_plan ".into()),
            error_code: Some("ai_timeout".into()),
            user_id: Some("6f1c1d9e-6f5a-4c5e-9d43-0a8c1f3b2a11".into()),
            from: Some("2026-12-03T14:05".into()),
            to: Some("2026-12-04T00:00:00Z".into()),
            after: Some(cursor(
                DateTime::from_timestamp_micros(1_764_770_000_123_456).unwrap(),
                Uuid::nil(),
            )),
        };
        let f = q.filter().unwrap();
        assert_eq!(f.status, Some(JobStatus::Failed));
        assert_eq!(f.kind.as_deref(), Some("meal_plan"));
        assert_eq!(f.error_code.as_deref(), Some("AI_TIMEOUT"));
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-12-03T14:05:00+00:00");
        assert_eq!(f.after.unwrap().0.timestamp_micros(), 1_764_770_000_123_456);

        let empty = JobsQuery {
            status: Some(String::new()),
            ..JobsQuery::default()
        };
        assert_eq!(empty.filter().unwrap(), JobsFilter::default());

        for (q, field) in [
            (
                JobsQuery {
                    status: Some("done".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                JobsQuery {
                    user_id: Some("42".into()),
                    ..Default::default()
                },
                "user_id",
            ),
            (
                JobsQuery {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                JobsQuery {
                    after: Some("x_y".into()),
                    ..Default::default()
                },
                "after",
            ),
        ] {
            let err = q.filter().unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
        }
    }
}
