//! Running one check so that it can neither hang nor crash the caller, nor make the process
//! spawn: on the registry's bounded [`Pool`](super::pool::Pool), its panic caught, waited for
//! with a deadline by any number of callers.
//!
//! A [`Run`] is one execution of a check, shared: while it is in progress, a caller that wants
//! the check again waits for that same run instead of starting another (so a hung check holds
//! one pool thread, however many `/health` requests come in). The blocking wait is a condition
//! variable with a timeout; the async wait registers its waker with the run and with the one
//! process-wide [`timer`](super::timer), and unregisters both when dropped.
//!
//! Async checks run on the pool too (never in the caller's task, so one that blocks its thread
//! cannot stall the caller's runtime), under a small tokio runtime per pool thread when the
//! `http` feature brings tokio (its timers and I/O work there), and a plain executor otherwise;
//! either way the future is dropped at its timeout, which frees the thread unless it blocks.

use super::timer::{self, WakeCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How a check run ended, before it becomes a verdict.
#[derive(Debug, Clone)]
pub(crate) enum Ran<T> {
    Done(T),
    Panicked(String),
    /// The caller's deadline passed; `since` is set when the caller joined a run that an
    /// earlier caller had started that long before.
    TimedOut {
        after: Duration,
        since: Option<Duration>,
    },
    NotStarted(String),
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

struct State<T> {
    result: Option<Ran<T>>,
    /// Async waiters to wake when the result arrives, by waiter id.
    wakers: Vec<(u64, Waker)>,
    next_waiter: u64,
}

/// One execution of a check, which any number of callers wait for.
pub(crate) struct Run<T> {
    state: Mutex<State<T>>,
    finished: Condvar,
    started: Instant,
}

impl<T: Clone> Run<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Run {
            state: Mutex::new(State { result: None, wakers: Vec::new(), next_waiter: 0 }),
            finished: Condvar::new(),
            started: Instant::now(),
        })
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).result.is_some()
    }

    pub(crate) fn finish(&self, ran: Ran<T>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.result = Some(ran);
        for (_, waker) in state.wakers.drain(..) {
            waker.wake();
        }
        drop(state);
        self.finished.notify_all();
    }

    fn timed_out(&self, timeout: Duration, joined: bool) -> Ran<T> {
        Ran::TimedOut { after: timeout, since: joined.then(|| self.started.elapsed()) }
    }

    /// Waits on this thread until the result or `deadline` (the caller's `timeout` after it
    /// asked); `joined` says whether the caller found the run already in progress.
    pub(crate) fn wait(&self, deadline: Instant, timeout: Duration, joined: bool) -> Ran<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(ran) = &state.result {
                return ran.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                return self.timed_out(timeout, joined);
            }
            state = self.finished.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Waits in the calling task until the result or `deadline`.
    pub(crate) fn wait_async(self: &Arc<Self>, deadline: Instant, timeout: Duration, joined: bool) -> Waiting<T> {
        Waiting { run: self.clone(), timeout, deadline, joined, id: None, timer: None }
    }
}

/// The future of [`Run::wait_async`].
pub(crate) struct Waiting<T> {
    run: Arc<Run<T>>,
    timeout: Duration,
    deadline: Instant,
    joined: bool,
    id: Option<u64>,
    timer: Option<WakeCell>,
}

impl<T: Clone> Future for Waiting<T> {
    type Output = Ran<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ran<T>> {
        let this = self.get_mut();
        let mut state = this.run.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ran) = &state.result {
            return Poll::Ready(ran.clone());
        }
        if Instant::now() >= this.deadline {
            return Poll::Ready(this.run.timed_out(this.timeout, this.joined));
        }
        let id = *this.id.get_or_insert_with(|| {
            state.next_waiter += 1;
            state.next_waiter
        });
        match state.wakers.iter_mut().find(|(w, _)| *w == id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => state.wakers.push((id, cx.waker().clone())),
        }
        drop(state);
        if let Some(cell) = &this.timer {
            *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        } else {
            let cell: WakeCell = Arc::new(Mutex::new(Some(cx.waker().clone())));
            if !timer::wake_at(this.deadline, cell.clone()) {
                return Poll::Ready(this.run.timed_out(this.timeout, this.joined));
            }
            this.timer = Some(cell);
        }
        Poll::Pending
    }
}

impl<T> Drop for Waiting<T> {
    fn drop(&mut self) {
        if let Some(cell) = &self.timer {
            cell.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        if let Some(id) = self.id {
            self.run.state.lock().unwrap_or_else(PoisonError::into_inner).wakers.retain(|(w, _)| *w != id);
        }
    }
}

/// Runs a synchronous check on the current (pool) thread, catching its panic.
pub(crate) fn run_sync<T>(check: impl FnOnce() -> T) -> Ran<T> {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(value) => Ran::Done(value),
        Err(payload) => Ran::Panicked(panic_message(payload.as_ref())),
    }
}

/// The future of an async check, made where it runs (inside the pool thread's runtime).
pub(crate) type MakeFuture<'a, T> = &'a (dyn Fn() -> Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync);

/// Makes and runs an async check on the current (pool) thread until it completes or `timeout`
/// passes (then the future is dropped), catching a panic in either.
pub(crate) fn run_async<T>(make: MakeFuture<'_, T>, timeout: Duration) -> Ran<T> {
    let ran = catch_unwind(AssertUnwindSafe(|| executor::block_on(make, timeout)));
    match ran {
        Ok(Ok(Some(value))) => Ran::Done(value),
        Ok(Ok(None)) => Ran::TimedOut { after: timeout, since: None },
        Ok(Err(why)) => Ran::NotStarted(why),
        Err(payload) => {
            executor::reset();
            Ran::Panicked(panic_message(payload.as_ref()))
        }
    }
}

/// With tokio (feature `http`): a current-thread runtime per pool thread, built on first need.
#[cfg(feature = "http")]
mod executor {
    use std::cell::RefCell;
    use std::time::Duration;

    thread_local! {
        static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
    }

    pub(super) fn block_on<T>(make: super::MakeFuture<'_, T>, timeout: Duration) -> Result<Option<T>, String> {
        RUNTIME.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                *slot = Some(runtime.map_err(|err| format!("no runtime for the async check: {err}"))?);
            }
            let runtime = slot.as_ref().ok_or("no runtime for the async check")?;
            // Made inside the runtime, so a check that creates a tokio timer or socket before
            // its first await finds the runtime too.
            Ok(runtime.block_on(async { tokio::time::timeout(timeout, make()).await.ok() }))
        })
    }

    /// Drops this thread's runtime after a panic escaped it, so the next check gets a fresh one.
    pub(super) fn reset() {
        RUNTIME.with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                if let Some(runtime) = slot.take() {
                    runtime.shutdown_background();
                }
            }
        });
    }
}

/// Without tokio: a plain executor that parks between polls, up to the deadline.
#[cfg(not(feature = "http"))]
mod executor {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    pub(super) fn block_on<T>(make: super::MakeFuture<'_, T>, timeout: Duration) -> Result<Option<T>, String> {
        let deadline = Instant::now() + timeout;
        let mut future = make();
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return Ok(Some(value));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    pub(super) fn reset() {}
}
