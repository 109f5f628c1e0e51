//! A CodeDeploy lifecycle hook for ECS blue/green deployments of mcpship, run
//! as an AWS Lambda function (`BeforeAllowTraffic`, `AfterAllowTraffic`).
//!
//! CodeDeploy invokes it with `{"DeploymentId": …, "LifecycleEventHookExecutionId": …}`.
//! It runs the smoke test of `mcpship smoke` ([`mcpship::smoke`]) against
//! `MCPSHIP_SMOKE_URL` (the load balancer's test listener, which already
//! routes to the replacement tasks), then tells CodeDeploy `Succeeded` or
//! `Failed` with `PutLifecycleEventHookExecutionStatus`. A failed hook makes
//! CodeDeploy stop the deployment and roll back.
//!
//! CodeDeploy waits up to an hour for a hook that never reports, so the smoke
//! test is bounded by the Lambda's own deadline: [`Hook::handle`] gets a time
//! budget, and a configuration error is reported as `Failed` rather than
//! left unanswered.
//!
//! Everything here runs without the Lambda runtime; `main.rs` only wires
//! [`Hook::handle`] to `lambda_runtime`.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use mcpship::smoke::{Report, SmokeOptions};

/// Environment variables read by [`HookConfig::from_env`].
pub mod env {
    /// The MCP endpoint to test, e.g. `http://test-listener.example:8443/mcp` (required).
    pub const URL: &str = "MCPSHIP_SMOKE_URL";
    /// Tool to call instead of the default (`search_documents` if offered).
    pub const TOOL: &str = "MCPSHIP_SMOKE_TOOL";
    /// JSON arguments for the tool.
    pub const ARGUMENTS: &str = "MCPSHIP_SMOKE_ARGUMENTS";
    /// Time limit of each request (default 10s).
    pub const TIMEOUT: &str = "MCPSHIP_SMOKE_TIMEOUT";
    /// Smoke runs before giving up (default 3).
    pub const ATTEMPTS: &str = "MCPSHIP_SMOKE_ATTEMPTS";
    /// Pause between runs (default 5s).
    pub const RETRY_DELAY: &str = "MCPSHIP_SMOKE_RETRY_DELAY";
}

/// Time kept back from the Lambda deadline to report to CodeDeploy: more than
/// the SDK call's own limit ([`aws_config_loader`]), retries included.
pub const REPORT_RESERVE: Duration = Duration::from_secs(10);

/// The event CodeDeploy sends to a lifecycle hook function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HookEvent {
    pub deployment_id: String,
    pub lifecycle_event_hook_execution_id: String,
}

/// What to test and how patiently.
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub url: String,
    pub tool: Option<String>,
    pub arguments: Option<serde_json::Value>,
    /// Time limit of each request.
    pub timeout: Duration,
    /// Smoke runs before reporting `Failed` (at least 1). A deployment is not
    /// failed by one lost packet; a broken one fails every run.
    pub attempts: u32,
    pub retry_delay: Duration,
}

fn parse_duration(variable: &str, value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value).map_err(|e| {
        format!(
            "{variable}={value:?} is not valid: {e}; write seconds (\"10\") or a duration (\"10s\")"
        )
    })
}

impl HookConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (a variable name to its value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let url = get(env::URL).ok_or_else(|| {
            format!(
                "{} is not set: give the MCP endpoint of the test listener, e.g. http://test.example.com:8443/mcp",
                env::URL
            )
        })?;
        let url = url.trim().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "{}={url:?} is not valid: write an http:// or https:// URL",
                env::URL
            ));
        }
        let arguments = get(env::ARGUMENTS)
            .map(|v| {
                serde_json::from_str(&v)
                    .map_err(|e| format!("{}={v:?} is not valid: not JSON: {e}", env::ARGUMENTS))
            })
            .transpose()?;
        let timeout = get(env::TIMEOUT)
            .map(|v| parse_duration(env::TIMEOUT, &v))
            .transpose()?
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(format!(
                "{}=0 is not valid: must be more than zero",
                env::TIMEOUT
            ));
        }
        let attempts = match get(env::ATTEMPTS) {
            None => 3,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(format!(
                        "{}={v:?} is not valid: write a whole number of at least 1",
                        env::ATTEMPTS
                    ));
                }
            },
        };
        let retry_delay = get(env::RETRY_DELAY)
            .map(|v| parse_duration(env::RETRY_DELAY, &v))
            .transpose()?
            .unwrap_or(Duration::from_secs(5));
        Ok(Self {
            url,
            tool: get(env::TOOL).map(|t| t.trim().to_owned()),
            arguments,
            timeout,
            attempts,
            retry_delay,
        })
    }

    fn smoke_options(&self) -> SmokeOptions {
        SmokeOptions {
            endpoint: self.url.clone(),
            tool: self.tool.clone(),
            arguments: self.arguments.clone(),
            timeout: self.timeout,
        }
    }
}

