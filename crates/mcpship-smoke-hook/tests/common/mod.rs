//! Shared by the tests: a real mcpship server in process, broken stand-ins,
//! and a local fake of the CodeDeploy API that records what it is sent.
#![allow(dead_code, unreachable_pub)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{any, get},
};
use mcpship::{Lifecycle, Phase, ServeConfig, Server};
use mcpship_docs::{store::CachedStore, tools::DocsServer};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot};

pub const DEPLOYMENT: &str = "d-TEST12345";
pub const EXECUTION: &str = "eyJlbmNyeXB0ZWREYXRhIjoi-test-execution";
pub const ACCESS_KEY: &str = "AKIDLOCALTEST";

/// A real mcpship document server on 127.0.0.1, in process.
pub struct Mcpship {
    pub url: String,
    _stop: oneshot::Sender<()>,
}

pub async fn start_mcpship() -> Mcpship {
    let backend = mcpship_docs::store::open("sqlite::memory:").await.unwrap();
    let seeded = mcpship_docs::corpus::seed(backend.clone()).await;
    assert!(seeded.failed.is_empty(), "{:?}", seeded.failed);
    let cached = Arc::new(CachedStore::new(backend, 1_000, Duration::from_secs(5)));
    let handler = DocsServer::new(cached);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let lifecycle = Lifecycle::new();
    let server = Server::new(ServeConfig::default(), move || handler.clone())
        .with_lifecycle(lifecycle.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    lifecycle.reached(Phase::Ready).await;
    Mcpship { url, _stop: stop }
}

pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A server that is healthy but answers MCP wrongly, or not at all.
pub async fn start_broken_mcp(hang: bool) -> String {
    let router = Router::new()
        .route("/health", get(|| async { r#"{"status":"healthy"}"# }))
        .route(
            "/mcp",
            any(move || async move {
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                )
            }),
        );
    format!("http://{}/mcp", serve(router).await)
}

/// A loopback URL where nothing listens.
pub async fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/mcp")
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct Fake {
    requests: Arc<Mutex<Vec<Recorded>>>,
    reject: bool,
}

/// A local stand-in for the CodeDeploy API.
pub struct FakeCodeDeploy {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeCodeDeploy {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

pub async fn fake_codedeploy(reject: bool) -> FakeCodeDeploy {
    async fn record(State(fake): State<Fake>, request: Request) -> impl IntoResponse {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        fake.requests.lock().unwrap().push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
        });
        let json_type = [(header::CONTENT_TYPE, "application/x-amz-json-1.1")];
        if fake.reject {
            (
                StatusCode::BAD_REQUEST,
                json_type,
                json!({
                    "__type": "LifecycleEventAlreadyCompletedException",
                    "message": "The lifecycle event has already completed."
                })
                .to_string(),
            )
        } else {
            (
                StatusCode::OK,
                json_type,
                json!({ "lifecycleEventHookExecutionId": EXECUTION }).to_string(),
            )
        }
    }
    let requests = Arc::new(Mutex::new(Vec::new()));
    let router = Router::new().fallback(record).with_state(Fake {
        requests: requests.clone(),
        reject,
    });
    FakeCodeDeploy {
        url: format!("http://{}", serve(router).await),
        requests,
    }
}

/// The real SDK client, as the Lambda builds it, pointed at the fake with
/// static credentials.
pub async fn codedeploy_client(endpoint: &str) -> aws_sdk_codedeploy::Client {
    let config = mcpship_smoke_hook::aws_config_loader()
        .region(aws_sdk_codedeploy::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_codedeploy::config::Credentials::new(
            ACCESS_KEY,
            "local-test-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_codedeploy::Client::new(&config)
}

/// Asserts that the one request sent is a signed
/// PutLifecycleEventHookExecutionStatus with `status`.
pub fn assert_reported(fake: &FakeCodeDeploy, status: &str) {
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/");
    let h = |name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:#?}", r.headers))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        h("x-amz-target"),
        "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"
    );
    assert_eq!(h("content-type"), "application/x-amz-json-1.1");

    // SigV4: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/codedeploy/aws4_request,
    // SignedHeaders=…, Signature=64 hex digits.
    let auth = h("authorization");
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .unwrap_or_else(|| panic!("not SigV4: {auth}"));
    let parts: Vec<&str> = rest.split(", ").collect();
    assert_eq!(parts.len(), 3, "{auth}");
    let scope: Vec<&str> = parts[0].split('/').collect();
    assert_eq!(scope.len(), 5, "{auth}");
    assert_eq!(scope[0], ACCESS_KEY);
    assert!(
        scope[1].len() == 8 && scope[1].bytes().all(|b| b.is_ascii_digit()),
        "{auth}"
    );
    assert_eq!(&scope[2..], ["eu-west-1", "codedeploy", "aws4_request"]);
    let signed = parts[1]
        .strip_prefix("SignedHeaders=")
        .expect("SignedHeaders");
    for needed in ["content-type", "host", "x-amz-date", "x-amz-target"] {
        assert!(
            signed.split(';').any(|s| s == needed),
            "{needed} unsigned: {auth}"
        );
    }
    let signature = parts[2].strip_prefix("Signature=").expect("Signature");
    assert!(
        signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{auth}"
    );
    assert!(h("x-amz-date").starts_with(scope[1]));

    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "deploymentId": DEPLOYMENT,
            "lifecycleEventHookExecutionId": EXECUTION,
            "status": status,
        })
    );
}
