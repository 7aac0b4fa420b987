//! Request bodies that must keep arriving: every window of `--http-body-timeout-ms` spent
//! waiting for a body must bring at least `--http-body-min-bytes-per-sec` times its length,
//! so a slow but live upload passes and one that stalls (or dribbles) is cut.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// How fast a request body must arrive.
#[derive(Clone, Copy, Debug)]
pub(super) struct BodyRate {
    /// The window the rate is measured over.
    pub(super) window: Duration,
    /// The rate, in bytes per second.
    pub(super) min_bytes_per_sec: u64,
}

impl BodyRate {
    /// Bytes each window must bring.
    fn min_bytes(&self) -> u64 {
        let bytes = u128::from(self.min_bytes_per_sec) * self.window.as_millis() / 1000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// The error of a body that arrived too slowly.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(super) struct TooSlow;

/// A request body held to a [`BodyRate`]; `timed_out` is set when it is cut, so the response
/// can say why.
pub(super) struct RateBody {
    inner: Incoming,
    rate: BodyRate,
    /// The current window's end, from the first time the body is read.
    window: Option<Pin<Box<Sleep>>>,
    /// Bytes the current window brought.
    arrived: u64,
    timed_out: Arc<AtomicBool>,
}

impl RateBody {
    pub(super) fn new(inner: Incoming, rate: BodyRate, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            rate,
            window: None,
            arrived: 0,
            timed_out,
        }
    }
}

impl Body for RateBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let rate = this.rate;
        let window = this
            .window
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(rate.window)));
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.arrived += data.len() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        // Waiting for more: is the window over, and did it bring enough?
        while window.as_mut().poll(cx).is_ready() {
            if this.arrived < rate.min_bytes() {
                this.timed_out.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(TooSlow))));
            }
            this.arrived = 0;
            window.as_mut().reset(Instant::now() + rate.window);
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
