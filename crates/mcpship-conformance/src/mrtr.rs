//! SEP-2322 multi round-trip requests (MRTR): the `test_input_required_result_*`
//! tools and prompt.
//!
//! Each fixture answers with `resultType: "input_required"` until the client
//! retries with usable `inputResponses` (and the echoed `requestState`, where
//! one was issued). `requestState` is attacker-controlled, so it is sealed with
//! HMAC-SHA256 bound to the tool and a TTL, and a value that fails to open is
//! rejected with `-32602` rather than trusted.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, PromptMessage, Role, SealOptions,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::{ConformanceServer, catalog::MRTR_TOOLS, client_capabilities};

/// The MRTR fixture prompt (SEP-2322 on a non-tool request).
pub(crate) const PROMPT: &str = "test_input_required_result_prompt";

/// How long a sealed `requestState` stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);

pub(crate) fn is_mrtr_tool(name: &str) -> bool {
    MRTR_TOOLS.iter().any(|&(tool, _)| tool == name)
}

/// A client capability an input request depends on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Needs {
    Elicitation,
    Sampling,
    Roots,
}

impl Needs {
    fn key(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::Sampling => "sampling",
            Self::Roots => "roots",
        }
    }

    fn declared_in(self, capabilities: &ClientCapabilities) -> bool {
        match self {
            Self::Elicitation => capabilities.elicitation.is_some(),
            Self::Sampling => capabilities.sampling.is_some(),
            Self::Roots => capabilities.roots.is_some(),
        }
    }
}

/// `-32021` naming every capability in `needs` the client did not declare,
/// or `Ok` when it declared them all.
pub(crate) fn require(cx: &RequestContext<RoleServer>, needs: &[Needs]) -> Result<(), ErrorData> {
    let declared = client_capabilities(cx);
    let missing: Map<String, Value> = needs
        .iter()
        .filter(|need| !need.declared_in(&declared))
        .map(|need| (need.key().to_owned(), json!({})))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let required: ClientCapabilities = serde_json::from_value(Value::Object(missing))
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    Err(ErrorData::missing_required_client_capability(required))
}

fn input_request(request: Value) -> Result<InputRequest, ErrorData> {
    serde_json::from_value(request).map_err(|error| {
        ErrorData::internal_error(format!("invalid fixture input request: {error}"), None)
    })
}

/// An `elicitation/create` form request for string/boolean fields.
pub(crate) fn elicitation(
    message: &str,
    properties: Value,
    required: &[&str],
) -> Result<InputRequest, ErrorData> {
    input_request(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": properties,
                "required": required,
            }
        }
    }))
}

/// A `sampling/createMessage` request with one user text message.
pub(crate) fn sampling(prompt: &str, max_tokens: u32) -> Result<InputRequest, ErrorData> {
    input_request(json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
            "maxTokens": max_tokens,
        }
    }))
}

pub(crate) fn list_roots() -> Result<InputRequest, ErrorData> {
    input_request(json!({ "method": "roots/list", "params": {} }))
}

/// The client's answer under `key`, if it is a JSON object. Anything else
/// (a number, `null`, a missing key) counts as no answer, so the fixture
/// asks again, as SEP-2322 recommends for missing or invalid responses.
pub(crate) fn response<'a>(
    responses: Option<&'a InputResponses>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    responses?.get(key)?.as_object()
}

/// An accepted elicitation's string field; `None` if the answer is missing,
/// declined, or lacks the field.
pub(crate) fn elicited_str<'a>(
    responses: Option<&'a InputResponses>,
    key: &str,
    field: &str,
) -> Option<&'a str> {
    let answer = response(responses, key)?;
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    answer.get("content")?.get(field)?.as_str()
}

/// A sampling answer's text.
pub(crate) fn sampled_text<'a>(
    responses: Option<&'a InputResponses>,
    key: &str,
) -> Option<&'a str> {
    let content = response(responses, key)?.get("content")?;
    // `content` is one block or, with sampling tools, an array of blocks.
    let block = content
        .as_array()
        .and_then(|blocks| blocks.first())
        .unwrap_or(content);
    block.get("text")?.as_str()
}

fn requests<const N: usize>(entries: [(&str, InputRequest); N]) -> InputRequests {
    entries
        .into_iter()
        .map(|(key, request)| (key.to_owned(), request))
        .collect()
}

