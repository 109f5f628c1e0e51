//! `mcpship ingest` tells `subscriptions/listen` streams on a running
//! `mcpship serve` what changed, through Redis, as a batch ingest against a
//! shared database tells every replica.
//!
//! Needs Redis: `MCPSHIP_TEST_REDIS_URL` (scripts/test sets it).

mod common;

use std::time::Duration;

use serde_json::{Value, json};

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

fn redis_url() -> String {
    std::env::var("MCPSHIP_TEST_REDIS_URL")
        .expect("MCPSHIP_TEST_REDIS_URL must name a Redis server (scripts/test starts one)")
}

/// Reads JSON-RPC messages from an SSE response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("no event within 10 s")
                .ok()??;
            self.buffer
                .push_str(&std::str::from_utf8(&chunk).unwrap().replace("\r\n", "\n"));
        }
    }
}

fn ingest(dir: &std::path::Path, db: &str, prefix: &str) -> String {
    let out = std::process::Command::new(common::BIN)
        .args(["ingest", "--no-progress", dir.to_str().unwrap()])
        .env("DATABASE_URL", db)
        .env("MCPSHIP_STATE", "redis")
        .env("MCPSHIP_REDIS_URL", redis_url())
        .env("MCPSHIP_REDIS_PREFIX", prefix)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ingest failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn ingest_reaches_a_listener_on_a_running_server_through_redis() {
    let prefix = format!(
        "mcpship-test:ingest-listen:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let url = redis_url();
    let server = common::serve(
        &[],
        &[
            ("MCPSHIP_SEED_CORPUS", "false"),
            ("MCPSHIP_STATE", "redis"),
            ("MCPSHIP_REDIS_URL", &url),
            ("MCPSHIP_REDIS_PREFIX", &prefix),
        ],
    );
    let db = format!("sqlite://{}", server._dir.path().join("docs.db").display());

    let body = json!({
        "jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen",
        "params": {
            "notifications": {
                "resourcesListChanged": true,
                "toolsListChanged": true,
                "resourceSubscriptions": ["docs://fresh", "docs://elsewhere", "https://example.com/x"]
            },
            "_meta": common::modern_meta()
        }
    });
    let response = common::modern_request(&server, "subscriptions/listen", None)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    let ack = events.next().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // Only docs:// resources and the resource list: the tools never change.
    assert_eq!(
        ack["params"]["notifications"],
        json!({
            "resourcesListChanged": true,
            "resourceSubscriptions": ["docs://fresh", "docs://elsewhere"]
        })
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("fresh.md"), "# Fresh\n\nJust written.").unwrap();
    std::fs::write(
        docs.path().join("unwatched.md"),
        "# Unwatched\n\nNobody asked.",
    )
    .unwrap();
    let stdout = {
        let (dir, db, prefix) = (docs.path().to_owned(), db.clone(), prefix.clone());
        tokio::task::spawn_blocking(move || ingest(&dir, &db, &prefix))
            .await
            .unwrap()
    };
    assert!(stdout.contains("2 inserted"), "{stdout}");
    assert!(stdout.contains("told listeners"), "{stdout}");

    let listed = events.next().await.unwrap();
    assert_eq!(listed["method"], "notifications/resources/list_changed");
    assert_eq!(listed["params"]["_meta"][SUBSCRIPTION_ID], 5);
    let updated = events.next().await.unwrap();
    assert_eq!(updated["method"], "notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], "docs://fresh");
    assert_eq!(updated["params"]["_meta"][SUBSCRIPTION_ID], 5);

    // The server reads what was announced.
    let (status, read) = common::modern(
        &server,
        "resources/read",
        Some("docs://fresh"),
        json!({"uri": "docs://fresh"}),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert!(
        read["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Just written")
    );

    // Nothing changed, nothing announced.
    let stdout = {
        let (dir, db, prefix) = (docs.path().to_owned(), db.clone(), prefix.clone());
        tokio::task::spawn_blocking(move || ingest(&dir, &db, &prefix))
            .await
            .unwrap()
    };
    assert!(stdout.contains("2 unchanged"), "{stdout}");
    assert!(!stdout.contains("told listeners"), "{stdout}");
}