/// The verdict reported to CodeDeploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Status {
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
        }
    }

    fn to_sdk(self) -> LifecycleEventStatus {
        match self {
            Status::Succeeded => LifecycleEventStatus::Succeeded,
            Status::Failed => LifecycleEventStatus::Failed,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one invocation found and reported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub status: Status,
    /// Why, in one line.
    pub reason: String,
    /// One report per smoke run, in order.
    pub reports: Vec<Report>,
}

/// Reporting to CodeDeploy failed: the invocation must fail too, so that the
/// Lambda service retries it rather than leave the deployment waiting.
#[derive(Debug, thiserror::Error)]
#[error("reporting {status} to CodeDeploy (deployment {deployment_id}) failed: {message}")]
pub struct ReportError {
    pub status: Status,
    pub deployment_id: String,
    pub message: String,
}

/// The HTTPS client of the AWS SDK: rustls with ring and the system's root
/// certificates (Lambda's `provided.al2023` has them).
pub fn https_client() -> aws_sdk_codedeploy::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The AWS configuration loader with this crate's HTTP client and timeouts;
/// region and credentials come from the Lambda environment unless set on it.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(4))
                .operation_timeout(Duration::from_secs(9))
                .build(),
        )
}

/// How long an invocation may spend on smoke runs: the time left until the
/// Lambda `deadline` (milliseconds since the Unix epoch), less `reserve`.
pub fn budget_until(deadline_epoch_ms: u64, now: SystemTime, reserve: Duration) -> Duration {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let left = u128::from(deadline_epoch_ms).saturating_sub(now_ms);
    Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)).saturating_sub(reserve)
}

/// Runs the smoke test up to `config.attempts` times within `budget` and
/// returns the verdict; stops at the first passing run.
pub async fn smoke(config: &HookConfig, budget: Duration) -> Outcome {
    let deadline = Instant::now() + budget;
    let mut reports = Vec::new();
    for attempt in 1..=config.attempts.max(1) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let report = mcpship::smoke::run_within(config.smoke_options(), left).await;
        let passed = report.passed();
        tracing::info!(
            attempt,
            attempts = config.attempts,
            passed,
            endpoint = %report.endpoint,
            report = %serde_json::to_string(&report).unwrap_or_default(),
            "smoke test run"
        );
        reports.push(report);
        if passed {
            return Outcome {
                status: Status::Succeeded,
                reason: format!("smoke test passed on attempt {attempt}"),
                reports,
            };
        }
        if attempt < config.attempts {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(config.retry_delay.min(left)).await;
        }
    }
    let reason = match reports.last() {
        None => "no time left before the Lambda deadline to run the smoke test".to_owned(),
        Some(last) => {
            let failed: Vec<String> = last
                .steps
                .iter()
                .filter(|s| !s.ok)
                .map(|s| format!("{}: {}", s.name, s.detail))
                .collect();
            format!(
                "smoke test failed {} time(s); last run: {}",
                reports.len(),
                failed.join("; ")
            )
        }
    };
    Outcome {
        status: Status::Failed,
        reason,
        reports,
    }
}

/// Tells CodeDeploy the hook's verdict.
pub async fn put_status(
    codedeploy: &aws_sdk_codedeploy::Client,
    event: &HookEvent,
    status: Status,
) -> Result<(), ReportError> {
    codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&event.deployment_id)
        .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
        .status(status.to_sdk())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ReportError {
            status,
            deployment_id: event.deployment_id.clone(),
            message: aws_sdk_codedeploy::error::DisplayErrorContext(e).to_string(),
        })
}

/// The hook: its configuration (or why it is invalid) and a CodeDeploy client.
pub struct Hook {
    config: Result<HookConfig, String>,
    codedeploy: aws_sdk_codedeploy::Client,
}

impl Hook {
    pub fn new(config: Result<HookConfig, String>, codedeploy: aws_sdk_codedeploy::Client) -> Self {
        Self { config, codedeploy }
    }

