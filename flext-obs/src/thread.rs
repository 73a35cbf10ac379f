//! Everything flext-obs keeps per thread, in one thread-local so that a monitored call reaches
//! all of it with a single thread-local access on entry and one on exit.

use crate::context::CallScope;
use crate::entity::CorrelationId;
use std::cell::Cell;

/// The current context ([`crate::context::Context`]) is kept in two parts, so that a monitored
/// call, which changes only the span and the calling site, never copies the correlation ID (an
/// inline token of up to 64 bytes) on its way in and out.
pub(crate) struct ThreadState {
    /// The current correlation ID.
    pub(crate) correlation: Cell<Option<CorrelationId>>,
    /// The current span and monitored call site.
    pub(crate) scope: Cell<CallScope>,
    /// The ID generator's state ([`crate::entity::ids`]).
    pub(crate) rng: Cell<u64>,
    /// The write lane ([`crate::store::lane`]).
    pub(crate) lane: Cell<usize>,
    /// Panics on this thread seen by flext-obs' panic hook ([`crate::monitor`]'s panic module),
    /// so a call reads only the message of a panic that began after it did.
    pub(crate) panics: Cell<u64>,
}

thread_local! {
    /// No destructor, so it stays readable while the thread is torn down and reading it needs
    /// no registration check.
    pub(crate) static THREAD: ThreadState = const {
        ThreadState {
            correlation: Cell::new(None),
            scope: Cell::new(CallScope::NONE),
            rng: Cell::new(0), lane: Cell::new(crate::store::lane::UNCLAIMED),
            panics: Cell::new(0),
        }
    };
}
