//! Raised alerts: a bounded list of recent alerts in which a repeat of the same alert (same
//! function and error type, or same title and source, within the de-duplication window) only
//! bumps the first one's count, so a failing hot loop neither floods the list nor allocates per
//! failure.
//!
//! ```
//! use flext_obs::{alert, Alert, Severity};
//! let first = alert::raise(Alert::builder("disk almost full", "93 % used").severity(Severity::Medium).build()?);
//! let second = alert::raise(Alert::builder("disk almost full", "94 % used").severity(Severity::Medium).build()?);
//! assert_eq!(first, second);
//! let recent = alert::recent();
//! let disk = recent.iter().find(|a| a.title() == "disk almost full").unwrap();
//! assert_eq!(disk.count(), 2);
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::entity::{Alert, AlertStatus};
use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Alerts kept in the recent list.
pub const RECENT_ALERTS: usize = 1_000;
/// Default de-duplication window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// What makes two alerts "the same".
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum AlertKey {
    /// A monitored function (by call-site index) failing with an error type (or panicking).
    Site(u32, &'static str),
    /// An alert raised through the API: title and source function.
    Api(String, Option<String>),
}

struct Open {
    seq: u64,
    last: Instant,
}

struct State {
    recent: VecDeque<Alert>,
    /// Sequence number of `recent[0]`.
    first_seq: u64,
    open: HashMap<AlertKey, Open>,
    window: Duration,
}

static STATE: LazyLock<Mutex<State>> =
    LazyLock::new(|| Mutex::new(State { recent: VecDeque::new(), first_seq: 0, open: HashMap::new(), window: DEFAULT_WINDOW }));

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a repeat of the open alert for `key` if there is one within the window, and returns
/// its ID. Allocates nothing.
pub(crate) fn repeat(key: &AlertKey) -> Option<uuid::Uuid> {
    let now = Instant::now();
    let mut state = state();
    let window = state.window;
    let first = state.first_seq;
    let open = state.open.get_mut(key)?;
    if now.duration_since(open.last) > window || open.seq < first {
        return None;
    }
    open.last = now;
    let index = usize::try_from(open.seq - first).unwrap_or(usize::MAX);
    match state.recent.get_mut(index) {
        Some(alert) if alert.status() == AlertStatus::Active => {
            alert.repeat(1, chrono::Utc::now());
            Some(alert.id())
        }
        _ => None,
    }
}

/// Receives every alert that is kept as new or resolved (for forwarding it elsewhere).
pub trait AlertSink: Send + Sync + std::fmt::Debug {
    /// Called outside the alert store's lock, for a new alert and for a resolved one.
    fn notify(&self, alert: &Alert);
}

type Sinks = Vec<(u64, std::sync::Arc<dyn AlertSink>)>;
static SINKS: std::sync::RwLock<Sinks> = std::sync::RwLock::new(Vec::new());
static NEXT_SINK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Registers a sink; returns the ID that [`remove_sink`] takes.
pub fn add_sink(sink: std::sync::Arc<dyn AlertSink>) -> u64 {
    let id = NEXT_SINK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    SINKS.write().unwrap_or_else(PoisonError::into_inner).push((id, sink));
    id
}

/// Unregisters a sink.
pub fn remove_sink(id: u64) {
    SINKS.write().unwrap_or_else(PoisonError::into_inner).retain(|(sink, _)| *sink != id);
}

fn notify(alert: &Alert) {
    let sinks = SINKS.read().unwrap_or_else(PoisonError::into_inner).clone();
    for (_, sink) in sinks {
        sink.notify(alert);
    }
}

/// Keeps a new alert under `key`.
pub(crate) fn insert(key: AlertKey, alert: Alert) {
    let copy = alert.clone();
    insert_quietly(key, alert);
    notify(&copy);
}

fn insert_quietly(key: AlertKey, alert: Alert) {
    let mut state = state();
    if state.recent.len() == RECENT_ALERTS {
        state.recent.pop_front();
        state.first_seq += 1;
        let first = state.first_seq;
        state.open.retain(|_, open| open.seq >= first);
    }
    let seq = state.first_seq + state.recent.len() as u64;
    state.recent.push_back(alert);
    state.open.insert(key, Open { seq, last: Instant::now() });
}

/// Raises an alert: a repeat of an active alert with the same title and source function within
/// the window bumps that alert's count; anything else is kept as a new alert. Returns the ID of
/// the alert that holds it (for [`resolve`]).
pub fn raise(alert: Alert) -> uuid::Uuid {
    let key = AlertKey::Api(alert.title().to_owned(), alert.source_function().map(str::to_owned));
    if let Some(id) = repeat(&key) {
        return id;
    }
    let id = alert.id();
    insert(key, alert);
    id
}

/// The recent alerts, oldest first.
pub fn recent() -> Vec<Alert> {
    state().recent.iter().cloned().collect()
}

/// Marks the alert with `id` resolved; returns whether it was found. A later failure of the same
/// kind raises a new alert.
pub fn resolve(id: uuid::Uuid) -> bool {
    let resolved = {
        let mut state = state();
        state.recent.iter_mut().find(|a| a.id() == id).map(|alert| {
            alert.set_status(AlertStatus::Resolved);
            alert.clone()
        })
    };
    match resolved {
        Some(alert) => {
            notify(&alert);
            true
        }
        None => false,
    }
}

/// Sets the de-duplication window (default [`DEFAULT_WINDOW`]).
pub fn set_window(window: Duration) {
    state().window = window;
}

/// Forgets every alert (for tests).
pub fn clear() {
    let mut state = state();
    state.first_seq += state.recent.len() as u64;
    state.recent.clear();
    state.open.clear();
}
