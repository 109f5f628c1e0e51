//! The operator commands of the real binary: config, ingest, smoke,
//! healthcheck, stdio and SIGTERM.

mod common;

use std::{process::Command, time::Duration};

use common::*;
use serde_json::json;

#[test]
fn bad_config_exits_64_naming_the_variable() {
    let out = run(
        &["serve"],
        &[
            ("MCPSHIP_KEEP_ALIVE_TIMEOUT", "5"),
            ("MCPSHIP_ALLOWED_ORIGINS", "example.com"),
        ],
    );
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCPSHIP_KEEP_ALIVE_TIMEOUT=\"5s\" is not valid"),
        "{err}"
    );
    assert!(
        err.contains("MCPSHIP_ALLOWED_ORIGINS=") && err.contains("https://example.com"),
        "{err}"
    );

    let out = run(&["serve"], &[("PORT", "eighty")]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORT"), "{err}");

    let out = run(&["serve"], &[("DATABASE_URL", "mysql://x")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

#[test]
fn config_prints_effective_settings_with_secrets_redacted() {
    let out = run(
        &["config"],
        &[
            ("DATABASE_URL", "postgres://app:hunter2@db.internal/docs"),
            ("PORT", "9000"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["database_url"], "postgres://app:***@db.internal/docs");
    assert_eq!(v["port"], 9000);
    assert_eq!(v["keep_alive_timeout"], "1h 1m");
}

#[test]
fn ingest_is_idempotent_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(docs.join("a.md"), "# Zebra crossings\nStripes everywhere.").unwrap();
    std::fs::write(docs.join("sub/b.txt"), "plain text about quokkas").unwrap();
    std::fs::write(
        docs.join("c.html"),
        "<h1>Lynx</h1><p>A wild cat</p><script>nope()</script>",
    )
    .unwrap();
    std::fs::write(
        docs.join("d.jsonl"),
        "{\"id\":\"x\",\"title\":\"Ocelot\",\"text\":\"spotted\"}\n",
    )
    .unwrap();
    std::fs::write(docs.join("ignored.png"), [0u8, 1, 2]).unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let path = docs.to_str().unwrap();

    let out = run(&["ingest", path], &[("DATABASE_URL", &db)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("ingested 4 files"), "{summary}");
    assert!(
        summary.contains("4 inserted, 0 updated, 0 unchanged, 0 failed, 1 skipped"),
        "{summary}"
    );

    let out = run(&["ingest", path], &[("DATABASE_URL", &db)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 inserted, 0 updated, 4 unchanged"));

    std::fs::write(docs.join("a.md"), "# Zebra crossings\nNow with lights.").unwrap();
    std::fs::write(docs.join("bad.jsonl"), "not json\n").unwrap();
    let out = run(&["ingest", path], &[("DATABASE_URL", &db)]);
    assert_eq!(out.status.code(), Some(1), "a failed file fails the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 inserted, 1 updated, 3 unchanged, 1 failed"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:1:"));
}

#[tokio::test]
async fn ingested_documents_are_searchable_without_the_sample_corpus() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quokka.md"),
        "# Quokkas\nThe quokka is a small marsupial.",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("q.db").display());
    let out = run(
        &["ingest", dir.path().to_str().unwrap()],
        &[("DATABASE_URL", &db)],
    );
    assert!(out.status.success());
    let server = serve(
        &[],
        &[("DATABASE_URL", &db), ("MCPSHIP_SEED_CORPUS", "false")],
    );
    let result = call_tool(&server, "search_documents", json!({"query": "marsupials"})).await;
    assert_eq!(result["structuredContent"]["total"], 1, "{result}");
    assert_eq!(result["structuredContent"]["hits"][0]["id"], "quokka");
    assert!(
        result["structuredContent"]["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("**marsupial**")
    );
}

#[tokio::test]
async fn smoke_and_healthcheck_pass_against_a_live_server() {
    let server = serve(&[], &[]);
    let out = run(&["smoke", &server.url("/mcp")], &[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    for step in [
        "health",
        "modern server/discover",
        "modern tools/call search_documents",
        "legacy initialize",
        "legacy tools/call",
    ] {
        assert!(
            report.contains(&format!("PASS {step}")),
            "{step} missing in\n{report}"
        );
    }
    let port = server.port.to_string();
    assert!(run(&["healthcheck"], &[("PORT", &port)]).status.success());
    drop(server);
    let out = run(&["healthcheck"], &[("PORT", &port)]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(
        &[
            "smoke",
            &format!("http://127.0.0.1:{port}/mcp"),
            "--timeout",
            "2s",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL health"));
}

#[tokio::test]
async fn sigterm_with_an_open_stream_exits_zero_in_time() {
    let mut server = serve(&[], &[("MCPSHIP_DRAIN_TIMEOUT", "5s")]);
    let client = reqwest::Client::new();
    let init = client
        .post(server.url("/mcp"))
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
    client
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    let stream = client
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let started = std::time::Instant::now();
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "did not exit within the drain deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(stream);
}

#[tokio::test]
async fn stdio_serves_the_same_tools_to_a_real_client() {
    use rmcp::{ServiceExt, model::CallToolRequestParams, transport::TokioChildProcess};
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["serve", "--stdio"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("LOG_FORMAT", "json");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "search_documents"));
    assert!(tools.iter().any(|t| t.name == "get_document"));
    let mut params = CallToolRequestParams::new("search_documents");
    params.arguments = json!({"query": "draining"}).as_object().cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    assert!(
        result.structured_content.unwrap()["total"]
            .as_u64()
            .unwrap()
            > 0
    );
    client.cancel().await.unwrap();
}
