//! Draining: calls in flight finish, new work is refused with a retryable
//! status, open streams are closed, and `serve` returns within the deadline.

mod common;

use std::time::Duration;

use common::{Replica, Tools, modern_request, modern_tool_call};
use mcpship::{Phase, ServeConfig};
use serde_json::{Value, json};

async fn call(
    client: &reqwest::Client,
    base: &str,
    millis: u64,
) -> reqwest::Result<reqwest::Response> {
    modern_request(client, base, "tools/call", Some("sleep"))
        .body(modern_tool_call("sleep", json!({"millis": millis})).to_string())
        .send()
        .await
}

async fn start(drain: Duration) -> Replica {
    let config = ServeConfig {
        drain_timeout: drain,
        ..ServeConfig::default()
    };
    common::replica(config, Tools::new()).await
}

#[tokio::test]
async fn in_flight_calls_finish_and_new_ones_are_refused() {
    let mut h = start(Duration::from_secs(10)).await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn({
        let client = client.clone();
        let base = h.base.clone();
        async move { call(&client, &base, 1500).await.unwrap() }
    });
    // A kept-alive connection made before the drain, used after it starts.
    let other = reqwest::Client::new();
    assert_eq!(
        other
            .get(format!("{}/ready", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    h.drain();
    h.lifecycle.reached(Phase::Draining).await;

    // New work on the existing connection: refused, retryable.
    match call(&other, &h.base, 1).await {
        Ok(r) => {
            assert_eq!(r.status(), 503);
            assert!(r.headers().contains_key("retry-after"));
        }
        // Or the connection was already closed: also safe to retry.
        Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
    }

    let response = slow.await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["result"]["content"][0]["text"], "slept 1500 ms",
        "{body}"
    );

    h.done.await.unwrap().unwrap();
    assert_eq!(h.lifecycle.phase(), Phase::Stopped);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The listener is gone.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/health", h.base))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn open_streams_do_not_hold_the_drain() {
    let mut h = start(Duration::from_secs(4)).await;
    let client = reqwest::Client::new();
    // A legacy session with its standalone GET stream, which never ends by itself.
    let init = client
        .post(format!("{}/mcp", h.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(init.text().await);
    let initialized = client
        .post(format!("{}/mcp", h.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), 202);
    let mut stream = client
        .get(format!("{}/mcp", h.base))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let started = std::time::Instant::now();
    h.drain();
    // The stream ends (closed by the server), well before the deadline.
    let ended = tokio::time::timeout(Duration::from_secs(4), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "stream was not closed by the drain");
    tokio::time::timeout(Duration::from_secs(5), h.done)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}
