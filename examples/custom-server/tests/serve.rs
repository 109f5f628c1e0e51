//! The example really runs on the runtime: health, its own tool over MCP,
//! and tool events in the log.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

#[tokio::test]
async fn hosts_a_custom_tool_with_the_runtime_features() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-server"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("example exited").unwrap();
        if line.contains("\"listening\"") {
            let v: Value = serde_json::from_str(&line).unwrap();
            break v["addr"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), r#"{"status":"healthy"}"#);

    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "convert_temperature", "arguments": {"celsius": 100.0},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let response: Value = client
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "convert_temperature")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        response["result"]["structuredContent"]["fahrenheit"], 212.0,
        "{response}"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut saw_event = false;
    while std::time::Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("tool.succeeded") && line.contains("convert_temperature") {
            saw_event = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(saw_event, "no tool.succeeded event for the custom tool");
}
