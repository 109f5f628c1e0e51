//! The built `mcpship-smoke-hook` binary as Lambda runs it: a local fake of
//! the Lambda runtime API hands it one CodeDeploy event, the AWS SDK reads
//! region, credentials and the CodeDeploy endpoint from the environment (all
//! local), and the function's response comes back to the runtime API.

mod common;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use common::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

#[derive(Clone)]
struct RuntimeApi {
    handed_out: Arc<AtomicBool>,
    results: mpsc::UnboundedSender<(String, Value)>,
}

/// Serves one event on `next`, then holds further `next` calls open, as the
/// real runtime API does between invocations.
async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    if api.handed_out.swap(true, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let deadline_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", REQUEST_ID.parse().unwrap());
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline_ms.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:mcpship-smoke-hook"
            .parse()
            .unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    let event = json!({
        "DeploymentId": DEPLOYMENT,
        "LifecycleEventHookExecutionId": EXECUTION,
    });
    (headers, event.to_string())
}

async fn outcome(
    State(api): State<RuntimeApi>,
    Path((id, kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let _ = api.results.send((format!("{id}/{kind}"), body));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let body = Value::String(String::from_utf8_lossy(&body).into_owned());
    let _ = api.results.send(("init/error".into(), body));
    StatusCode::ACCEPTED
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_handles_a_lambda_invocation() {
    let server = start_mcpship().await;
    let codedeploy = fake_codedeploy(false).await;
    let (results, mut received) = mpsc::unbounded_channel();
    let runtime = serve(
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(outcome))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(RuntimeApi {
                handed_out: Arc::new(AtomicBool::new(false)),
                results,
            }),
    )
    .await;

    let home = std::env::temp_dir().join(format!("mcpship-smoke-hook-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpship-smoke-hook"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "mcpship-smoke-hook")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "local-test-secret")
        .env("AWS_SESSION_TOKEN", "local-test-token")
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", &codedeploy.url)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MCPSHIP_SMOKE_URL", &server.url)
        .env("MCPSHIP_SMOKE_ATTEMPTS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let _child = Killed(command.spawn().expect("spawn the hook binary"));

    let (path, body) = tokio::time::timeout(Duration::from_secs(60), received.recv())
        .await
        .expect("no response from the function within 60 s")
        .expect("runtime API channel closed");
    assert_eq!(path, format!("{REQUEST_ID}/response"), "{body}");
    assert_eq!(body["status"], "Succeeded", "{body}");
    assert_reported(&codedeploy, "Succeeded");
    // The session token from the environment is sent along.
    let requests = codedeploy.requests();
    assert_eq!(
        requests[0].headers.get("x-amz-security-token").unwrap(),
        "local-test-token"
    );
}
