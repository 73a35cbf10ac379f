//! Everything flext-obs keeps per thread, in one thread-local so that a monitored call reaches
//! all of it with a single thread-local access on entry and one on exit.

use crate::entity::CorrelationId;
use crate::entity::ids::SpanContext;
use std::cell::Cell;

/// The current context (`context::Context`) is kept in two parts, so that a monitored
/// call, which changes only the span and the calling site, never copies the correlation ID (an
/// inline token of up to 64 bytes) on its way in and out.
pub(crate) struct ThreadState {
    /// The current correlation ID.
    pub(crate) correlation: Cell<Option<CorrelationId>>,
    /// The current span and monitored call site.
    pub(crate) scope: Cell<CallScope>,
    /// The ID generator's state ([`crate::entity::ids`]).
    pub(crate) rng: Cell<u64>,
    /// The write lane (the store's lane module), [`UNCLAIMED`] until the thread first records.
    pub(crate) lane: Cell<usize>,
    /// Panics on this thread seen by flext-obs' panic hook (the monitor's panic module),
    /// so a call reads only the message of a panic that began after it did.
    pub(crate) panics: Cell<u64>,
}

/// A thread's lane before it first records (the store's lane module claims one then).
pub(crate) const UNCLAIMED: usize = usize::MAX;

thread_local! {
    /// No destructor, so it stays readable while the thread is torn down and reading it needs
    /// no registration check.
    pub(crate) static THREAD: ThreadState = const {
        ThreadState {
            correlation: Cell::new(None),
            scope: Cell::new(CallScope::NONE),
            rng: Cell::new(0), lane: Cell::new(UNCLAIMED),
            panics: Cell::new(0),
        }
    };
}

/// The part of the thread's context (`context::Context`) a monitored call changes: the current span and the monitored call
/// site it runs in, and two flags about the span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub(crate) struct CallScope {
    pub(crate) span: Option<SpanContext>,
    /// Call-site index of the monitored function (0: none).
    pub(crate) site: u32,
    /// [`CallScope::REMOTE`] and [`CallScope::TRACESTATE`].
    pub(crate) flags: u8,
}

impl CallScope {
    /// No span, no monitored call.
    pub(crate) const NONE: CallScope = CallScope { span: None, site: 0, flags: 0 };
    /// The span is another process's (extracted from a request).
    pub(crate) const REMOTE: u8 = 1;
    /// The thread's context carries a `tracestate` (its spans record it).
    pub(crate) const TRACESTATE: u8 = 2;

    /// The scope of a monitored call's own span, made in `self`: local, and carrying the same
    /// `tracestate`.
    #[inline]
    pub(crate) fn child(self, span: SpanContext, site: u32) -> CallScope {
        CallScope { span: Some(span), site, flags: self.flags & CallScope::TRACESTATE }
    }

    /// Whether the span is another process's.
    #[inline]
    pub(crate) fn remote(self) -> bool {
        self.flags & CallScope::REMOTE != 0
    }
}
