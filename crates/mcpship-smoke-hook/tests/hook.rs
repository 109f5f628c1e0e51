//! The hook end to end without AWS: the smoke test runs against a real mcpship
//! server hosted in this process (or against broken stand-ins), and the
//! verdict goes through the real AWS SDK to a local fake of the CodeDeploy
//! API, which records exactly what was sent.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mcpship_smoke_hook::{Hook, HookConfig, HookEvent, Outcome, Status};
use serde_json::json;

fn config(url: &str, attempts: u32) -> HookConfig {
    HookConfig {
        url: url.to_owned(),
        tool: None,
        arguments: None,
        timeout: Duration::from_secs(10),
        attempts,
        retry_delay: Duration::ZERO,
    }
}

fn event() -> HookEvent {
    serde_json::from_value(json!({
        "DeploymentId": DEPLOYMENT,
        "LifecycleEventHookExecutionId": EXECUTION,
    }))
    .unwrap()
}

async fn run_hook(config: Result<HookConfig, String>, fake: &FakeCodeDeploy) -> Outcome {
    let hook = Hook::new(config, codedeploy_client(&fake.url).await);
    hook.handle(&event(), Duration::from_secs(60))
        .await
        .expect("the verdict reaches CodeDeploy")
}

#[tokio::test]
async fn a_healthy_server_is_reported_succeeded() {
    let server = start_mcpship().await;
    let fake = fake_codedeploy(false).await;
    let outcome = run_hook(Ok(config(&server.url, 1)), &fake).await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
    assert_eq!(outcome.reports.len(), 1);
    let report = &outcome.reports[0];
    assert!(report.passed(), "{report}");
    // The full `mcpship smoke` sequence ran, not just a health check.
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"modern tools/call search_documents")
            && names.contains(&"legacy tools/call search_documents")
            && names.contains(&"legacy session end"),
        "{names:?}"
    );
    assert_reported(&fake, "Succeeded");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_failed_after_every_attempt() {
    let fake = fake_codedeploy(false).await;
    let outcome = run_hook(Ok(config(&closed_url().await, 2)), &fake).await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.reports.len(), 2);
    assert!(outcome.reports.iter().all(|r| !r.passed()));
    assert!(outcome.reason.contains("health"), "{}", outcome.reason);
    assert_reported(&fake, "Failed");
}

#[tokio::test]
async fn wrong_answers_are_reported_failed() {
    let url = start_broken_mcp(false).await;
    let fake = fake_codedeploy(false).await;
    let outcome = run_hook(Ok(config(&url, 1)), &fake).await;
    assert_eq!(outcome.status, Status::Failed);
    let steps = &outcome.reports[0].steps;
    assert!(steps[0].name == "health" && steps[0].ok, "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s.name == "modern server/discover" && !s.ok),
        "{steps:?}"
    );
    assert_reported(&fake, "Failed");
}

#[tokio::test]
async fn a_hanging_server_is_failed_within_the_budget() {
    let url = start_broken_mcp(true).await;
    let fake = fake_codedeploy(false).await;
    let hook = Hook::new(Ok(config(&url, 3)), codedeploy_client(&fake.url).await);
    let started = Instant::now();
    // Each request may take 10 s, but the Lambda has 1.5 s left.
    let outcome = hook
        .handle(&event(), Duration::from_millis(1500))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.reports.len(), 1, "no time was left for a retry");
    let steps = &outcome.reports[0].steps;
    assert!(steps[0].name == "health" && steps[0].ok, "{steps:?}");
    let last = steps.last().unwrap();
    assert!(last.name == "time limit" && !last.ok, "{steps:?}");
    assert_reported(&fake, "Failed");
}

#[tokio::test]
async fn an_invalid_configuration_is_reported_failed() {
    let fake = fake_codedeploy(false).await;
    let config = HookConfig::from_lookup(|_| None);
    let outcome = run_hook(config, &fake).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.contains("MCPSHIP_SMOKE_URL is not set"),
        "{}",
        outcome.reason
    );
    assert!(outcome.reports.is_empty());
    assert_reported(&fake, "Failed");
}

#[tokio::test]
async fn a_codedeploy_error_fails_the_invocation() {
    let server = start_mcpship().await;
    let fake = fake_codedeploy(true).await;
    let hook = Hook::new(
        Ok(config(&server.url, 1)),
        codedeploy_client(&fake.url).await,
    );
    let error = hook
        .handle(&event(), Duration::from_secs(60))
        .await
        .expect_err("a rejected report must fail the invocation");
    assert_eq!(error.status, Status::Succeeded);
    assert_eq!(error.deployment_id, DEPLOYMENT);
    assert!(
        error
            .message
            .contains("LifecycleEventAlreadyCompletedException"),
        "{error}"
    );
    // A client error is not retried.
    assert_reported(&fake, "Succeeded");
}
