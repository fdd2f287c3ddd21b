//! Live job events for apps: one LISTEN connection per process on
//! `plan_job_events`, fanned out to the Server-Sent-Event streams of the
//! jobs they concern. A stream starts with the job's current state (so a
//! reconnecting client catches up), re-reads it whenever notifications may
//! have been missed, and ends with a `done` event when the job is final.
//! A plan whose days are written in parallel also sends `day` events, one
//! per day as it lands (with the day's JSON), all of them again to a
//! client that reconnects while the job runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::PathId;
use super::jobs;
use crate::db::listen::Sessions;
use crate::queue::events::{EVENTS_CHANNEL, JobEvent, parse_job_events};
use crate::queue::store::{self, JobRow, JobStatus};
use crate::telemetry::metrics as m;

/// Streams re-read their job this often even without notifications: a
/// NOTIFY can be lost (a reconnect, a full notification queue).
const RESYNC_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub enum HubMsg {
    Event(JobEvent),
    /// Notifications may have been missed: read the job again.
    Resync,
}

/// Event streams one user may hold open in one process: an app needs one
/// or two; a client that leaks them must not take the server's memory.
pub const MAX_STREAMS_PER_USER: usize = 8;

/// The process's one listener and its subscribers, by job.
pub struct EventHub {
    subs: Mutex<HashMap<Uuid, broadcast::Sender<HubMsg>>>,
    /// Open streams per user.
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
    /// True while LISTEN is active (tests wait on it).
    pub listening: watch::Sender<bool>,
}

impl EventHub {
    /// Starts listening on `options` until `stop` fires.
    pub fn start(options: PgConnectOptions, stop: CancellationToken) -> Arc<Self> {
        let hub = Arc::new(EventHub {
            subs: Mutex::new(HashMap::new()),
            open: Arc::default(),
            listening: watch::Sender::new(false),
        });
        tokio::spawn(hub.clone().listen(options, stop));
        hub
    }

    pub fn subscribe(self: &Arc<Self>, job: Uuid) -> Subscription {
        let rx = self
            .subs
            .lock()
            .expect("hub lock")
            .entry(job)
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe();
        Subscription {
            hub: self.clone(),
            job,
            rx,
        }
    }

    /// Counts a stream of `caller` (the operator is not limited); None when
    /// the user already holds `MAX_STREAMS_PER_USER`.
    pub fn open_stream(&self, caller: Caller) -> Option<StreamSlot> {
        let Caller::User(user) = caller else {
            return Some(StreamSlot {
                open: None,
                user: Uuid::nil(),
            });
        };
        let mut open = self.open.lock().expect("hub lock");
        let n = open.entry(user).or_default();
        if *n >= MAX_STREAMS_PER_USER {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            open: Some(self.open.clone()),
            user,
        })
    }

    fn dispatch(&self, ev: JobEvent) {
        let subs = self.subs.lock().expect("hub lock");
        if let Some(tx) = subs.get(&ev.id) {
            let _ = tx.send(HubMsg::Event(ev));
        }
    }

    fn resync_all(&self) {
        for tx in self.subs.lock().expect("hub lock").values() {
            let _ = tx.send(HubMsg::Resync);
        }
    }

    async fn listen(self: Arc<Self>, options: PgConnectOptions, stop: CancellationToken) {
        let mut sessions =
            Sessions::new(options, "plan-worker-api-events", &[EVENTS_CHANNEL], stop);
        while let Some(mut session) = sessions.next().await {
            self.listening.send_replace(true);
            // Anything sent while this process was not listening is lost.
            self.resync_all();
            let err = loop {
                match session.recv().await {
                    Ok(note) => {
                        for ev in parse_job_events(note.payload()) {
                            self.dispatch(ev);
                        }
                    }
                    Err(err) => break err,
                }
            };
            self.listening.send_replace(false);
            tracing::warn!(error = %err, "API event listener lost its connection; reconnecting");
        }
    }
}

/// One open stream of a user; dropping it frees the place.
pub struct StreamSlot {
    open: Option<Arc<Mutex<HashMap<Uuid, usize>>>>,
    user: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            let mut open = open.lock().expect("hub lock");
            if let Some(n) = open.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.user);
                }
            }
        }
    }
}

/// A stream's subscription; the last one of a job removes its channel.
pub struct Subscription {
    hub: Arc<EventHub>,
    job: Uuid,
    rx: broadcast::Receiver<HubMsg>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self.hub.subs.lock().expect("hub lock");
        // This receiver still counts until the fields drop.
        if subs
            .get(&self.job)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            subs.remove(&self.job);
        }
    }
}

