//! Sealed sessions (`MCPSHIP_STATE=sealed`): a legacy session made on one
//! replica continues on another that holds the same keys, with no store;
//! an id that does not verify (other keys, tampered, expired) is a 404, so
//! the client initializes again, and never a 500.

mod common;

use std::time::Duration;

use common::{Replica, Tools, content_type, legacy_post, modern_request, modern_tool_call};
use mcpship::{
    ServeConfig, Server,
    state::{KeyRingSetting, StateBackend},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const OLD: &str = "old:GLRhC9Q4700iyIdpnQKYgo2f+WTUCFOEfY8wZmOVXZA=";
const NEW: &str = "new:QmJOrDPifKVedDFCgIPIh0BCq0kGUR6r3j6RLD49Wnk=";
/// Same id as `OLD`, another key: the wrong key under a known name.
const IMPOSTOR: &str = "old:qUHkD5maa+SaUj0uOLs3Io+WRjYsrhHCZvkE7kEccdw=";

fn sealed(keys: &str) -> ServeConfig {
    ServeConfig {
        state: StateBackend::Sealed,
        session_keys: Some(KeyRingSetting::new(keys)),
        ..ServeConfig::default()
    }
}

/// A replica whose `echo` names the client.
async fn replica(config: ServeConfig) -> Replica {
    common::replica(config, Tools::naming_client()).await
}

/// Initializes on `base` and confirms; returns the session id.
async fn open_session(base: &str) -> String {
    common::open_session(&reqwest::Client::new(), base, "sealed-test").await
}

/// Calls `echo` in the session; returns the status and the tool's text.
async fn echo(base: &str, session: &str, id: u64) -> (u16, Option<String>) {
    let (status, _, message) = legacy_post(
        &reqwest::Client::new(),
        base,
        Some(session),
        json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": format!("call {id}")}}
        }),
    )
    .await;
    let text = message.and_then(|m| {
        m["result"]["content"][0]["text"]
            .as_str()
            .map(str::to_owned)
    });
    (status, text)
}

#[tokio::test]
async fn a_sealed_session_continues_on_another_replica_with_the_same_keys() {
    let a = replica(sealed(OLD)).await;
    let b = replica(sealed(OLD)).await;
    let session = open_session(&a.base).await;
    let (local, rest) = session.split_once('.').expect("a sealed id");
    assert!(rest.starts_with("old."), "{session}");
    assert!(uuid_like(local), "{session}");

    // B never saw the session: everything it knows comes from the id.
    for (id, base) in [(2, &b.base), (3, &a.base), (4, &b.base)] {
        assert_eq!(
            echo(base, &session, id).await,
            (200, Some(format!("call {id} for sealed-test"))),
            "call {id} on {base}"
        );
    }
    // A replica that is gone does not take the session with it.
    a.stop().await;
    assert_eq!(echo(&b.base, &session, 5).await.0, 200);
    b.stop().await;
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[tokio::test]
async fn get_streams_and_delete_work_on_the_same_replica() {
    let a = replica(sealed(OLD)).await;
    let session = open_session(&a.base).await;
    let client = reqwest::Client::new();
    let stream = client
        .get(format!("{}/mcp", a.base))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(content_type(&stream).starts_with("text/event-stream"));
    drop(stream);
    let deleted = client
        .delete(format!("{}/mcp", a.base))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    // Ended here; without a store, not elsewhere (see docs/operations.md).
    assert_eq!(echo(&a.base, &session, 2).await.0, 404);
    let b = replica(sealed(OLD)).await;
    assert_eq!(echo(&b.base, &session, 3).await.0, 200);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn another_key_ring_answers_404() {
    let a = replica(sealed(OLD)).await;
    let b = replica(sealed(NEW)).await;
    let c = replica(sealed(IMPOSTOR)).await;
    let session = open_session(&a.base).await;
    assert_eq!(echo(&b.base, &session, 2).await.0, 404);
    assert_eq!(echo(&c.base, &session, 3).await.0, 404);
    assert_eq!(echo(&a.base, &session, 4).await.0, 200);
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn a_tampered_id_answers_404_even_where_the_session_lives() {
    let a = replica(sealed(OLD)).await;
    let session = open_session(&a.base).await;
    let (local, rest) = session.split_once('.').unwrap();
    let mut flipped = session.clone().into_bytes();
    let at = flipped.len() - 3;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_local = format!("00000000-0000-4000-8000-000000000000.{rest}");
    for forged in [
        flipped.as_str(),
        local,
        other_local.as_str(),
        &format!("{local}.old."),
        &format!("{local}.nokey.{}", &rest[4..]),
        "garbage",
    ] {
        let (status, _) = echo(&a.base, forged, 2).await;
        assert_eq!(status, 404, "{forged}");
    }
    assert_eq!(echo(&a.base, &session, 3).await.0, 200);
    a.stop().await;
}

#[tokio::test]
async fn rotation_opens_ids_sealed_with_the_previous_key() {
    let a = replica(sealed(OLD)).await;
    let b = replica(sealed(&format!("{NEW},{OLD}"))).await;
    let from_a = open_session(&a.base).await;
    assert_eq!(echo(&b.base, &from_a, 2).await.0, 200);
    // B seals with the first key of its ring.
    let from_b = open_session(&b.base).await;
    assert!(from_b.split('.').nth(1) == Some("new"), "{from_b}");
    // A replica with only the old key cannot open it: roll `old,new` out
    // everywhere before `new,old`.
    assert_eq!(echo(&a.base, &from_b, 3).await.0, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_expired_seal_answers_404() {
    let config = |keys| ServeConfig {
        session_max_lifetime: Duration::from_secs(1),
        ..sealed(keys)
    };
    let a = replica(config(OLD)).await;
    let b = replica(config(OLD)).await;
    let session = open_session(&a.base).await;
    assert_eq!(echo(&b.base, &session, 2).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(echo(&a.base, &session, 3).await.0, 404);
    assert_eq!(echo(&b.base, &session, 4).await.0, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn stateless_requests_pass_untouched() {
    let a = replica(sealed(OLD)).await;
    let mut body = modern_tool_call("echo", json!({"text": "hi"}));
    body["params"]["_meta"]["io.modelcontextprotocol/clientInfo"] =
        json!({"name": "modern", "version": "1"});
    let response = modern_request(&reqwest::Client::new(), &a.base, "tools/call", Some("echo"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let body: Value = response.json().await.unwrap();
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.starts_with("hi for "), "{body}");
    a.stop().await;
}

#[tokio::test]
async fn sealed_without_keys_refuses_to_start() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServeConfig {
        state: StateBackend::Sealed,
        ..ServeConfig::default()
    };
    let handler = Tools::naming_client();
    let error = Server::new(config, move || handler.clone())
        .serve(listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("MCPSHIP_SESSION_KEYS"), "{error}");
    assert!(error.contains("openssl rand -base64 32"), "{error}");
}
