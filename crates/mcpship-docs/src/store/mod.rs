//! The document store: one trait, two backends that behave the same.
//!
//! The tools and the ingester only see [`DocumentStore`]; which backend runs is
//! decided once, at start-up, from the database URL ([`open`]). Both backends
//! rank with their engine's own full-text scoring (SQLite FTS5 BM25, PostgreSQL
//! `ts_rank_cd`) and mark matches in snippets with the same markers, so a test
//! suite written against the trait runs unchanged against either.

mod cache;
mod postgres;
mod sqlite;

use std::sync::Arc;

pub use cache::CachedStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Marks the start of a matched term in a snippet.
pub const MATCH_START: &str = "**";
/// Marks the end of a matched term in a snippet.
pub const MATCH_END: &str = "**";
/// Longest query the store accepts, in bytes; longer input is a caller error,
/// not something to hand to the engine.
pub const MAX_QUERY_BYTES: usize = 1024;

/// A whole document, as `get_document` returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Document {
    /// Stable identifier, derived from where the document came from.
    pub id: String,
    /// Title: the first heading, or the file name.
    pub title: String,
    /// The document's text (Markdown and plain text as written; HTML as text).
    pub body: String,
    /// Where it was ingested from (a path, or `path#line` for JSON Lines).
    pub source: String,
    /// Media type of the original (`text/markdown`, `text/plain`, `text/html`, …).
    pub content_type: String,
    /// SHA-256 of the ingested content, hex.
    pub content_hash: String,
    /// When this version was stored (RFC 3339, UTC).
    pub updated_at: String,
}

/// One ranked search hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SearchHit {
    /// Document id, for `get_document`.
    pub id: String,
    /// Document title.
    pub title: String,
    /// An excerpt around the match; matched terms are wrapped in `**`.
    pub snippet: String,
    /// Relevance: higher is better. Comparable within one result page only.
    pub score: f64,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SearchPage {
    /// Hits in rank order.
    pub hits: Vec<SearchHit>,
    /// How many documents match in all (not only on this page).
    pub total: u64,
}

/// A document to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// Stable identifier (see [`crate::ingest::document_id`]).
    pub id: String,
    pub title: String,
    pub body: String,
    pub source: String,
    pub content_type: String,
    /// SHA-256 of the content, hex: the idempotency key.
    pub content_hash: String,
}

/// What [`DocumentStore::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new document.
    Inserted,
    /// An existing id with new content.
    Updated,
    /// The same id with the same content hash: nothing written.
    Unchanged,
}

/// A document's id and title, for listings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct DocumentSummary {
    pub id: String,
    pub title: String,
}

/// Errors from a store. `InvalidQuery` is the caller's mistake and its message
/// is safe to show to the caller; the others are operational.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine rejected the query text (syntax), or it was too long.
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
    /// The database could not be reached or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not one we can open.
    #[error("{0}")]
    Config(String),
}

/// A searchable collection of documents.
///
/// Implementations are cheap to share (`Arc<dyn DocumentStore>`) and safe to
/// call concurrently from many requests.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// Ranked full-text search. `query` is user text, non-empty and at most
    /// [`MAX_QUERY_BYTES`]; syntax the engine rejects is
    /// [`StoreError::InvalidQuery`], never a panic or a database error.
    async fn search(&self, query: &str, limit: u32, offset: u32) -> Result<SearchPage, StoreError>;

    /// The whole document, or `None` for an unknown id.
    async fn get(&self, id: &str) -> Result<Option<Document>, StoreError>;

    /// Insert or replace a document, idempotent by content hash.
    async fn upsert(&self, doc: &NewDocument) -> Result<UpsertOutcome, StoreError>;

    /// Documents in id order, for resource listings.
    async fn list(&self, limit: u32, offset: u32) -> Result<Vec<DocumentSummary>, StoreError>;

    /// How many documents are stored.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Cheap liveness probe of the backing database, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Short name of the backend, for logs and `mcpship config`.
    fn backend(&self) -> &'static str;
}

/// Opens the store a database URL names, running migrations.
///
/// `postgres://` and `postgresql://` select PostgreSQL; `sqlite:` URLs (and
/// `sqlite::memory:`) select SQLite.
pub async fn open(database_url: &str) -> Result<Arc<dyn DocumentStore>, StoreError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(database_url).await?))
    } else if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(database_url).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
            redact_url(database_url)
        )))
    }
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Runs one store operation inside a `db.query` span (a client span with the
/// OpenTelemetry database attributes), so traces show where a tool's time
/// went. Without a trace exporter no subscriber wants the span: it is a
/// disabled no-op and the query runs unwrapped.
pub(crate) async fn traced<T>(
    system: &'static str,
    operation: &'static str,
    summary: &'static str,
    query: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "db.query",
        otel.kind = "client",
        db.system = system,
        db.system.name = system,
        db.operation.name = operation,
        db.collection.name = "documents",
        db.query.summary = summary,
        error = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return query.await;
    }
    let result = query.instrument(span.clone()).await;
    // A caller's bad query is not a database failure.
    if let Err(e) = &result
        && !matches!(e, StoreError::InvalidQuery(_))
    {
        span.record("error", true);
        span.record("otel.status_code", "error");
    }
    result
}

/// Checks the arguments every backend validates the same way.
pub(crate) fn check_query(query: &str) -> Result<&str, StoreError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(StoreError::InvalidQuery("the query is empty".into()));
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(StoreError::InvalidQuery(format!(
            "the query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn empty_and_oversized_queries_are_caller_errors() {
        assert!(matches!(
            check_query("  "),
            Err(StoreError::InvalidQuery(_))
        ));
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert!(matches!(
            check_query(&long),
            Err(StoreError::InvalidQuery(_))
        ));
        assert_eq!(check_query(" rust ").unwrap(), "rust");
    }
}
