//! The plain fixture tools: content types, errors, logging, progress,
//! elicitation and sampling, subscriptions and the stateless diagnostics.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        CreateMessageRequestParams, ElicitRequestParams, InputRequests, InputRequiredResult,
        JsonObject, LoggingLevel, ProgressNotificationParam, ResourceContents, SamplingMessage,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::{
    ConformanceServer,
    catalog::{CUSTOM_HEADER_TOOL, TEST_AUDIO_BASE64, TEST_IMAGE_BASE64},
    is_stateless,
    mrtr::{self, Needs},
};

/// Pause between the steps of the logging and progress tools, so clients see
/// the notifications arrive while the call is still running.
const STEP: Duration = Duration::from_millis(50);

fn text(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

fn string_argument<'a>(arguments: &'a JsonObject, name: &str) -> Result<&'a str, ErrorData> {
    arguments.get(name).and_then(Value::as_str).ok_or_else(|| {
        ErrorData::invalid_params(
            format!("`{name}` must be a string"),
            Some(json!({ "argument": name })),
        )
    })
}

/// The SEP-1034 form: every primitive type with a default value.
fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true }
        },
        "required": []
    })
}

/// The SEP-1330 form: all five enum schema variants.
fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" }
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" }
                    ]
                }
            }
        },
        "required": []
    })
}

/// The `test_elicitation` form.
fn response_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" }
        },
        "required": ["username", "email"]
    })
}

