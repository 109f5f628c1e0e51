//! SEP-2663 (tasks extension) fixture tools.
//!
//! A task-supporting tool runs as a task when the request declared the
//! `io.modelcontextprotocol/tasks` client capability and synchronously
//! otherwise. A task-*required* tool cannot answer without a task, so it
//! refuses undeclared clients with `-32021` before doing any work.
//! Tasks live in the process-wide [`TaskManager`](rmcp::task_manager::TaskManager)
//! so later `tasks/get`, `tasks/update` and `tasks/cancel` requests (served by
//! other handler instances) find them.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
        CreateTaskResult, InputRequests, InputRequiredResult,
    },
    service::RequestContext,
    task_manager::{TaskContext, TaskExit, TaskOptions},
};
use serde_json::{Value, json};

use crate::{ConformanceServer, catalog::TASK_TOOLS, client_capabilities, mrtr};

/// Tools that can only be served as a task.
const TASK_REQUIRED: &[&str] = &[
    "failing_job",
    "confirm_delete",
    "multi_input",
    "test_tool_with_task",
];

pub(crate) fn is_task_tool(name: &str) -> bool {
    TASK_TOOLS.contains(&name)
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// An accepted elicitation answer's `content.field`.
fn answered<'a>(answer: &'a Value, field: &str) -> Option<&'a Value> {
    answer.get("content")?.get(field)
}

async fn slow_compute(seconds: f64, label: &str) -> CallToolResult {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    text(format!("slow_compute({label}) finished after {seconds}s"))
}

fn failing_job() -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        "failing_job: intentional tool execution error",
    )])
}

fn protocol_error() -> ErrorData {
    ErrorData::internal_error(
        "protocol_error_job: intentional protocol-level failure",
        None,
    )
}

async fn confirm_delete(ctx: TaskContext, filename: String) -> Result<CallToolResult, TaskExit> {
    let answer = ctx
        .request_input(
            "confirm",
            mrtr::elicitation(
                &format!("Delete {filename}?"),
                json!({ "confirm": { "type": "boolean" } }),
                &["confirm"],
            )?,
        )
        .await?;
    let confirmed = answered(&answer, "confirm")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(text(format!(
        "confirm_delete({filename}): confirmed = {confirmed}"
    )))
}

async fn multi_input(ctx: TaskContext) -> Result<CallToolResult, TaskExit> {
    let ask = |message: &str| {
        mrtr::elicitation(
            message,
            json!({ "value": { "type": "string" } }),
            &["value"],
        )
    };
    // Both requests are outstanding at once, so the task reports two keys.
    let (a, b) = tokio::join!(
        ctx.request_input("input-a", ask("Provide value A")?),
        ctx.request_input("input-b", ask("Provide value B")?),
    );
    let show = |answer: &Value| answer.get("content").cloned().unwrap_or(Value::Null);
    Ok(text(format!(
        "multi_input: a = {}, b = {}",
        show(&a?),
        show(&b?)
    )))
}

impl ConformanceServer {
    pub(crate) async fn call_task_tool(
        &self,
        request: CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let as_task = client_capabilities(cx).supports_tasks();
        if TASK_REQUIRED.contains(&name) && !as_task {
            return Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            ));
        }
        let arguments = request.arguments.clone().unwrap_or_default();
        let tasks = &self.shared.tasks;
        let spawned = |task| Ok(CreateTaskResult::new(task).into());
        match name {
            "greet" => {
                let who = arguments
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("friend");
                Ok(text(format!("Hello, {who}!")).into())
            }
            "slow_compute" => {
                let seconds = arguments
                    .get("seconds")
                    .and_then(Value::as_f64)
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                    .unwrap_or(1.0)
                    .min(300.0);
                let label = arguments
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or("compute")
                    .to_owned();
                if !as_task {
                    return Ok(slow_compute(seconds, &label).await.into());
                }
                spawned(tasks.spawn(TaskOptions::default(), move |ctx| {
                    Box::pin(async move {
                        // Cancellation is cooperative: honour it while sleeping.
                        tokio::select! {
                            () = ctx.cancelled() => Err(TaskExit::Cancelled),
                            result = slow_compute(seconds, &label) => Ok(result),
                        }
                    })
                }))
            }
            "failing_job" => spawned(tasks.spawn(TaskOptions::default(), |_ctx| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok(failing_job())
                })
            })),
            "protocol_error_job" => {
                if !as_task {
                    return Err(protocol_error());
                }
                spawned(tasks.spawn(TaskOptions::default(), |_ctx| {
                    Box::pin(async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err(TaskExit::Error(protocol_error()))
                    })
                }))
            }
            "confirm_delete" => {
                let filename = arguments
                    .get("filename")
                    .and_then(Value::as_str)
                    .unwrap_or("file.txt")
                    .to_owned();
                spawned(tasks.spawn(TaskOptions::default(), move |ctx| {
                    Box::pin(confirm_delete(ctx, filename))
                }))
            }
            "multi_input" => {
                spawned(tasks.spawn(TaskOptions::default(), |ctx| Box::pin(multi_input(ctx))))
            }
            "test_tool_with_task" => {
                // MRTR round one gathers the name; round two becomes a task.
                let Some(name) =
                    mrtr::elicited_str(request.input_responses.as_ref(), "user_name", "name")
                else {
                    let mut requests = InputRequests::new();
                    requests.insert(
                        "user_name".into(),
                        mrtr::elicitation(
                            "What is your name?",
                            json!({ "name": { "type": "string" } }),
                            &["name"],
                        )?,
                    );
                    return Ok(InputRequiredResult::from_input_requests(requests).into());
                };
                let name = name.to_owned();
                spawned(tasks.spawn(TaskOptions::default(), move |_ctx| {
                    Box::pin(async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(text(format!("Hello, {name}! (from a task)")))
                    })
                }))
            }
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                Some(json!({ "name": other })),
            )),
        }
    }
}
