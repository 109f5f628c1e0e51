//! The MCP conformance fixture server.
//!
//! [`ConformanceServer`] implements every tool, resource, resource template,
//! prompt, completion, `subscriptions/listen` stream, MRTR (`input_required`)
//! flow, logging and progress behaviour, and SEP-2663 task, that the server
//! scenarios of the official conformance suite
//! (`@modelcontextprotocol/conformance@0.2.0-alpha.12`, run by
//! `scripts/conformance`) exercise, on both the stateless 2026-07-28 wire and
//! the legacy 2025-11-25 session wire.
//!
//! It is a test fixture. It must only be served in a test/conformance mode
//! (`mcpship serve --fixtures conformance`), never as part of the default tool
//! list: its tools do nothing useful and some of them misbehave on purpose.
//!
//! The HTTP service constructs a handler per stateless request (and per legacy
//! session): build one [`ConformanceServer`] at start with the MRTR
//! `requestState` codec, and let the factory call [`ConformanceServer::handler`],
//! which is cheap: it clones one `Arc` to the shared fixture state (see
//! `shared.rs`) and allocates the per-session log level.
//!
//! Hosting it (see `examples/host.rs`; `mcpship serve --fixtures conformance`
//! builds the codec from `MCPSHIP_REQUEST_STATE_KEYS`):
//!
//! ```text
//! let fixtures = ConformanceServer::new(codec);
//! StreamableHttpService::new(
//!     move || Ok(fixtures.handler()),
//!     Arc::new(LocalSessionManager::default()),
//!     config,
//! )
//! ```

// Logging, sampling and roots are deprecated by SEP-2577 in 2026-07-28 but are
// still part of the legacy (2025-11-25) wire, which the suite still exercises.
#![allow(deprecated)]

mod catalog;
mod mrtr;
mod shared;
mod tasks;
mod tools;

use std::sync::{Arc, Mutex};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, GetTaskParams, GetTaskResult,
        Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
        PromptMessage, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, Reference, RequestStateCodec, ResourceContents, Role,
        ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde_json::{Value, json};

use crate::{
    catalog::{
        CACHE_TTL_MS, STATIC_BINARY_URI, STATIC_TEXT, STATIC_TEXT_URI, TEST_IMAGE_BASE64,
        WATCHED_TEXT, WATCHED_URI,
    },
    shared::Shared,
};

/// The name the fixture reports in `serverInfo`.
pub const SERVER_NAME: &str = "mcpship-conformance";

/// The conformance fixture server. See the crate documentation.
#[derive(Clone)]
pub struct ConformanceServer {
    shared: Arc<Shared>,
    /// The minimum level set by `logging/setLevel` on a legacy session. `None`
    /// until the client sets one: everything is sent.
    session_log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl std::fmt::Debug for ConformanceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConformanceServer").finish_non_exhaustive()
    }
}

impl ConformanceServer {
    /// Fixtures whose MRTR `requestState` is sealed with `request_state`.
    /// Make one at start; handlers come from [`Self::handler`].
    pub fn new(request_state: RequestStateCodec) -> Self {
        Self {
            shared: Arc::new(Shared::new(request_state)),
            session_log_level: Arc::new(Mutex::new(None)),
        }
    }

    /// A handler over the same fixture state, with its own session log
    /// level. Cheap: one `Arc` clone and one small allocation.
    pub fn handler(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            session_log_level: Arc::new(Mutex::new(None)),
        }
    }

    /// Sends `notifications/message` if the request's logging rules allow it.
    ///
    /// - 2026-07-28 requests: only when `_meta` carries
    ///   `io.modelcontextprotocol/logLevel` and `level` is at least that severe
    ///   (SEP-2575: no log messages unless asked for).
    /// - Legacy sessions: filtered by the level `logging/setLevel` chose.
    async fn log(&self, cx: &RequestContext<RoleServer>, level: LoggingLevel, data: Value) {
        let threshold = if is_stateless(cx) {
            match cx.meta.log_level() {
                Some(requested) => Some(requested),
                None => return,
            }
        } else {
            *self
                .session_log_level
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if threshold.is_some_and(|threshold| severity(level) < severity(threshold)) {
            return;
        }
        // A peer that went away is not an error worth reporting to the tool.
        let _ = cx
            .peer
            .notify_logging_message(
                LoggingMessageNotificationParam::new(level, data).with_logger(SERVER_NAME),
            )
            .await;
    }
}

