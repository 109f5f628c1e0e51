//! The document-search MCP server: tools and `docs://` resources.
//!
//! Tools are plain rmcp `#[tool]` methods, the same way a user of the runtime
//! writes theirs. Every failure a caller can cause (empty query, out-of-range
//! paging, unknown id, query syntax) is a tool error with a message that says
//! what to change; only a broken database is reported as an internal failure,
//! and its detail goes to the log, not to the caller.
//!
//! `subscriptions/listen` streams may opt into `resourcesListChanged` and
//! `resourceSubscriptions` for `docs://` URIs. The server accepts them here;
//! the runtime delivers the changes that whoever changes the store publishes
//! (`mcpship ingest`, through Redis). Legacy `resources/subscribe` is refused
//! with a message pointing at `subscriptions/listen`: legacy sessions get no
//! change notifications.

use std::sync::Arc;

use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities,
        ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

use crate::store::{CachedStore, Document, DocumentStore, SearchHit, StoreError};

/// Largest page `search_documents` returns.
pub const MAX_LIMIT: u32 = 50;
/// Deepest offset `search_documents` pages to: deep paging through a ranked
/// full-text result costs the database the whole prefix.
pub const MAX_OFFSET: u32 = 10_000;
/// Resource URIs are `docs://{id}`.
pub const URI_SCHEME: &str = "docs://";
const RESOURCE_PAGE: u32 = 100;

fn default_limit() -> u32 {
    10
}

/// Arguments of `search_documents`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// What to look for. Words are ANDed; use "quoted phrases", word* for a
    /// prefix, OR between alternatives and -word to exclude.
    pub query: String,
    /// How many hits to return (1 to 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
    /// How many hits to skip, for paging (0 to 10000).
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000))]
    pub offset: u32,
}

/// Result of `search_documents`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SearchResult {
    /// Hits in rank order, best first.
    pub hits: Vec<SearchHit>,
    /// Matching documents in all.
    pub total: u64,
    /// The offset of this page.
    pub offset: u32,
    /// Whether a further page exists.
    pub has_more: bool,
}

/// Arguments of `get_document`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetArgs {
    /// The document id, as returned by search_documents.
    pub id: String,
}

/// The document-search server. Cloning is three reference-count increments,
/// since rmcp builds a handler for every stateless request.
#[derive(Clone)]
pub struct DocsServer {
    store: Arc<CachedStore>,
    tool_router: Arc<ToolRouter<Self>>,
    rendered: RenderedDocuments,
}

/// `get_document` results, built once per cached document: rendering a
/// document as structured content plus its JSON text copy costs more than the
/// rest of the call. An entry is used only while the store's cache still
/// hands out the very document it was built from, so it is never staler than
/// that cache.
#[derive(Clone)]
struct RenderedDocuments(moka::sync::Cache<String, (Arc<Document>, CallToolResult)>);

impl RenderedDocuments {
    fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
        )
    }

    fn get(&self, doc: &Arc<Document>) -> Result<CallToolResult, String> {
        if let Some((source, result)) = self.0.get(&doc.id)
            && Arc::ptr_eq(&source, doc)
        {
            return Ok(result);
        }
        let value = serde_json::to_value(&**doc).map_err(|e| {
            tracing::error!(error = %e, "cannot render a document");
            "The document cannot be rendered; try again shortly.".to_owned()
        })?;
        let result = CallToolResult::structured(value);
        self.0.insert(doc.id.clone(), (doc.clone(), result.clone()));
        Ok(result)
    }
}

impl std::fmt::Debug for DocsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocsServer")
            .field("backend", &self.store.backend())
            .finish()
    }
}

/// A store failure as the caller sees it: their mistake is explained, an
/// outage is logged here and reported generically.
fn caller_message(error: StoreError, doing: &str) -> String {
    match error {
        StoreError::InvalidQuery(why) => format!("Invalid query: {why}."),
        other => {
            tracing::error!(error = %other, "document store failed while {doing}");
            format!("The document store is unavailable while {doing}; try again shortly.")
        }
    }
}

#[tool_router]
impl DocsServer {
    /// Serves documents from `store`.
    pub fn new(store: Arc<CachedStore>) -> Self {
        Self {
            store,
            tool_router: Arc::new(Self::tool_router()),
            rendered: RenderedDocuments::new(),
        }
    }

