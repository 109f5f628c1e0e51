//! `mcpship healthcheck`: a container HEALTHCHECK with no curl or shell in the
//! image. Exit status 0 when `/health` answers healthy, 1 otherwise.

use std::time::Duration;

/// Asks `url` (e.g. `http://127.0.0.1:8080/health`) whether the server is
/// healthy, within `timeout`. `Err` says why not.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{url}: reading the body: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}: {body}"));
    }
    let healthy = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("status")
                .and_then(|s| s.as_str())
                .map(|s| s == "healthy")
        })
        .unwrap_or(false);
    if healthy {
        Ok(())
    } else {
        Err(format!("{url}: unexpected body {body}"))
    }
}
