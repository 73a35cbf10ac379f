//! Everything flext-obs keeps per thread, in one thread-local so that a monitored call reaches
//! all of it with a single thread-local access on entry and one on exit.

use crate::context::Context;
use std::cell::Cell;

pub(crate) struct ThreadState {
    /// The current correlation context ([`crate::context`]).
    pub(crate) context: Cell<Context>,
    /// The ID generator's state ([`crate::entity::ids`]).
    pub(crate) rng: Cell<u64>,
    /// The write lane ([`crate::store::lane`]).
    pub(crate) lane: Cell<usize>,
}

thread_local! {
    /// No destructor, so it stays readable while the thread is torn down and reading it needs
    /// no registration check.
    pub(crate) static THREAD: ThreadState = const {
        ThreadState { context: Cell::new(Context::new()), rng: Cell::new(0), lane: Cell::new(crate::store::lane::UNCLAIMED) }
    };
}
