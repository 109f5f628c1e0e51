//! The HTTP surface of `mcpship serve`: health, Host/Origin, limits, plain
//! JSON clients, and the document tools over the wire.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn health_and_ready_answer_any_host() {
    let server = serve(&[], &[]);
    let client = reqwest::Client::new();
    for host in ["127.0.0.1", "10.0.3.17:8080"] {
        let r = client
            .get(server.url("/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), r#"{"status":"healthy"}"#);
        let r = client
            .get(server.url("/ready"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["status"],
            "ready"
        );
    }
}

#[tokio::test]
async fn mcp_checks_host_and_origin() {
    let server = serve(&[], &[]);
    let client = reqwest::Client::new();
    let post = |host: Option<&str>, origin: Option<&str>| {
        let mut r = client
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
        if let Some(h) = host {
            r = r.header("host", h);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(
        post(Some("evil.example"), None).await.unwrap().status(),
        403
    );
    assert_eq!(
        post(None, Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(None, Some("http://localhost:6274"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post(None, None).await.unwrap().status(), 200);

    // A configured public host list works behind a proxy.
    let server = serve(
        &[],
        &[("MCPSHIP_ALLOWED_HOSTS", "mcp.example.com,127.0.0.1")],
    );
    let r = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("host", "mcp.example.com")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn plain_json_client_gets_json_not_406() {
    let server = serve(&[], &[]);
    let r = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(content_type(&r).starts_with("application/json"));
    assert!(r.headers().contains_key("mcp-session-id"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(body["result"]["serverInfo"]["name"], "mcpship");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = serve(&[], &[("MCPSHIP_MAX_BODY_BYTES", "2048")]);
    let big = "x".repeat(4096);
    let (status, _) = modern(
        &server,
        "tools/call",
        Some("search_documents"),
        json!({"name": "search_documents", "arguments": {"query": big}}),
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn search_and_get_over_the_wire() {
    let server = serve(&[], &[]);
    let result = call_tool(
        &server,
        "search_documents",
        json!({"query": "idle timeout", "limit": 3}),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let hits = result["structuredContent"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.len() <= 3);
    assert!(
        hits[0]["snippet"].as_str().unwrap().contains("**"),
        "{}",
        hits[0]
    );
    assert!(result["structuredContent"]["total"].as_u64().unwrap() >= hits.len() as u64);
    // The text block carries the same JSON.
    let from_text: serde_json::Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(from_text, result["structuredContent"]);

    let id = hits[0]["id"].as_str().unwrap();
    let doc = call_tool(&server, "get_document", json!({"id": id})).await;
    assert_eq!(doc["isError"], false);
    assert_eq!(doc["structuredContent"]["id"], id);
    assert!(doc["structuredContent"]["body"].as_str().unwrap().len() > 100);

    // The same document as a resource.
    let (status, body) = modern(
        &server,
        "resources/read",
        Some(&format!("docs://{id}")),
        json!({"uri": format!("docs://{id}")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["contents"][0]["text"],
        doc["structuredContent"]["body"]
    );
    let (_, templates) = modern(&server, "resources/templates/list", None, json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "docs://{id}"
    );
}

#[tokio::test]
async fn tools_are_read_only_with_output_schemas() {
    let server = serve(&[], &[]);
    let (status, body) = modern(&server, "tools/list", None, json!({})).await;
    assert_eq!(status, 200);
    let tools = body["result"]["tools"].as_array().unwrap();
    for name in ["search_documents", "get_document"] {
        let tool = tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert!(tool["outputSchema"].is_object(), "{tool}");
    }
    // Conformance fixtures never leak into the product's tool list.
    assert!(
        !tools
            .iter()
            .any(|t| t["name"].as_str().unwrap().starts_with("test_"))
    );
}

#[tokio::test]
async fn bad_input_is_a_tool_error_not_a_protocol_error() {
    let server = serve(&[], &[]);
    for (tool, args, needle) in [
        ("search_documents", json!({"query": "   "}), "empty"),
        (
            "search_documents",
            json!({"query": "rust", "limit": 0}),
            "limit",
        ),
        (
            "search_documents",
            json!({"query": "rust", "limit": 51}),
            "limit",
        ),
        (
            "search_documents",
            json!({"query": "rust", "offset": 20000}),
            "offset",
        ),
        (
            "search_documents",
            json!({"query": "\"unclosed phrase"}),
            "never closed",
        ),
        ("search_documents", json!({"query": "OR"}), "OR"),
        (
            "get_document",
            json!({"id": "no-such-document"}),
            "No document",
        ),
    ] {
        let result = call_tool(&server, tool, args.clone()).await;
        assert_eq!(result["isError"], true, "{tool} {args}: {result}");
        assert!(
            text(&result).contains(needle),
            "{tool} {args}: {}",
            text(&result)
        );
    }
}

#[tokio::test]
async fn tool_calls_are_logged_without_arguments() {
    let server = serve(&[], &[]);
    call_tool(
        &server,
        "search_documents",
        json!({"query": "secretword123"}),
    )
    .await;
    call_tool(&server, "get_document", json!({"id": "missing"})).await;
    let ok = server
        .wait_log("tool.succeeded", std::time::Duration::from_secs(5))
        .expect("tool.succeeded");
    let v: serde_json::Value = serde_json::from_str(&ok).unwrap();
    assert_eq!(v["tool"], "search_documents");
    assert!(v["duration_ms"].is_number());
    assert!(v["request_id"].is_string());
    assert!(v["timestamp"].as_str().unwrap().contains('T'));
    assert_eq!(v["level"], "INFO");
    let failed = server
        .wait_log("tool.failed", std::time::Duration::from_secs(5))
        .expect("tool.failed");
    let v: serde_json::Value = serde_json::from_str(&failed).unwrap();
    assert_eq!(v["tool"], "get_document");
    assert_eq!(v["error_class"], "tool_error");
    for line in server.drain_logs() {
        assert!(
            !line.contains("secretword123"),
            "arguments leaked into logs: {line}"
        );
    }
}
