//! The bounded pool of threads that run the checks.
//!
//! A check that hangs holds the thread it runs on; with a thread per run, any client asking for
//! `/health` again and again could make the process spawn without limit. Here a registry owns at
//! most `max_workers` threads, started when work arrives and ended after they sat idle for
//! [`IDLE_EXIT`]. Since a check is never queued or started again while a run of it is in
//! progress (see [`super::run`]), the queue holds at most one job per registered check.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// How long an idle worker waits for work before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    workers: usize,
    idle: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    max_workers: usize,
}

/// A cloneable handle on the pool.
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    pub(crate) fn new(max_workers: usize) -> Self {
        Pool { shared: Arc::new(Shared { queue: Mutex::new(Queue::default()), work: Condvar::new(), max_workers: max_workers.max(1) }) }
    }

    /// Queues `job`, starting a worker when none is idle and the limit allows one. Fails only
    /// when no worker exists and none can be started (the job is then not queued).
    pub(crate) fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), String> {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.idle == 0 && queue.workers < self.shared.max_workers {
            let shared = self.shared.clone();
            match std::thread::Builder::new().name("flext-health".into()).spawn(move || work(&shared)) {
                Ok(_) => queue.workers += 1,
                Err(err) if queue.workers == 0 => return Err(format!("no thread to run it on: {err}")),
                Err(_) => {}
            }
        }
        queue.jobs.push_back(Box::new(job));
        drop(queue);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Worker threads alive now (for tests and the `Debug` output).
    pub(crate) fn workers(&self) -> usize {
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).workers
    }
}

/// A worker's loop: run jobs until none came for [`IDLE_EXIT`]. Jobs catch their own panics.
fn work(shared: &Shared) {
    let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            job();
            queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        queue.idle += 1;
        let (next, waited) = shared.work.wait_timeout(queue, IDLE_EXIT).unwrap_or_else(PoisonError::into_inner);
        queue = next;
        queue.idle -= 1;
        if waited.timed_out() && queue.jobs.is_empty() {
            queue.workers -= 1;
            return;
        }
    }
}