    /// Search the document collection by full text. Returns ranked hits with
    /// id, title, a snippet with the matched words in **bold**, and a score.
    #[tool(
        name = "search_documents",
        annotations(
            title = "Search documents",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn search_documents(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<Json<SearchResult>, String> {
        if args.query.trim().is_empty() {
            return Err("Invalid query: the query is empty; pass one or more words.".into());
        }
        if !(1..=MAX_LIMIT).contains(&args.limit) {
            return Err(format!(
                "Invalid limit {}: it must be between 1 and {MAX_LIMIT}.",
                args.limit
            ));
        }
        if args.offset > MAX_OFFSET {
            return Err(format!(
                "Invalid offset {}: it must be between 0 and {MAX_OFFSET}; refine the query instead of paging this deep.",
                args.offset
            ));
        }
        let page = self
            .store
            .search(&args.query, args.limit, args.offset)
            .await
            .map_err(|e| caller_message(e, "searching"))?;
        let has_more = u64::from(args.offset) + (page.hits.len() as u64) < page.total;
        Ok(Json(SearchResult {
            hits: page.hits,
            total: page.total,
            offset: args.offset,
            has_more,
        }))
    }

    /// Fetch one whole document by id (from search_documents): its title, full
    /// text, source and content type.
    #[tool(
        name = "get_document",
        // What `Json<Document>` would declare; the result is built by hand
        // (see `RenderedDocuments`).
        output_schema = rmcp::handler::server::tool::schema_for_output::<Document>(),
        annotations(
            title = "Get document",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_document(
        &self,
        Parameters(GetArgs { id }): Parameters<GetArgs>,
    ) -> Result<CallToolResult, String> {
        let id = id.trim();
        if id.is_empty() {
            return Err("Invalid id: it is empty; pass an id from search_documents.".into());
        }
        match self.store.get_shared(id).await {
            Ok(Some(doc)) => self.rendered.get(&doc),
            Ok(None) => Err(format!(
                "No document has the id {id:?}; search with search_documents to find ids."
            )),
            Err(e) => Err(caller_message(e, "reading a document")),
        }
    }
}

/// The resource URI of a document.
pub fn document_uri(id: &str) -> String {
    format!("{URI_SCHEME}{id}")
}

/// What a `subscriptions/listen` stream may have of what it asked: the
/// resource list, and updates of `docs://` resources. Nothing else changes.
pub fn accepted_filter(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut accepted = SubscriptionFilter::builder();
    if requested.resources_list_changed == Some(true) {
        accepted = accepted.resources_list_changed();
    }
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|uri| uri.starts_with(URI_SCHEME) && uri.len() > URI_SCHEME.len())
        .cloned()
        .collect();
    if !uris.is_empty() {
        accepted = accepted.resource_subscriptions(uris);
    }
    accepted.build()
}

fn legacy_subscriptions_refused() -> ErrorData {
    ErrorData::invalid_request(
        "resources/subscribe is not offered on legacy sessions; use subscriptions/listen \
         (protocol 2026-07-28) with resourceSubscriptions",
        None,
    )
}

fn resource_for(id: &str, title: &str) -> Resource {
    Resource::new(document_uri(id), id.to_owned()).with_title(title.to_owned())
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DocsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("mcpship", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Search a document collection with search_documents, then read a hit in full \
                 with get_document (or the docs://{id} resource).",
        )
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let offset = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor
                .parse::<u32>()
                .map_err(|_| ErrorData::invalid_params("invalid cursor", None))?,
        };
        let page = self
            .store
            .list(RESOURCE_PAGE + 1, offset)
            .await
            .map_err(|e| ErrorData::internal_error(caller_message(e, "listing"), None))?;
        let more = page.len() > RESOURCE_PAGE as usize;
        let resources = page
            .iter()
            .take(RESOURCE_PAGE as usize)
            .map(|d| resource_for(&d.id, &d.title))
            .collect();
        let mut result = ListResourcesResult::with_all_items(resources);
        if more {
            result.next_cursor = Some((offset + RESOURCE_PAGE).to_string());
        }
        Ok(result)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(accepted_filter(requested))
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Err(legacy_subscriptions_refused())
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Err(legacy_subscriptions_refused())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{URI_SCHEME}{{id}}"), "document")
                .with_title("Document by id")
                // No mimeType: documents keep their own (Markdown, text, HTML).
                .with_description("A document's full text; ids come from search_documents."),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(id) = request.uri.strip_prefix(URI_SCHEME) else {
            return Err(ErrorData::resource_not_found(
                format!(
                    "unknown resource {:?}: URIs look like docs://ID",
                    request.uri
                ),
                None,
            ));
        };
        match self.store.get_shared(id).await {
            Ok(Some(doc)) => {
                Ok(
                    ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
                        uri: request.uri.clone(),
                        mime_type: Some(doc.content_type.clone()),
                        text: doc.body.clone(),
                        meta: None,
                    }])
                    .into(),
                )
            }
            Ok(None) => Err(ErrorData::resource_not_found(
                format!("no document has the id {id:?}"),
                None,
            )),
            Err(e) => Err(ErrorData::internal_error(
                caller_message(e, "reading a document"),
                None,
            )),
        }
    }
}