/// Whether this request uses the stateless 2026-07-28 (or later) lifecycle,
/// i.e. carries its protocol version in `_meta` rather than in a session.
fn is_stateless(cx: &RequestContext<RoleServer>) -> bool {
    cx.meta
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The capabilities this request's client declared: per request on the
/// stateless wire, at `initialize` on a legacy session.
fn client_capabilities(cx: &RequestContext<RoleServer>) -> ClientCapabilities {
    cx.client_capabilities().unwrap_or_default()
}

/// RFC 5424 severity order, lowest first.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Completion candidates for an argument, filtered by the typed prefix.
fn completions(reference: &Reference, argument: &str, prefix: &str) -> Vec<String> {
    let candidates: &[&str] = match (reference, argument) {
        (Reference::Prompt(prompt), "arg1" | "arg2")
            if prompt.name == "test_prompt_with_arguments" =>
        {
            &["paris", "park", "party", "test", "testValue1", "testValue2"]
        }
        (Reference::Prompt(prompt), "resourceUri")
            if prompt.name == "test_prompt_with_embedded_resource" =>
        {
            &[STATIC_TEXT_URI, STATIC_BINARY_URI, WATCHED_URI]
        }
        (Reference::Resource(template), "id") if template.uri == catalog::TEMPLATE_URI => {
            &["1", "2", "3", "42", "123"]
        }
        _ => &[],
    };
    candidates
        .iter()
        .filter(|candidate| candidate.starts_with(prefix))
        .map(|candidate| (*candidate).to_owned())
        .collect()
}

impl ServerHandler for ConformanceServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_completions()
                .enable_logging()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_resources_list_changed()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                .with_title("mcpship conformance fixtures"),
        )
        .with_instructions(
            "Conformance test fixtures for the official MCP conformance suite. \
             Not for production use.",
        )
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog::find_tool(name).cloned()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalog::tools().to_vec())
            .with_ttl_ms(CACHE_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        if mrtr::is_mrtr_tool(name) {
            return self.call_mrtr_tool(request, &cx);
        }
        if tasks::is_task_tool(name) {
            return self.call_task_tool(request, &cx).await;
        }
        self.call_basic_tool(request, cx).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(catalog::resources())
            .with_ttl_ms(CACHE_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(
            ListResourceTemplatesResult::with_all_items(catalog::resource_templates())
                .with_ttl_ms(CACHE_TTL_MS)
                .with_cache_scope(CacheScope::Public),
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let contents = match uri {
            STATIC_TEXT_URI => ResourceContents::text(STATIC_TEXT, uri),
            STATIC_BINARY_URI => {
                ResourceContents::blob(TEST_IMAGE_BASE64, uri).with_mime_type("image/png")
            }
            WATCHED_URI => ResourceContents::text(WATCHED_TEXT, uri),
            _ => match catalog::template_id(uri) {
                Some(id) => ResourceContents::text(
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                        .to_string(),
                    uri,
                )
                .with_mime_type("application/json"),
                // SEP-2164: rmcp turns RESOURCE_NOT_FOUND into -32602 for
                // 2026-07-28 peers; `data.uri` names the missing resource.
                None => {
                    return Err(ErrorData::resource_not_found(
                        format!("Resource not found: {uri}"),
                        Some(json!({ "uri": uri })),
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents])
            .with_ttl_ms(CACHE_TTL_MS)
            .with_cache_scope(CacheScope::Private)
            .into())
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Legacy resources/subscribe: the fixture resources never change, so
        // accepting the subscription is all there is to do.
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp intersects this with what was requested and advertised.
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let key = self.shared.add_listener(context.sink().clone());
        context.cancelled().await;
        self.shared.remove_listener(key);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(catalog::prompts())
            .with_ttl_ms(CACHE_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let argument = |name: &str| -> Result<String, ErrorData> {
            request
                .arguments
                .as_ref()
                .and_then(|arguments| arguments.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ErrorData::invalid_params(format!("missing required argument `{name}`"), None)
                })
        };
        let result = match request.name.as_str() {
            "test_simple_prompt" => GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )])
            .with_description("A simple prompt without arguments"),
            "test_prompt_with_arguments" => {
                let (arg1, arg2) = (argument("arg1")?, argument("arg2")?);
                GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )])
                .with_description("A prompt with required arguments")
            }
            "test_prompt_with_embedded_resource" => {
                let uri = argument("resourceUri")?;
                GetPromptResult::new(vec![
                    PromptMessage::new_resource(
                        Role::User,
                        uri,
                        Some("text/plain".into()),
                        Some("Embedded resource content for testing.".into()),
                        None,
                        None,
                        None,
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ])
                .with_description("A prompt that includes an embedded resource")
            }
            "test_prompt_with_image" => GetPromptResult::new(vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ])
            .with_description("A prompt that includes image content"),
            mrtr::PROMPT => return self.get_mrtr_prompt(&request, &cx),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("Unknown prompt: {other}"),
                    Some(json!({ "name": other })),
                ));
            }
        };
        Ok(result.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let values = completions(
            &request.r#ref,
            &request.argument.name,
            &request.argument.value,
        );
        let info = CompletionInfo::with_all_values(values)
            .map_err(|error| ErrorData::internal_error(error, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self
            .session_log_level
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request.level);
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(
            self.shared.tasks.get_task(&request.task_id)?,
        ))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.shared
            .tasks
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.shared.tasks.cancel_task(&request.task_id)
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{PromptReference, ResourceTemplateReference};

    use super::*;

    #[test]
    fn completion_filters_by_prefix() {
        let prompt = Reference::Prompt(PromptReference::new("test_prompt_with_arguments"));
        assert_eq!(
            completions(&prompt, "arg1", "par"),
            ["paris", "park", "party"]
        );
        let template = Reference::Resource(ResourceTemplateReference::new(catalog::TEMPLATE_URI));
        assert_eq!(completions(&template, "id", "12"), ["123"]);
        assert!(completions(&template, "other", "").is_empty());
    }

    #[test]
    fn severity_is_ordered() {
        assert!(severity(LoggingLevel::Debug) < severity(LoggingLevel::Info));
        assert!(severity(LoggingLevel::Alert) < severity(LoggingLevel::Emergency));
    }

    #[test]
    fn capabilities_cover_every_fixture_family() {
        let codec = RequestStateCodec::try_new([7u8; 32].to_vec()).unwrap();
        let capabilities = ConformanceServer::new(codec).get_info().capabilities;
        assert!(capabilities.tools.is_some());
        assert!(capabilities.prompts.is_some());
        assert!(capabilities.resources.is_some());
        assert!(capabilities.completions.is_some());
        assert!(capabilities.supports_tasks());
    }
}
