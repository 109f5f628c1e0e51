//! A request id for every MCP request: the caller's `x-request-id` if it sent
//! a sane one, else a new UUID. It is echoed in the response and put in the
//! request's extensions, where tool events find it.

use std::sync::Arc;

use axum::{extract::Request, middleware::Next, response::Response};
use http::HeaderValue;

use crate::instrument::RequestIdExt;

const HEADER: &str = "x-request-id";

fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

pub(super) async fn assign(mut request: Request, next: Next) -> Response {
    let (id, header) = match request.headers().get(HEADER).filter(|v| acceptable(v)) {
        Some(value) => (
            Arc::<str>::from(value.to_str().unwrap_or_default()),
            value.clone(),
        ),
        None => {
            let id = uuid::Uuid::new_v4().hyphenated().to_string();
            let header = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"));
            (Arc::from(id), header)
        }
    };
    request.extensions_mut().insert(RequestIdExt(id));
    let mut response = next.run(request).await;
    response.headers_mut().insert(HEADER, header);
    response
}
