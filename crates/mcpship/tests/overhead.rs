//! What the telemetry layers add to one request, in nanoseconds, without a
//! network or a load generator: a trivial service behind the access-log
//! layer with telemetry off, with metrics (the default), and a disabled span.
//! Ignored by default; numbers only mean something in a release build:
//!
//! ```sh
//! cargo test --release -p mcpship --test overhead -- --ignored --nocapture
//! ```
//!
//! `bench/run telemetry` measures the whole server under load.

use std::{convert::Infallible, hint::black_box, time::Instant};

use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use mcpship::{LogFormat, ServeConfig, http::access_log::AccessLogLayer, telemetry::Telemetry};
use tower::{Layer, Service, ServiceExt};

const ROUNDS: u32 = 200_000;

async fn per_request(telemetry: Option<Telemetry>) -> f64 {
    let inner = tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
    });
    let started = Instant::now();
    match telemetry {
        Some(t) => {
            let mut service = AccessLogLayer::new(t).layer(inner);
            for _ in 0..ROUNDS {
                let response = service
                    .ready()
                    .await
                    .unwrap()
                    .call(Request::post("/mcp").body(()).unwrap())
                    .await
                    .unwrap();
                black_box(response.into_body().collect().await.unwrap());
            }
        }
        None => {
            let mut service = inner;
            for _ in 0..ROUNDS {
                let response = service
                    .ready()
                    .await
                    .unwrap()
                    .call(Request::post("/mcp").body(()).unwrap())
                    .await
                    .unwrap();
                black_box(response.into_body().collect().await.unwrap());
            }
        }
    }
    started.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement, not a check; run it in release"]
async fn telemetry_overhead_per_request() {
    // The production subscriber, access log filtered out (LOG_LEVEL=warn).
    mcpship::logging::init("warn", LogFormat::Json);
    let bare = per_request(None).await;
    let off = per_request(Some(Telemetry::disabled())).await;
    let metrics = per_request(Some(Telemetry::from_config(&ServeConfig::default()))).await;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        black_box(tracing::info_span!("db.query", db.system = "sqlite"));
    }
    let span = started.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    let started = Instant::now();
    for _ in 0..ROUNDS {
        black_box(tracing::enabled!(target: "mcpship::access", tracing::Level::INFO));
    }
    let check = started.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
    println!("no layer:                    {bare:8.1} ns/request");
    println!(
        "access-log layer, all off:   {off:8.1} ns/request (+{:.1})",
        off - bare
    );
    println!(
        "access-log layer, metrics:   {metrics:8.1} ns/request (+{:.1})",
        metrics - bare
    );
    println!("disabled span (no exporter): {span:8.1} ns");
    println!("access-log level check:      {check:8.1} ns");
}
