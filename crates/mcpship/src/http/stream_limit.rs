//! Bounds on long-lived SSE streams: a maximum age, and an orderly close when
//! the server drains.
//!
//! A stream that never ends pins its replica: a load balancer deregistering
//! the task keeps the connection until its deregistration delay runs out, and
//! a drain would have to cut it. So a stream ends after `max_age`, or when the
//! drain closes streams, with a last SSE event that carries a `retry` hint (the
//! SSE reconnect delay, which Streamable HTTP clients honour) and a comment
//! saying why. The client reconnects, with `Last-Event-ID` where it has one,
//! and the load balancer sends it to a replica that is staying.
//!
//! `subscriptions/listen` streams end earlier and better: the runtime's
//! `listen` returns at `max_age` or when the drain signals it, and rmcp sends
//! the final `SubscriptionsListenResult` (the spec's graceful "complete").
//! Here they only get a backstop, [`LISTEN_AGE_GRACE`] after `max_age` and at
//! the drain's last step, for a stream whose handler did not end. Open
//! streams are counted by kind so the drain waits only as long as needed.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::TaskTracker,
};

/// How soon a client told to reconnect should do so.
const RECONNECT_AFTER_MS: u64 = 500;

/// How long after `max_age` a listen stream is cut if its handler has not
/// ended it with the final result.
pub(crate) const LISTEN_AGE_GRACE: Duration = Duration::from_secs(5);

/// Which kind of long-lived stream a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// A legacy `GET` stream.
    Get,
    /// A `subscriptions/listen` stream.
    Listen,
}

/// When streams end.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    /// Streams end after this long; `None` lets them live.
    pub(crate) max_age: Option<Duration>,
    /// Cancelled when the server drains: every stream ends at once.
    pub(crate) closing: CancellationToken,
    /// Listen streams open now (their bodies, until sent or dropped).
    pub(crate) open_listens: TaskTracker,
    /// Other streams open now.
    pub(crate) open_others: TaskTracker,
}

impl StreamLimits {
    pub(crate) fn new(max_age: Option<Duration>) -> Self {
        Self {
            max_age,
            closing: CancellationToken::new(),
            open_listens: TaskTracker::new(),
            open_others: TaskTracker::new(),
        }
    }

    pub(crate) fn wrap<B>(&self, inner: B, kind: StreamKind) -> LimitedStream<B> {
        let age = match kind {
            StreamKind::Get => self.max_age,
            StreamKind::Listen => self.max_age.map(|age| age + LISTEN_AGE_GRACE),
        };
        LimitedStream {
            inner,
            age: age.map(|age| Box::pin(tokio::time::sleep(age))),
            closing: Box::pin(self.closing.clone().cancelled_owned()),
            state: State::Open,
        }
    }

    /// Counts a stream of `kind` as open until the token is dropped.
    pub(crate) fn open(
        &self,
        kind: StreamKind,
    ) -> tokio_util::task::task_tracker::TaskTrackerToken {
        match kind {
            StreamKind::Get => self.open_others.token(),
            StreamKind::Listen => self.open_listens.token(),
        }
    }
}

/// Resolves once `tracker` counts nothing open, or after `wait`; returns
/// whether it emptied. Open streams are not waited for when there are none.
pub(crate) async fn all_closed(tracker: &TaskTracker, wait: Duration) -> bool {
    if tracker.is_empty() {
        return true;
    }
    tracker.close();
    tokio::time::timeout(wait, tracker.wait()).await.is_ok()
}

enum State {
    Open,
    /// The farewell event is to be sent, then the end.
    Closing(&'static str),
    Done,
}

/// An SSE body that ends on age or drain, with a reconnect hint.
pub(crate) struct LimitedStream<B> {
    inner: B,
    age: Option<Pin<Box<tokio::time::Sleep>>>,
    closing: Pin<Box<WaitForCancellationFutureOwned>>,
    state: State,
}

fn farewell(reason: &str) -> Bytes {
    Bytes::from(format!(
        ": stream closed ({reason}); reconnect\nretry: {RECONNECT_AFTER_MS}\n\n"
    ))
}

impl<B> http_body::Body for LimitedStream<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Closing(reason) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Ok(Frame::data(farewell(reason)))));
                }
                State::Open => {}
            }
            if this.closing.as_mut().poll(cx).is_ready() {
                this.state = State::Closing("server draining");
                continue;
            }
            if let Some(age) = &mut this.age
                && age.as_mut().poll(cx).is_ready()
            {
                this.state = State::Closing("maximum stream age");
                continue;
            }
            return match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.state = State::Done;
                    Poll::Ready(None)
                }
                other => other,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn endless() -> impl http_body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        StreamBody::new(futures::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >())
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_stream_ends_with_a_reconnect_hint() {
        let limits = StreamLimits::new(Some(Duration::from_secs(5)));
        let body = limits.wrap(endless(), StreamKind::Get);
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("maximum stream age"), "{text}");
        assert!(text.ends_with("retry: 500\n\n"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_listen_stream_gets_a_grace_period_past_max_age() {
        let limits = StreamLimits::new(Some(Duration::from_secs(5)));
        let started = tokio::time::Instant::now();
        let body = limits.wrap(endless(), StreamKind::Listen);
        body.collect().await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(5) + LISTEN_AGE_GRACE);
    }

    #[tokio::test]
    async fn a_drain_ends_every_stream() {
        let limits = StreamLimits::new(None);
        let body = limits.wrap(endless(), StreamKind::Listen);
        limits.closing.cancel();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("server draining")
        );
    }
}
