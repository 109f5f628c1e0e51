//! Keys replicas share, on the real binary: MRTR `requestState` sealed by one
//! replica opens on another with the same `MCPSHIP_REQUEST_STATE_KEYS` (and
//! after a rotation), not with other keys; sealed legacy sessions
//! (`MCPSHIP_STATE=sealed`) move between replicas; bad keys stop the start
//! with a message that names the variable and never shows a key.

mod common;

use common::*;
use serde_json::{Value, json};

const OLD: &str = "old:GLRhC9Q4700iyIdpnQKYgo2f+WTUCFOEfY8wZmOVXZA=";
const NEW: &str = "new:QmJOrDPifKVedDFCgIPIh0BCq0kGUR6r3j6RLD49Wnk=";
/// Same id as `OLD`, another key.
const IMPOSTOR: &str = "old:qUHkD5maa+SaUj0uOLs3Io+WRjYsrhHCZvkE7kEccdw=";
const TOOL: &str = "test_input_required_result_request_state";

fn fixtures(env: &[(&str, &str)]) -> Running {
    serve(&["--fixtures", "conformance"], env)
}

/// Calls the MRTR fixture tool the 2026-07-28 way; returns the `result`.
async fn call(server: &Running, extra: Value) -> Value {
    let mut params = json!({
        "name": TOOL,
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    let response = modern_request(server, "tools/call", Some(TOOL))
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body
}

/// Round one on `first`, round two on `second`: the JSON-RPC reply to round two.
async fn two_rounds(first: &Running, second: &Running) -> Value {
    let round_one = call(first, json!({})).await;
    assert_eq!(
        round_one["result"]["resultType"], "input_required",
        "{round_one}"
    );
    let state = round_one["result"]["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned();
    call(
        second,
        json!({
            "requestState": state,
            "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}}
        }),
    )
    .await
}

fn verified(reply: &Value) -> bool {
    reply["result"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("state-ok: requestState verified"))
}

#[tokio::test]
async fn request_state_opens_on_another_replica_with_the_same_keys() {
    let a = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", OLD)]);
    let b = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", OLD)]);
    let reply = two_rounds(&a, &b).await;
    assert!(verified(&reply), "{reply}");
}

#[tokio::test]
async fn request_state_is_rejected_under_other_keys() {
    let a = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", OLD)]);
    let impostor = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", IMPOSTOR)]);
    let other = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", NEW)]);
    let unset = fixtures(&[]);
    for b in [&impostor, &other, &unset] {
        let reply = two_rounds(&a, b).await;
        assert_eq!(reply["error"]["code"], -32602, "{reply}");
        assert!(!verified(&reply));
    }
    // And with no keys at all, one process still opens its own state.
    assert!(verified(&two_rounds(&unset, &unset).await));
}

#[tokio::test]
async fn request_state_survives_a_key_rotation() {
    let a = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", OLD)]);
    let b = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", &format!("{NEW},{OLD}"))]);
    assert!(verified(&two_rounds(&a, &b).await));
    // Stage one of a rotation (`old,new`) opens what stage two seals.
    let c = fixtures(&[("MCPSHIP_REQUEST_STATE_KEYS", &format!("{OLD},{NEW}"))]);
    assert!(verified(&two_rounds(&b, &c).await));
}

/// POSTs a legacy message; returns status and session id.
async fn legacy(server: &Running, session: Option<&str>, body: Value) -> (u16, Option<String>) {
    let response = legacy_request(server, session)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, id)
}

#[tokio::test]
async fn sealed_sessions_move_between_processes() {
    let env = [("MCPSHIP_STATE", "sealed"), ("MCPSHIP_SESSION_KEYS", OLD)];
    let a = serve(&[], &env);
    let b = serve(&[], &env);
    // Several replicas and no request-state keys: said at start.
    let a_fixtures = fixtures(&env);
    assert!(
        a_fixtures
            .startup
            .iter()
            .any(|l| l.contains("MCPSHIP_REQUEST_STATE_KEYS is not set")),
        "{:?}",
        a_fixtures.startup
    );
    let (status, session) = legacy(
        &a,
        None,
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}
            }
        }),
    )
    .await;
    assert_eq!(status, 200);
    let session = session.unwrap();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(legacy(&b, Some(&session), list.clone()).await.0, 200);
    let elsewhere = serve(
        &[],
        &[("MCPSHIP_STATE", "sealed"), ("MCPSHIP_SESSION_KEYS", NEW)],
    );
    assert_eq!(legacy(&elsewhere, Some(&session), list).await.0, 404);
    // The access log records the local part of the id only.
    let logs = a.drain_logs().join("\n");
    assert!(!logs.contains(&session), "{logs}");
}

#[test]
fn bad_keys_stop_the_start_without_showing_them() {
    let out = run(&["serve"], &[("MCPSHIP_STATE", "sealed")]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCPSHIP_SESSION_KEYS=\"\" is not valid: MCPSHIP_STATE=sealed needs keys")
            && err.contains("openssl rand -base64 32"),
        "{err}"
    );

    let short = "k1:c2hvcnQ=";
    let out = run(
        &["serve"],
        &[
            ("MCPSHIP_STATE", "sealed"),
            ("MCPSHIP_SESSION_KEYS", short),
            ("MCPSHIP_REQUEST_STATE_KEYS", "GLRhC9Q4700iyIdpnQKYgo2f"),
        ],
    );
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCPSHIP_SESSION_KEYS=\"k1:***\" is not valid: key \"k1\" is 5 bytes; it must be 32 bytes"),
        "{err}"
    );
    assert!(
        err.contains(
            "MCPSHIP_REQUEST_STATE_KEYS=\"***\" is not valid: item 1 is not KEY_ID:BASE64KEY"
        ),
        "{err}"
    );
    assert!(
        !err.contains("c2hvcnQ") && !err.contains("GLRhC9Q"),
        "{err}"
    );

    // Nor does --help show what the environment holds.
    let out = run(&["serve", "--help"], &[("MCPSHIP_SESSION_KEYS", OLD)]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("GLRhC9Q"));
}

#[test]
fn config_shows_key_ids_only() {
    let out = run(
        &["config"],
        &[
            ("MCPSHIP_STATE", "sealed"),
            ("MCPSHIP_SESSION_KEYS", &format!("{NEW},{OLD}")),
            ("MCPSHIP_REQUEST_STATE_KEYS", OLD),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("GLRhC9Q") && !text.contains("QmJOrDP"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["state"], "sealed");
    assert_eq!(v["session_keys"], "new:***,old:***");
    assert_eq!(v["request_state_keys"], "old:***");
    assert_eq!(v["session_max_lifetime"], "1day");
}
