//! One connection's deadlines, enforced on its socket.
//!
//! hyper bounds the time to read a request head from when it starts waiting for it, which on a
//! kept-alive connection includes the idle wait; and it has no write timeout at all. So the
//! socket is wrapped ([`Guarded`]) and follows the connection through its [`Phase`]s, as Go's
//! `net/http` does:
//!
//! - `Idle`: waiting for the first byte of a request: at most `header_read_timeout` on a new
//!   connection, `idle_timeout` on a kept-alive one;
//! - `Head`: from that first byte until hyper hands the request over: `header_read_timeout`
//!   (a slowloris client that trickles bytes is closed after it);
//! - `Serving`: from the request to the end of its response body ([`TrackedBody`] is dropped):
//!   no read deadline (handlers are bounded on their own).
//!
//! A read that would wait past its phase's deadline, or a write (or flush) that makes no progress
//! for `write_timeout`, fails with [`std::io::ErrorKind::TimedOut`]; hyper then drops the
//! connection and with it the response it was writing, so a reader that stalls pins nothing
//! longer than the write timeout. Which deadline fired is kept for the server's counters.

use axum::body::Body;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The deadlines of one connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) header_read: Duration,
    pub(super) idle: Duration,
    pub(super) write: Duration,
}

/// Why a connection was closed by a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    HeaderRead,
    Idle,
    Write,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Idle { since: Instant, first: bool },
    Head { since: Instant },
    Serving,
}

/// Where a connection is, shared by its socket, its service and its response bodies.
#[derive(Debug)]
pub(super) struct Phase {
    stage: Mutex<Stage>,
    expired: Mutex<Option<Expired>>,
}

impl Phase {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Phase { stage: Mutex::new(Stage::Idle { since: Instant::now(), first: true }), expired: Mutex::new(None) })
    }

    fn set(&self, stage: Stage) {
        *self.stage.lock().unwrap_or_else(PoisonError::into_inner) = stage;
    }

    /// hyper parsed a request head and calls the service.
    pub(super) fn serving(&self) {
        self.set(Stage::Serving);
    }

    /// The response body is done (sent, or dropped with the connection).
    fn response_done(&self) {
        self.set(Stage::Idle { since: Instant::now(), first: false });
    }

    fn bytes_read(&self) {
        let mut stage = self.stage.lock().unwrap_or_else(PoisonError::into_inner);
        if let Stage::Idle { .. } = *stage {
            *stage = Stage::Head { since: Instant::now() };
        }
    }

    /// The read deadline now, and what it is called when it passes.
    fn read_deadline(&self, t: &Timeouts) -> Option<(Instant, Expired)> {
        match *self.stage.lock().unwrap_or_else(PoisonError::into_inner) {
            Stage::Idle { since, first: true } | Stage::Head { since } => Some((since + t.header_read, Expired::HeaderRead)),
            Stage::Idle { since, first: false } => Some((since + t.idle, Expired::Idle)),
            Stage::Serving => None,
        }
    }

    /// Which deadline closed the connection, if one did.
    pub(super) fn expired(&self) -> Option<Expired> {
        *self.expired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire(&self, why: Expired) -> io::Error {
        *self.expired.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
        io::Error::new(io::ErrorKind::TimedOut, format!("{why:?} timeout"))
    }
}

/// A socket with the connection's read and write deadlines.
pub(super) struct Guarded<S> {
    inner: S,
    phase: Arc<Phase>,
    timeouts: Timeouts,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// When the current write started waiting (no progress since), with its timer.
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Guarded<S> {
    pub(super) fn new(inner: S, phase: Arc<Phase>, timeouts: Timeouts) -> Self {
        Guarded { inner, phase, timeouts, read_timer: None, write_stall: None }
    }

    /// Called when a read is pending: fails once the phase's deadline has passed, otherwise
    /// arms the timer so the task is woken at the deadline.
    fn check_read_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((deadline, why)) = self.phase.read_deadline(&self.timeouts) else {
            self.read_timer = None;
            return Poll::Pending;
        };
        let timer = self.read_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(self.phase.expire(why))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Called when a write is pending: fails after `write_timeout` without progress.
    fn check_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let write = self.timeouts.write;
        let timer = self.write_stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(write)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.phase.expire(Expired::Write)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write_result<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.write_stall = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check_write_stall(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.phase.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.check_read_deadline(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_result(cx, polled)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_result(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_result(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_result(cx, polled)
    }
}

/// A response body that moves its connection back to `Idle` when it is done or dropped.
pub(super) struct TrackedBody {
    inner: Body,
    phase: Arc<Phase>,
}

impl TrackedBody {
    pub(super) fn new(inner: Body, phase: Arc<Phase>) -> Self {
        TrackedBody { inner, phase }
    }
}

impl HttpBody for TrackedBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.phase.response_done();
    }
}