    /// Handles one lifecycle event: smoke test within `budget`, then report.
    /// `Ok` once CodeDeploy has the verdict, whichever it is; `Err` only when
    /// reporting failed.
    pub async fn handle(
        &self,
        event: &HookEvent,
        budget: Duration,
    ) -> Result<Outcome, ReportError> {
        let outcome = match &self.config {
            Ok(config) => smoke(config, budget).await,
            Err(e) => Outcome {
                status: Status::Failed,
                reason: format!("the hook's configuration is invalid: {e}"),
                reports: Vec::new(),
            },
        };
        tracing::info!(
            deployment_id = %event.deployment_id,
            hook_execution_id = %event.lifecycle_event_hook_execution_id,
            status = outcome.status.as_str(),
            reason = %outcome.reason,
            "reporting to CodeDeploy"
        );
        put_status(&self.codedeploy, event, outcome.status).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn event_uses_codedeploy_field_names() {
        let event: HookEvent = serde_json::from_str(
            r#"{"DeploymentId":"d-ABC123","LifecycleEventHookExecutionId":"eyJ-hook"}"#,
        )
        .unwrap();
        assert_eq!(event.deployment_id, "d-ABC123");
        assert_eq!(event.lifecycle_event_hook_execution_id, "eyJ-hook");
        assert!(serde_json::from_str::<HookEvent>(r#"{"DeploymentId":"d-1"}"#).is_err());
    }

    #[test]
    fn configuration_defaults_and_overrides() {
        let c = HookConfig::from_lookup(lookup(&[(env::URL, " http://alb:8443/mcp ")])).unwrap();
        assert_eq!(c.url, "http://alb:8443/mcp");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.attempts, 3);
        assert_eq!(c.retry_delay, Duration::from_secs(5));
        assert!(c.tool.is_none() && c.arguments.is_none());

        let c = HookConfig::from_lookup(lookup(&[
            (env::URL, "https://mcp.example.com/mcp"),
            (env::TOOL, "get_document"),
            (env::ARGUMENTS, r#"{"id":"x"}"#),
            (env::TIMEOUT, "2500ms"),
            (env::ATTEMPTS, "1"),
            (env::RETRY_DELAY, "0"),
        ]))
        .unwrap();
        assert_eq!(c.tool.as_deref(), Some("get_document"));
        assert_eq!(c.arguments, Some(serde_json::json!({"id": "x"})));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.attempts, 1);
        assert_eq!(c.retry_delay, Duration::ZERO);
    }

    #[test]
    fn configuration_errors_name_the_variable() {
        let err = |pairs: &[(&str, &str)]| HookConfig::from_lookup(lookup(pairs)).unwrap_err();
        assert!(err(&[]).starts_with("MCPSHIP_SMOKE_URL is not set"));
        assert!(err(&[(env::URL, "alb:8443/mcp")]).starts_with("MCPSHIP_SMOKE_URL="));
        let url = (env::URL, "http://alb/mcp");
        assert!(err(&[url, (env::ARGUMENTS, "{")]).starts_with("MCPSHIP_SMOKE_ARGUMENTS="));
        assert!(err(&[url, (env::TIMEOUT, "soon")]).starts_with("MCPSHIP_SMOKE_TIMEOUT="));
        assert!(err(&[url, (env::TIMEOUT, "0")]).starts_with("MCPSHIP_SMOKE_TIMEOUT="));
        assert!(err(&[url, (env::ATTEMPTS, "0")]).starts_with("MCPSHIP_SMOKE_ATTEMPTS="));
    }

    #[test]
    fn budget_is_the_time_to_the_deadline_less_the_reserve() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let deadline_ms = 1_700_000_000_000 + 60_000;
        assert_eq!(
            budget_until(deadline_ms, now, REPORT_RESERVE),
            Duration::from_secs(50)
        );
        // Past or nearly past deadlines leave nothing.
        assert_eq!(
            budget_until(deadline_ms, now + Duration::from_secs(55), REPORT_RESERVE),
            Duration::ZERO
        );
        assert_eq!(
            budget_until(deadline_ms, now + Duration::from_secs(600), REPORT_RESERVE),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn no_budget_means_failed_without_a_run() {
        let config =
            HookConfig::from_lookup(lookup(&[(env::URL, "http://127.0.0.1:9/mcp")])).unwrap();
        let outcome = smoke(&config, Duration::ZERO).await;
        assert_eq!(outcome.status, Status::Failed);
        assert!(outcome.reports.is_empty());
        assert!(
            outcome.reason.contains("no time left"),
            "{}",
            outcome.reason
        );
    }
}
