//! Tool-call events around any rmcp `ServerHandler`.
//!
//! [`Instrumented`] wraps the user's handler and forwards every method
//! unchanged, except that `tools/call` is timed and logged as
//! `tool.invoked` / `tool.succeeded` / `tool.failed` with the tool name, the
//! legacy session id or the request id, and the duration. Arguments are never
//! logged: they may hold secrets or personal data.

use std::{borrow::Cow, time::Instant};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::*,
    service::{NotificationContext, RequestContext},
};

use crate::events;

/// The request id the HTTP layer assigns (`x-request-id`), carried in the
/// request's extensions so handlers and logs can name the request.
#[derive(Debug, Clone)]
pub struct RequestIdExt(pub(crate) http::HeaderValue);

impl RequestIdExt {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // The HTTP layer only stores ids made of ASCII letters, digits and `-_.:`.
        self.0.to_str().unwrap_or_default()
    }
}

/// A handler whose tool calls are logged.
#[derive(Debug, Clone)]
pub struct Instrumented<H>(pub H);

/// Whom a call belongs to, for the log line: the legacy session if any, else
/// the request id.
fn correlation(context: &RequestContext<RoleServer>) -> (Option<String>, Option<String>) {
    let parts = context.extensions.get::<http::request::Parts>();
    let session = parts
        .and_then(|p| p.headers.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = parts
        .and_then(|p| p.extensions.get::<RequestIdExt>())
        .map(|r| r.as_str().to_owned());
    (session, request)
}

impl<H: ServerHandler> ServerHandler for Instrumented<H> {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (session_id, request_id) = correlation(&context);
        let session_id = session_id.as_deref();
        let request_id = request_id.as_deref();
        let tool = request.name.clone();
        let started = Instant::now();
        tracing::info!(
            target: "mcpship::tool",
            event = events::TOOL_INVOKED,
            tool = %tool,
            session_id,
            request_id,
            "{}",
            events::TOOL_INVOKED
        );
        let ct = context.ct.clone();
        let result = self.0.call_tool(request, context).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let failure = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                Some((events::ERROR_CLASS_TOOL, None))
            }
            Ok(_) => None,
            Err(e) if ct.is_cancelled() => {
                Some((events::ERROR_CLASS_CANCELLED, Some(e.message.to_string())))
            }
            Err(e) => Some((events::ERROR_CLASS_PROTOCOL, Some(e.message.to_string()))),
        };
        match failure {
            None => tracing::info!(
                target: "mcpship::tool",
                event = events::TOOL_SUCCEEDED,
                tool = %tool,
                session_id,
                request_id,
                duration_ms,
                "{}",
                events::TOOL_SUCCEEDED
            ),
            Some((error_class, error)) => tracing::warn!(
                target: "mcpship::tool",
                event = events::TOOL_FAILED,
                tool = %tool,
                session_id,
                request_id,
                duration_ms,
                error_class,
                error,
                "{}",
                events::TOOL_FAILED
            ),
        }
        result
    }

    // Everything below forwards unchanged: a wrapper that forgot one would
    // silently turn a feature of the user's server off.

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.0.ping(context).await
    }
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.0.initialize(request, context).await
    }
    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, ErrorData> {
        self.0.negotiate_initialize(request)
    }
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.0.supported_protocol_versions()
    }
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.0.discover(context).await
    }
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.0.complete(request, context).await
    }
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.set_level(request, context).await
    }
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.0.get_prompt(request, context).await
    }
    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.0.list_prompts(request, context).await
    }
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.0.list_resources(request, context).await
    }
    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.0.list_resource_templates(request, context).await
    }
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.0.read_resource(request, context).await
    }
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.0.accepted_subscription_filter(requested)
    }
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        self.0.listen(context).await
    }
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.subscribe(request, context).await
    }
    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.unsubscribe(request, context).await
    }
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.0.list_tools(request, context).await
    }
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.0.get_tool(name)
    }
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.0.on_custom_request(request, context).await
    }
    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.0.on_cancelled(notification, context).await
    }
    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.0.on_progress(notification, context).await
    }
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.0.on_initialized(context).await
    }
    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.0.on_roots_list_changed(context).await
    }
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        self.0.on_custom_notification(notification, context).await
    }
    fn get_info(&self) -> ServerConfig {
        self.0.get_info()
    }
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.0.get_task(request, context).await
    }
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.update_task(request, context).await
    }
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.0.cancel_task(request, context).await
    }
    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        self.0.list_skills(request, context).await
    }
    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        self.0.get_skill(request, context).await
    }
    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, ErrorData> {
        self.0.read_resource_directory(request, context).await
    }
}
