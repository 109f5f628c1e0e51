//! The Lambda function: `lambda_runtime` calls [`Hook::handle`] with each
//! CodeDeploy lifecycle event. Built as `bootstrap` for the `provided.al2023`
//! runtime (see this crate's README).

use std::{sync::Arc, time::SystemTime};

use lambda_runtime::{LambdaEvent, service_fn};
use mcpship_smoke_hook::{Hook, HookConfig, HookEvent, REPORT_RESERVE, budget_until};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    mcpship::logging::init(&level, mcpship::LogFormat::Json);

    // An invalid configuration is reported to CodeDeploy as Failed with the
    // reason, for every event: failing here would leave the deployment
    // waiting for a verdict until CodeDeploy's one-hour hook timeout.
    let config = HookConfig::from_env();
    if let Err(e) = &config {
        tracing::error!(error = %e, "invalid configuration; every deployment will be failed");
    }
    let aws = mcpship_smoke_hook::aws_config_loader().load().await;
    let hook = Arc::new(Hook::new(config, aws_sdk_codedeploy::Client::new(&aws)));

    lambda_runtime::run(service_fn(move |event: LambdaEvent<HookEvent>| {
        let hook = hook.clone();
        async move {
            let budget = budget_until(event.context.deadline, SystemTime::now(), REPORT_RESERVE);
            let outcome = hook.handle(&event.payload, budget).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "status": outcome.status.as_str(),
                "reason": outcome.reason,
            }))
        }
    }))
    .await
}
