//! Plain JSON clients on `/mcp`.
//!
//! The transport spec has clients accept both `application/json` and
//! `text/event-stream`, and rmcp answers 406 otherwise. Health probes and
//! deploy smoke tests written with a bare HTTP library send no `Accept` (or
//! `*/*`, or only JSON) and expect a JSON body. For those requests this layer
//! fills `Accept` in, and if rmcp still answers with an SSE stream (legacy
//! sessions always do), it reads the stream up to the JSON-RPC response and
//! returns that as `application/json`, keeping status and headers such as
//! `Mcp-Session-Id`. Clients that accept SSE are not touched.

use axum::{
    body::Body,
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;

use super::sse::{find_event_end, response_in_event};

const BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
/// The most SSE this layer buffers looking for a response; a larger reply is
/// better served to a client that reads SSE.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// What the client's `Accept` allows.
fn accepts(request: &Request) -> (bool, bool) {
    let mut json = false;
    let mut sse = false;
    for value in request.headers().get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let essence = range.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/json") {
                json = true;
            } else if essence.eq_ignore_ascii_case("text/event-stream") {
                sse = true;
            } else if essence == "*/*" || essence.eq_ignore_ascii_case("application/*") {
                json = true;
            }
        }
    }
    (json, sse)
}

pub(super) async fn plain_json_clients(mut request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (json, sse) = accepts(&request);
    if sse && json {
        return next.run(request).await;
    }
    request.headers_mut().insert(header::ACCEPT, BOTH);
    let response = next.run(request).await;
    if sse || !is_event_stream(&response) {
        return response;
    }
    sse_to_json(response).await
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads SSE events until one carries a JSON-RPC response or error.
async fn sse_to_json(response: Response) -> Response {
    let (mut parts, mut body) = response.into_parts();
    let mut buffer: Vec<u8> = Vec::new();
    let mut scanned = 0;
    loop {
        // Scan complete events (terminated by a blank line) for a response.
        while let Some(end) = find_event_end(&buffer[scanned..]) {
            let event = &buffer[scanned..scanned + end];
            scanned += end;
            if let Some(message) = response_in_event(event) {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                parts.headers.remove("x-accel-buffering");
                return Response::from_parts(parts, Body::from(message));
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                    if buffer.len() > MAX_BUFFERED {
                        break;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "response stream failed before its result");
                break;
            }
            None => break,
        }
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32603, "message": "the server's stream ended without a response; retry, or accept text/event-stream" },
    });
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