/// `GET /v1/plan-jobs/{id}/events`.
pub async fn stream(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = jobs::visible(&state, caller, &id).await?;
    let slot = state.events.open_stream(caller).ok_or_else(|| {
        ApiError::too_many(
            "TOO_MANY_STREAMS",
            format!("at most {MAX_STREAMS_PER_USER} event streams per user at once"),
            Duration::from_secs(5),
        )
    })?;
    let sub = state.events.subscribe(job.id);
    let (tx, mut rx) = mpsc::channel::<Event>(16);
    let keepalive = state.keepalive;
    tokio::spawn(async move {
        relay(state, job.id, sub, tx).await;
        drop(slot);
    });
    let events = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive)))
}

/// What a client has been told, to send only changes.
type Seen = Option<(JobStatus, Option<String>, Option<String>)>;

/// Feeds one client until its job is final, it goes away, or shutdown.
async fn relay(state: ApiState, job: Uuid, mut sub: Subscription, tx: mpsc::Sender<Event>) {
    metrics::gauge!(m::API_EVENT_STREAMS).increment(1.0);
    let mut seen: Seen = None;
    let mut shown = ShownDays::default();
    let mut seq = 0u64;
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.reset();
    let mut reread = true;
    loop {
        if reread {
            reread = false;
            match store::get_job(&state.db, job).await {
                Ok(Some(row)) => {
                    if !row.status.is_final()
                        && !send_days(&state, &tx, job, &mut shown, &mut seq).await
                    {
                        break;
                    }
                    let ev = JobEvent {
                        id: row.id,
                        status: row.status,
                        progress: row.progress.clone(),
                        error_code: row.error_code.clone(),
                        day: None,
                    };
                    if !send_change(&state, &tx, &mut seen, &mut seq, ev, Some(row)).await {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%job, error = %err, "event stream could not read its job")
                }
            }
        }
        tokio::select! {
            _ = tx.closed() => break,
            _ = state.shutdown.cancelled() => {
                let bye = Event::default()
                    .event("shutdown")
                    .retry(Duration::from_secs(2))
                    .data(r#"{"reason":"the server is restarting; reconnect to resume"}"#);
                let _ = tx.send(bye).await;
                break;
            }
            msg = sub.rx.recv() => match msg {
                Ok(HubMsg::Event(ev)) if ev.day.is_some() => {
                    if !send_days(&state, &tx, job, &mut shown, &mut seq).await {
                        break;
                    }
                }
                Ok(HubMsg::Event(ev)) => {
                    if !send_change(&state, &tx, &mut seen, &mut seq, ev, None).await {
                        break;
                    }
                }
                Ok(HubMsg::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => reread = true,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = resync.tick() => reread = true,
        }
    }
    metrics::gauge!(m::API_EVENT_STREAMS).decrement(1.0);
}

/// The days a client has been sent, by attempt (a retry's days are new).
type ShownDays = std::collections::HashSet<(i32, u8)>;

/// Sends the job's days the client has not had, as `event: day`; false
/// when the client has gone.
async fn send_days(
    state: &ApiState,
    tx: &mpsc::Sender<Event>,
    job: Uuid,
    shown: &mut ShownDays,
    seq: &mut u64,
) -> bool {
    let days = match crate::jobs::days::ready_days(&state.db, job).await {
        Ok(days) => days,
        Err(err) => {
            // The next notification or resync tries again.
            tracing::warn!(%job, error = %err, "event stream could not read the job's days");
            return true;
        }
    };
    for d in days {
        if !shown.insert((d.attempt, d.day)) {
            continue;
        }
        *seq += 1;
        let data = json!({"jobId": job, "day": d.day, "attempt": d.attempt, "dayPlan": d.content});
        let ev = Event::default()
            .event("day")
            .id(seq.to_string())
            .data(data.to_string());
        if tx.send(ev).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends `ev` if it changes what the client knows; after a final state,
/// sends `done` with the full status and returns false (the stream ends).
async fn send_change(
    state: &ApiState,
    tx: &mpsc::Sender<Event>,
    seen: &mut Seen,
    seq: &mut u64,
    ev: JobEvent,
    row: Option<JobRow>,
) -> bool {
    let key = Some((ev.status, ev.progress.clone(), ev.error_code.clone()));
    if *seen == key {
        return true;
    }
    *seen = key;
    *seq += 1;
    let data = json!({
        "jobId": ev.id,
        "status": ev.status,
        "progress": ev.progress,
        "error": jobs::error_view(ev.status, ev.error_code.as_deref()),
    });
    let status = Event::default()
        .event("status")
        .id(seq.to_string())
        .data(data.to_string());
    if tx.send(status).await.is_err() {
        return false;
    }
    if !ev.status.is_final() {
        return true;
    }
    let row = match row {
        Some(r) => Some(r),
        None => store::get_job(&state.db, ev.id).await.ok().flatten(),
    };
    if let Some(row) = row
        && let Ok(view) = jobs::view(state, row).await
    {
        *seq += 1;
        let done = Event::default()
            .event("done")
            .id(seq.to_string())
            .data(serde_json::to_string(&view).unwrap_or_default());
        let _ = tx.send(done).await;
    }
    false
}
