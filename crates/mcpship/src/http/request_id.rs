//! A request id for every MCP request: the caller's `x-request-id` if it sent
//! a sane one, else a new one. It is echoed in the response and put in the
//! request's extensions, where tool events find it.
//!
//! New ids are a random per-process prefix and a counter, rendered into one
//! buffer: unique across replicas and restarts without a random-number
//! syscall or a UUID allocation on every request.

use std::{
    future::Future,
    hash::{BuildHasher, Hasher},
    pin::Pin,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};

use crate::{instrument::RequestIdExt, telemetry::trace::write_hex};

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// 64 random bits per process (std seeds `RandomState` from the OS once),
/// in hex with the dash, rendered once.
static PREFIX: LazyLock<[u8; 17]> = LazyLock::new(|| {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let mut prefix = [b'-'; 17];
    write_hex(&mut prefix[..16], &hasher.finish().to_be_bytes());
    prefix
});
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `pppppppppppppppp-cccccccccccccccc`: prefix and counter in hex.
fn new_id() -> HeaderValue {
    let mut buf = [0u8; 33];
    buf[..17].copy_from_slice(&*PREFIX);
    write_hex(
        &mut buf[17..],
        &COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes(),
    );
    HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&buf))
        .expect("hex digits and '-' are valid header bytes")
}

/// Adds request ids.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct RequestId<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for RequestId<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = match request.headers().get(HEADER).filter(|v| acceptable(v)) {
            Some(value) => value.clone(),
            None => new_id(),
        };
        request.extensions_mut().insert(RequestIdExt(id.clone()));
        WithRequestId {
            inner: self.inner.call(request),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, with `x-request-id` set.
    pub(super) struct WithRequestId<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for WithRequestId<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_distinct_and_well_formed() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(acceptable(&a));
        let text = a.to_str().unwrap();
        assert_eq!(text.len(), 33);
        assert_eq!(text.as_bytes()[16], b'-');
        // Same process, same prefix; the counter in hex after it.
        assert_eq!(text[..16], b.to_str().unwrap()[..16]);
        let a_count = u64::from_str_radix(&text[17..], 16).unwrap();
        let b_count = u64::from_str_radix(&b.to_str().unwrap()[17..], 16).unwrap();
        assert!(b_count > a_count);
        assert!(
            text.bytes()
                .all(|c| c == b'-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn caller_ids_must_be_short_and_plain() {
        assert!(acceptable(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("has space")));
        assert!(!acceptable(
            &HeaderValue::from_str(&"a".repeat(129)).unwrap()
        ));
    }
}