fn text(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

fn tampered() -> ErrorData {
    ErrorData::invalid_params("requestState failed integrity verification", None)
}

impl ConformanceServer {
    /// Seals `state` for `tool`: bound to the tool name, valid for [`STATE_TTL`].
    fn seal(&self, tool: &str, state: &Value) -> Result<String, ErrorData> {
        let options = SealOptions::new()
            .associated_data(tool.as_bytes())
            .ttl(STATE_TTL);
        self.shared
            .request_state
            .seal_json_with(state, &options)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))
    }

    /// Opens a `requestState` sealed by [`Self::seal`] for the same tool.
    fn open(&self, tool: &str, sealed: &str) -> Result<Value, ErrorData> {
        self.shared
            .request_state
            .open_json_with(sealed, tool.as_bytes())
            .map_err(|_| tampered())
    }

    /// Opens the request's `requestState`, if it sent one.
    fn open_state(&self, tool: &str, sealed: Option<&str>) -> Result<Option<Value>, ErrorData> {
        sealed.map(|sealed| self.open(tool, sealed)).transpose()
    }

    fn ask(
        &self,
        tool: &str,
        requests: InputRequests,
        state: Option<Value>,
    ) -> Result<InputRequiredResult, ErrorData> {
        let sealed = state.map(|state| self.seal(tool, &state)).transpose()?;
        Ok(InputRequiredResult::new(Some(requests), sealed))
    }

    pub(crate) fn call_mrtr_tool(
        &self,
        request: CallToolRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.as_ref();
        let responses = request.input_responses.as_ref();
        let state = request.request_state.as_deref();
        match tool {
            "test_input_required_result_elicitation" => {
                require(cx, &[Needs::Elicitation])?;
                match elicited_str(responses, "user_name", "name") {
                    Some(name) => Ok(text(format!("Hello, {name}!"))),
                    None => Ok(self
                        .ask(
                            tool,
                            requests([("user_name", ask_name("What is your name?")?)]),
                            None,
                        )?
                        .into()),
                }
            }
            "test_input_required_result_sampling" => {
                require(cx, &[Needs::Sampling])?;
                match sampled_text(responses, "capital_question") {
                    Some(answer) => Ok(text(format!("Sampling result: {answer}"))),
                    None => Ok(self
                        .ask(
                            tool,
                            requests([(
                                "capital_question",
                                sampling("What is the capital of France?", 100)?,
                            )]),
                            None,
                        )?
                        .into()),
                }
            }
            "test_input_required_result_list_roots" => {
                require(cx, &[Needs::Roots])?;
                match response(responses, "client_roots")
                    .and_then(|answer| answer.get("roots"))
                    .and_then(Value::as_array)
                {
                    Some(roots) => Ok(text(format!("Found {} root(s)", roots.len()))),
                    None => Ok(self
                        .ask(tool, requests([("client_roots", list_roots()?)]), None)?
                        .into()),
                }
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                require(cx, &[Needs::Elicitation])?;
                // The echoed state is verified before anything else is trusted.
                let opened = self.open_state(tool, state)?;
                let confirmed = response(responses, "confirm")
                    .filter(|answer| answer.get("action").and_then(Value::as_str) == Some("accept"))
                    .and_then(|answer| answer.get("content")?.get("ok")?.as_bool());
                match (opened, confirmed) {
                    (Some(state), Some(ok)) if state["stage"] == "confirm" => Ok(text(format!(
                        "state-ok: requestState verified, confirmed = {ok}"
                    ))),
                    _ => {
                        let confirm = elicitation(
                            "Please confirm",
                            json!({ "ok": { "type": "boolean" } }),
                            &["ok"],
                        )?;
                        Ok(self
                            .ask(
                                tool,
                                requests([("confirm", confirm)]),
                                Some(json!({ "stage": "confirm" })),
                            )?
                            .into())
                    }
                }
            }
            "test_input_required_result_multiple_inputs" => {
                require(cx, &[Needs::Elicitation, Needs::Sampling, Needs::Roots])?;
                let opened = self.open_state(tool, state)?;
                let name = elicited_str(responses, "user_name", "name");
                let greeting = sampled_text(responses, "greeting");
                let roots = response(responses, "client_roots")
                    .and_then(|answer| answer.get("roots"))
                    .and_then(Value::as_array);
                match (opened, name, greeting, roots) {
                    (Some(state), Some(name), Some(greeting), Some(roots))
                        if state["stage"] == "gather" =>
                    {
                        Ok(text(format!(
                            "Name: {name}; Greeting: {greeting}; Roots: {}",
                            roots.len()
                        )))
                    }
                    _ => Ok(self
                        .ask(
                            tool,
                            requests([
                                ("user_name", ask_name("What is your name?")?),
                                ("greeting", sampling("Generate a greeting", 50)?),
                                ("client_roots", list_roots()?),
                            ]),
                            Some(json!({ "stage": "gather" })),
                        )?
                        .into()),
                }
            }
            "test_input_required_result_multi_round" => {
                require(cx, &[Needs::Elicitation])?;
                let opened = self.open_state(tool, state)?;
                let round = opened.as_ref().and_then(|state| state["round"].as_u64());
                let step1 = || -> Result<CallToolResponse, ErrorData> {
                    Ok(self
                        .ask(
                            tool,
                            requests([("step1", ask_name("Step 1: What is your name?")?)]),
                            Some(json!({ "round": 1 })),
                        )?
                        .into())
                };
                let step2 = |name: &str| -> Result<CallToolResponse, ErrorData> {
                    let color = elicitation(
                        "Step 2: What is your favorite color?",
                        json!({ "color": { "type": "string" } }),
                        &["color"],
                    )?;
                    Ok(self
                        .ask(
                            tool,
                            requests([("step2", color)]),
                            Some(json!({ "round": 2, "name": name })),
                        )?
                        .into())
                };
                match round {
                    Some(1) => match elicited_str(responses, "step1", "name") {
                        Some(name) => step2(name),
                        None => step1(),
                    },
                    Some(2) => {
                        let name = opened
                            .as_ref()
                            .and_then(|state| state["name"].as_str())
                            .unwrap_or("friend")
                            .to_owned();
                        match elicited_str(responses, "step2", "color") {
                            Some(color) => Ok(text(format!(
                                "Multi-round complete for {name} who likes {color}"
                            ))),
                            None => step2(&name),
                        }
                    }
                    _ => step1(),
                }
            }
            "test_input_required_result_capabilities" => {
                if let Some(responses) = responses.filter(|responses| !responses.is_empty()) {
                    let keys: Vec<&str> = responses.keys().map(String::as_str).collect();
                    return Ok(text(format!(
                        "capabilities-ok: received {}",
                        keys.join(",")
                    )));
                }
                // Ask only for what the client declared (SEP-2322).
                let declared = client_capabilities(cx);
                let mut asks = InputRequests::new();
                if Needs::Elicitation.declared_in(&declared) {
                    asks.insert(
                        "elicit_input".into(),
                        elicitation(
                            "Elicitation input",
                            json!({ "value": { "type": "string" } }),
                            &["value"],
                        )?,
                    );
                }
                if Needs::Sampling.declared_in(&declared) {
                    asks.insert("sample_input".into(), sampling("Sample request", 50)?);
                }
                if Needs::Roots.declared_in(&declared) {
                    asks.insert("roots_input".into(), list_roots()?);
                }
                if asks.is_empty() {
                    return Ok(text("No supported capabilities declared"));
                }
                Ok(self.ask(tool, asks, None)?.into())
            }
            other => Err(ErrorData::invalid_params(
                format!("Unknown tool: {other}"),
                Some(json!({ "name": other })),
            )),
        }
    }

    pub(crate) fn get_mrtr_prompt(
        &self,
        request: &GetPromptRequestParams,
        cx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        require(cx, &[Needs::Elicitation])?;
        match elicited_str(request.input_responses.as_ref(), "user_context", "context") {
            Some(context) => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with context: {context}"),
            )])
            .with_description("A prompt built from elicited context")
            .into()),
            None => {
                let ask = elicitation(
                    "What context should the prompt use?",
                    json!({ "context": { "type": "string" } }),
                    &["context"],
                )?;
                Ok(self
                    .ask(PROMPT, requests([("user_context", ask)]), None)?
                    .into())
            }
        }
    }
}