impl ConformanceServer {
    pub(crate) async fn call_basic_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.clone().unwrap_or_default();
        match request.name.as_ref() {
            "test_simple_text" => Ok(text("This is a simple text response for testing.")),
            "test_image_content" => Ok(CallToolResult::success(vec![ContentBlock::image(
                TEST_IMAGE_BASE64,
                "image/png",
            )])
            .into()),
            "test_audio_content" => Ok(CallToolResult::success(vec![ContentBlock::audio(
                TEST_AUDIO_BASE64,
                "audio/wav",
            )])
            .into()),
            "test_embedded_resource" => Ok(CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                ),
            )])
            .into()),
            "test_multiple_content_types" => Ok(CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({ "test": "data", "value": 123 }).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ])
            .into()),
            "test_tool_with_logging" => {
                for (step, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if step > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    self.log(&cx, LoggingLevel::Info, json!(message)).await;
                }
                Ok(text("Tool with logging executed successfully"))
            }
            "test_tool_with_progress" => {
                let token = cx.meta.get_progress_token();
                for (step, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if step > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    if let Some(token) = &token {
                        let _ = cx
                            .peer
                            .notify_progress(
                                ProgressNotificationParam::new(token.clone(), progress)
                                    .with_total(100.0)
                                    .with_message(format!("Completed step {progress} of 100")),
                            )
                            .await;
                    }
                }
                let token = token.map_or(Value::Null, |token| json!(token.0));
                Ok(text(format!("Progress reported for token {token}")))
            }
            "test_error_handling" => Ok(CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )])
            .into()),
            "test_sampling" => {
                let prompt = string_argument(&arguments, "prompt")?;
                self.sampling_tool(&request, &cx, prompt).await
            }
            "test_elicitation" => {
                let message = string_argument(&arguments, "message")?;
                self.elicitation_tool(&request, &cx, message, response_schema(), "User response")
                    .await
            }
            "test_elicitation_sep1034_defaults" => {
                self.elicitation_tool(
                    &request,
                    &cx,
                    "Please review and update the form fields with defaults",
                    sep1034_schema(),
                    "Elicitation completed",
                )
                .await
            }
            "test_elicitation_sep1330_enums" => {
                self.elicitation_tool(
                    &request,
                    &cx,
                    "Please select options from the enum fields",
                    sep1330_schema(),
                    "Elicitation completed",
                )
                .await
            }
            "test_reconnection" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(text("Reconnection test completed successfully."))
            }
            "json_schema_2020_12_tool" => Ok(text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(arguments)
            ))),
            CUSTOM_HEADER_TOOL => Ok(text(string_argument(&arguments, "value")?)),
            "test_trigger_tool_change" => {
                for sink in self.shared.listeners() {
                    // Streams that did not ask for tool changes refuse the
                    // notification (the sink enforces the accepted filter).
                    let _ = sink.notify_tool_list_changed().await;
                }
                Ok(text("Tool list change triggered"))
            }
            "test_trigger_prompt_change" => {
                for sink in self.shared.listeners() {
                    let _ = sink.notify_prompt_list_changed().await;
                }
                Ok(text("Prompt list change triggered"))
            }
            "test_missing_capability" => {
                mrtr::require(&cx, &[Needs::Sampling])?;
                Ok(text("Success: the client declared the sampling capability"))
            }
            "test_streaming_elicitation" => {
                mrtr::require(&cx, &[Needs::Elicitation])?;
                match mrtr::elicited_str(
                    request.input_responses.as_ref(),
                    "streaming_input",
                    "value",
                ) {
                    Some(value) => Ok(text(format!("Streaming complete: {value}"))),
                    None => {
                        let mut requests = InputRequests::new();
                        requests.insert(
                            "streaming_input".into(),
                            mrtr::elicitation(
                                "Provide a value",
                                json!({ "value": { "type": "string" } }),
                                &["value"],
                            )?,
                        );
                        Ok(InputRequiredResult::from_input_requests(requests).into())
                    }
                }
            }
            "test_logging_tool" => {
                self.log(
                    &cx,
                    LoggingLevel::Info,
                    json!("Diagnostic trace logging activated"),
                )
                .await;
                Ok(text("Logging evaluated"))
            }
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                Some(json!({ "name": other })),
            )),
        }
    }

    /// `test_sampling`: a server→client `sampling/createMessage` request on a
    /// legacy session; an MRTR round on the stateless wire, where servers may
    /// not send requests.
    async fn sampling_tool(
        &self,
        request: &CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
        prompt: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        mrtr::require(cx, &[Needs::Sampling])?;
        if is_stateless(cx) {
            return match mrtr::sampled_text(request.input_responses.as_ref(), "sampling") {
                Some(answer) => Ok(text(format!("LLM response: {answer}"))),
                None => {
                    let mut requests = InputRequests::new();
                    requests.insert("sampling".into(), mrtr::sampling(prompt, 100)?);
                    Ok(InputRequiredResult::from_input_requests(requests).into())
                }
            };
        }
        let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
        match cx.peer.create_message(params).await {
            Ok(result) => {
                let result = serde_json::to_value(result).unwrap_or_default();
                let content = &result["content"];
                let answer = content
                    .as_array()
                    .and_then(|blocks| blocks.first())
                    .unwrap_or(content)["text"]
                    .as_str()
                    .unwrap_or("(no text)")
                    .to_owned();
                Ok(text(format!("LLM response: {answer}")))
            }
            Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "Sampling failed: {error}"
            ))])
            .into()),
        }
    }

    /// The elicitation tools: a server→client `elicitation/create` request
    /// on a legacy session; an MRTR round on the stateless wire.
    async fn elicitation_tool(
        &self,
        request: &CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
        message: &str,
        schema: Value,
        label: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        mrtr::require(cx, &[Needs::Elicitation])?;
        if is_stateless(cx) {
            return match mrtr::response(request.input_responses.as_ref(), "response") {
                Some(answer) => Ok(text(format!(
                    "{label}: action={}, content={}",
                    answer
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown"),
                    answer.get("content").cloned().unwrap_or(json!({}))
                ))),
                None => {
                    let ask = serde_json::from_value(json!({
                        "method": "elicitation/create",
                        "params": { "mode": "form", "message": message, "requestedSchema": schema }
                    }))
                    .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
                    let mut requests = InputRequests::new();
                    requests.insert("response".into(), ask);
                    Ok(InputRequiredResult::from_input_requests(requests).into())
                }
            };
        }
        let params: ElicitRequestParams = serde_json::from_value(json!({
            "mode": "form",
            "message": message,
            "requestedSchema": schema,
        }))
        .map_err(|error| {
            ErrorData::internal_error(format!("invalid fixture form: {error}"), None)
        })?;
        match cx.peer.create_elicitation(params).await {
            Ok(result) => {
                let result = serde_json::to_value(result).unwrap_or_default();
                Ok(text(format!(
                    "{label}: action={}, content={}",
                    result["action"].as_str().unwrap_or("unknown"),
                    result.get("content").cloned().unwrap_or(json!({}))
                )))
            }
            Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "Elicitation failed: {error}"
            ))])
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ElicitRequestParams;

    use super::*;

    /// Every legacy elicitation form must survive rmcp's typed schema model
    /// with the fields the suite checks intact.
    #[test]
    fn elicitation_forms_round_trip() {
        for schema in [sep1034_schema(), sep1330_schema(), response_schema()] {
            let params: ElicitRequestParams = serde_json::from_value(json!({
                "mode": "form",
                "message": "m",
                "requestedSchema": schema.clone(),
            }))
            .unwrap();
            let wire = serde_json::to_value(params).unwrap();
            for (name, property) in schema["properties"].as_object().unwrap() {
                let sent = &wire["requestedSchema"]["properties"][name];
                for key in ["type", "default", "enum", "enumNames", "oneOf", "items"] {
                    assert_eq!(sent.get(key), property.get(key), "{name}.{key}");
                }
            }
        }
    }
}
