//! Running one check so that it can neither hang nor crash the caller: on its own thread, with
//! a deadline, its panic caught. Async checks either get a small executor on that thread
//! (blocking [`super::HealthRegistry::check`]) or are polled in the caller's task
//! ([`super::HealthRegistry::check_async`]) so they can use the caller's runtime.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How a check run ended, before it becomes a verdict.
#[derive(Debug)]
pub(crate) enum Ran<T> {
    Done(T),
    Panicked(String),
    TimedOut(Duration),
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

/// A value produced on another thread, waited for with a deadline (blocking or async).
pub(crate) struct Slot<T> {
    value: Mutex<(Option<Ran<T>>, Option<Waker>)>,
    ready: Condvar,
}

impl<T> Slot<T> {
    fn put(&self, ran: Ran<T>) {
        let mut guard = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0 = Some(ran);
        if let Some(waker) = guard.1.take() {
            waker.wake();
        }
        self.ready.notify_all();
    }
}

/// Starts `work` on its own thread; its panic is caught there.
pub(crate) fn spawn<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Arc<Slot<T>> {
    let slot = Arc::new(Slot { value: Mutex::new((None, None)), ready: Condvar::new() });
    let producer = slot.clone();
    let spawned = std::thread::Builder::new().name(format!("flext-health-{name}")).spawn(move || {
        let ran = match catch_unwind(AssertUnwindSafe(work)) {
            Ok(value) => Ran::Done(value),
            Err(payload) => Ran::Panicked(panic_message(payload.as_ref())),
        };
        producer.put(ran);
    });
    if let Err(err) = spawned {
        slot.put(Ran::NotStarted(err.to_string()));
    }
    slot
}

/// Waits for a spawned run until `deadline` (`timeout` after it started).
pub(crate) fn wait<T>(slot: &Slot<T>, deadline: Instant, timeout: Duration) -> Ran<T> {
    let mut guard = slot.value.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(ran) = guard.0.take() {
            return ran;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ran::TimedOut(timeout);
        }
        guard = slot.ready.wait_timeout(guard, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// Runs `work` on its own thread; the returned future resolves when it is done or when
/// `timeout` has passed.
pub(crate) fn on_thread<T, W>(name: &str, timeout: Duration, work: W) -> impl Future<Output = Ran<T>> + use<T, W>
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    let slot = spawn(name, work);
    let mut deadline = Deadline::start(timeout);
    std::future::poll_fn(move |cx| {
        let mut guard = slot.value.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ran) = guard.0.take() {
            return Poll::Ready(ran);
        }
        if deadline.passed(cx) {
            return Poll::Ready(Ran::TimedOut(timeout));
        }
        guard.1 = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// Polls `future` in the caller's task with a deadline, catching a panic in any poll.
pub(crate) fn in_task<T>(future: Pin<Box<dyn Future<Output = T> + Send>>, timeout: Duration) -> impl Future<Output = Ran<T>> {
    let mut future = Some(future);
    let mut deadline = Deadline::start(timeout);
    std::future::poll_fn(move |cx| {
        let Some(inner) = future.as_mut() else { return Poll::Ready(Ran::NotStarted("polled after completion".to_owned())) };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => {
                future = None;
                Poll::Ready(Ran::Done(value))
            }
            Err(payload) => {
                future = None;
                Poll::Ready(Ran::Panicked(panic_message(payload.as_ref())))
            }
            Ok(Poll::Pending) if deadline.passed(cx) => {
                future = None;
                Poll::Ready(Ran::TimedOut(timeout))
            }
            Ok(Poll::Pending) => Poll::Pending,
        }
    })
}

/// Drives `future` to completion on the current thread (for async checks run by the blocking
/// [`super::HealthRegistry::check`]; the future must not need a specific runtime).
pub(crate) fn block_on<T>(future: Pin<Box<dyn Future<Output = T> + Send>>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = future;
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// A deadline that wakes the task when it passes, from a timer thread started on first need.
struct Deadline {
    at: Instant,
    timer: Option<Arc<Mutex<Option<Waker>>>>,
}

impl Deadline {
    fn start(timeout: Duration) -> Self {
        Deadline { at: Instant::now() + timeout, timer: None }
    }

    /// Whether the deadline passed; if not, makes sure the task is woken when it does.
    fn passed(&mut self, cx: &Context<'_>) -> bool {
        if Instant::now() >= self.at {
            return true;
        }
        let slot = self.timer.get_or_insert_with(|| {
            let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
            let (timer, at) = (slot.clone(), self.at);
            let _ = std::thread::Builder::new().name("flext-health-timer".into()).spawn(move || {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                if let Some(waker) = timer.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    waker.wake();
                }
            });
            slot
        });
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        false
    }
}
