//! Background threads that run until told to stop (the retention sweeper, the system sampler,
//! the pusher): stopping, by call or by drop, signals the thread and waits for it to finish.

use crate::error::{Error, Result};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

#[derive(Debug)]
pub(crate) struct Worker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` on a thread named `name`; `body` watches its receiver (`recv_timeout` is the
    /// usual wait) and returns once the sender is dropped or signalled.
    pub(crate) fn spawn(name: &str, body: impl FnOnce(Receiver<()>) + Send + 'static) -> Result<Self> {
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(stopped))
            .map_err(|e| Error::invalid("worker", "thread", e.to_string(), format!("the {name} thread could not be started")))?;
        Ok(Worker { stop: Some(stop), thread: Some(thread) })
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