fn ask_name(message: &str) -> Result<InputRequest, ErrorData> {
    elicitation(message, json!({ "name": { "type": "string" } }), &["name"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_input_requests_deserialize_to_the_right_method() {
        let method = |request: &InputRequest| {
            serde_json::to_value(request).unwrap()["method"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(method(&ask_name("?").unwrap()), "elicitation/create");
        assert_eq!(
            method(&sampling("?", 10).unwrap()),
            "sampling/createMessage"
        );
        assert_eq!(method(&list_roots().unwrap()), "roots/list");
    }

    #[test]
    fn non_object_answers_count_as_missing() {
        let mut responses = InputResponses::new();
        responses.insert("user_name".into(), json!(12345));
        assert!(response(Some(&responses), "user_name").is_none());
        responses.insert("user_name".into(), json!({ "action": "decline" }));
        assert!(elicited_str(Some(&responses), "user_name", "name").is_none());
        responses.insert(
            "user_name".into(),
            json!({ "action": "accept", "content": { "name": "Alice" } }),
        );
        assert_eq!(
            elicited_str(Some(&responses), "user_name", "name"),
            Some("Alice")
        );
    }

    #[test]
    fn sealed_state_is_bound_to_its_tool() {
        let codec = |key: u8| rmcp::model::RequestStateCodec::try_new([key; 32].to_vec()).unwrap();
        let server = ConformanceServer::new(codec(7));
        let sealed = server.seal("a", &json!({ "round": 1 })).unwrap();
        // Another handler of the same server opens it; another key does not.
        assert_eq!(
            server.handler().open("a", &sealed).unwrap(),
            json!({ "round": 1 })
        );
        assert!(server.open("b", &sealed).is_err());
        assert!(server.open("a", &format!("{sealed}-TAMPERED")).is_err());
        assert!(ConformanceServer::new(codec(8)).open("a", &sealed).is_err());
    }
}
