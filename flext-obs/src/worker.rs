//! Background threads that run until told to stop (the retention sweeper, the system sampler,
//! the pusher): stopping, by call or by drop, signals the thread and waits for it to finish, or
//! (with [`Worker::stop_within`]) for a bounded time, after which the thread is left to end on
//! its own.

use crate::error::{Error, Result};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Worker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the body has returned (or unwound): what `stop_within` waits on.
    #[cfg_attr(not(feature = "push"), allow(dead_code))] // only the pusher stops within a deadline
    done: std::sync::Mutex<Receiver<()>>,
}

/// Dropped when the thread's body ends, however it ends.
struct Done(#[allow(dead_code)] Sender<()>);

impl Worker {
    /// Runs `body` on a thread named `name`; `body` watches its receiver (`recv_timeout` is the
    /// usual wait) and returns once the sender is dropped or signalled.
    pub(crate) fn spawn(name: &str, body: impl FnOnce(Receiver<()>) + Send + 'static) -> Result<Self> {
        let (stop, stopped) = channel::<()>();
        let (finished, done) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _done = Done(finished);
                body(stopped);
            })
            .map_err(|e| Error::invalid("worker", "thread", e.to_string(), format!("the {name} thread could not be started")))?;
        Ok(Worker { stop: Some(stop), thread: Some(thread), done: std::sync::Mutex::new(done) })
    }

    /// Signals the thread and waits at most `timeout` for it; true when it finished. A thread
    /// still busy then (a request to a peer that does not answer) is left to end on its own: its
    /// body must bound its own waits.
    #[cfg_attr(not(feature = "push"), allow(dead_code))]
    pub(crate) fn stop_within(&mut self, timeout: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else { return true };
        let done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv_timeout(timeout);
        match done {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = thread.join();
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    /// Signals the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}
