//! The benchmark's baseline: `search_documents` and `get_document` served by
//! rmcp's Streamable HTTP service on axum, the way rmcp's own examples serve
//! it, with none of the mcpship runtime (no layers, telemetry, store or
//! cache). `bench/run` measures it beside `mcpship serve`, so the report
//! shows what rmcp itself costs on the machine of the day and what mcpship
//! adds to it.
//!
//! The documents are the corpus files, loaded into memory at start with the
//! same fields as mcpship's, so a `get_document` answer has the same shape
//! and size; results are rendered once at start, as mcpship caches them.
//! Search is a plain substring filter (the load generator only uses it to
//! find ids). Loopback only:
//!
//! ```sh
//! bare-rmcp --corpus corpus --port 18080
//! ```

use std::{collections::HashMap, path::Path, sync::Arc};

use axum::serve::ListenerExt;
use rmcp::{
    ErrorData, Json, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SearchArgs {
    /// Words that must all appear.
    query: String,
    /// How many hits to return.
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    10
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct GetArgs {
    /// A document id from `search_documents`.
    id: String,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct Hit {
    id: String,
    title: String,
    snippet: String,
    score: f64,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct SearchResult {
    hits: Vec<Hit>,
    total: u64,
    offset: u32,
    has_more: bool,
}

#[derive(Debug, serde::Serialize)]
struct Document {
    id: String,
    title: String,
    body: String,
    source: String,
    content_type: String,
    content_hash: String,
    updated_at: String,
}

struct Corpus {
    /// (id, title, lower-cased body) in id order, for search.
    index: Vec<(String, String, String)>,
    /// Rendered `get_document` results by id.
    rendered: HashMap<String, CallToolResult>,
}

#[derive(Clone)]
struct Bare {
    corpus: Arc<Corpus>,
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Bare {
    /// Find documents containing every word of the query.
    #[tool(annotations(read_only_hint = true))]
    async fn search_documents(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<Json<SearchResult>, String> {
        let words: Vec<String> = args
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let matching: Vec<_> = self
            .corpus
            .index
            .iter()
            .filter(|(_, _, body)| words.iter().all(|w| body.contains(w.as_str())))
            .collect();
        let hits = matching
            .iter()
            .take(args.limit as usize)
            .map(|(id, title, body)| Hit {
                id: id.clone(),
                title: title.clone(),
                snippet: body.chars().take(120).collect(),
                score: 1.0,
            })
            .collect::<Vec<_>>();
        Ok(Json(SearchResult {
            has_more: matching.len() > hits.len(),
            total: matching.len() as u64,
            offset: 0,
            hits,
        }))
    }

    /// Fetch one document by id.
    #[tool(annotations(read_only_hint = true))]
    async fn get_document(
        &self,
        Parameters(GetArgs { id }): Parameters<GetArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.corpus.rendered.get(&id) {
            Some(result) => result.clone(),
            None => CallToolResult::error(vec![rmcp::model::ContentBlock::text(format!(
                "No document with id {id:?}."
            ))]),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn load(dir: &Path) -> std::io::Result<Corpus> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut index = Vec::new();
    let mut rendered = HashMap::new();
    for path in files {
        let body = std::fs::read_to_string(&path)?;
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        let id = relative
            .with_extension("")
            .to_string_lossy()
            .replace(['/', '.', '_'], "-");
        let title = body
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .unwrap_or(&id)
            .to_owned();
        let document = Document {
            id: id.clone(),
            title: title.clone(),
            body: body.clone(),
            source: relative.to_string_lossy().into_owned(),
            content_type: "text/markdown".to_owned(),
            content_hash: format!("{:064x}", body.len()),
            updated_at: "2026-11-25T00:00:00Z".to_owned(),
        };
        let value = serde_json::to_value(&document).map_err(std::io::Error::other)?;
        rendered.insert(id.clone(), CallToolResult::structured(value));
        index.push((id, title, body.to_lowercase()));
    }
    Ok(Corpus { index, rendered })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut corpus = "corpus".to_owned();
    let mut port = 18080u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("every flag takes a value")?;
        match flag.as_str() {
            "--corpus" => corpus = value,
            "--port" => port = value.parse()?,
            _ => return Err(format!("unknown flag {flag}; use --corpus DIR --port N").into()),
        }
    }
    let corpus = Arc::new(load(Path::new(&corpus))?);
    let server = Bare {
        corpus,
        tool_router: Arc::new(Bare::tool_router()),
    };
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_json_response(true),
    );
    let app = axum::Router::new().route_service("/mcp", service);
    // Without TCP_NODELAY every response waits for Nagle.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
    eprintln!("bare-rmcp listening on http://127.0.0.1:{port}/mcp");
    axum::serve(listener, app).await?;
    Ok(())
}
