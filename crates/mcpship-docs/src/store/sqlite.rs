//! Embedded SQLite backend: FTS5 with BM25 ranking.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Row,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    Document, DocumentStore, DocumentSummary, MATCH_END, MATCH_START, NewDocument, SearchHit,
    SearchPage, StoreError, UpsertOutcome, check_query,
};
use crate::query;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Title matches count five times as much as body matches.
const RANK: &str = "bm25(documents_fts, 5.0, 1.0)";

/// SQLite document store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it.
    ///
    /// `sqlite::memory:` gives a private in-memory database; it is held on one
    /// connection, since each SQLite connection to `:memory:` is its own database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // WAL makes NORMAL durable against application crashes; only an OS
            // crash can lose the last transactions, which ingest can redo.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let mut pool = SqlitePoolOptions::new();
        pool = if in_memory {
            pool.min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(8)
        };
        let pool = pool.connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

fn invalid_or_db(error: sqlx::Error) -> StoreError {
    // The query text is rendered by `query::Query::to_fts5`, so a syntax error
    // here would be our bug; still, report it as the caller's query rather
    // than a database outage.
    match &error {
        sqlx::Error::Database(db) if db.message().contains("fts5") => {
            StoreError::InvalidQuery(db.message().to_owned())
        }
        _ => StoreError::Database(error),
    }
}

fn now() -> String {
    crate::time::now_rfc3339()
}

#[async_trait::async_trait]
impl DocumentStore for SqliteStore {
    async fn search(&self, query: &str, limit: u32, offset: u32) -> Result<SearchPage, StoreError> {
        super::traced("sqlite", "SELECT", "search", async move {
            let parsed = query::parse(check_query(query)?)?;
            // FTS5 auxiliary functions (bm25, snippet) only work in a query
            // directly over the FTS table, so rank there and join afterwards.
            let sql = format!(
                "WITH hits AS ( \
                     SELECT rowid, {RANK} AS rank, \
                            snippet(documents_fts, 1, ?2, ?3, '…', 24) AS snippet \
                     FROM documents_fts WHERE documents_fts MATCH ?1 \
                     ORDER BY rank, (SELECT id FROM documents WHERE rowid = documents_fts.rowid) \
                     LIMIT ?4 OFFSET ?5) \
                 SELECT d.id, d.title, hits.snippet, -hits.rank AS score \
                 FROM hits JOIN documents d ON d.rowid = hits.rowid \
                 ORDER BY hits.rank, d.id"
            );
            let expression = parsed.to_fts5();
            let rows = sqlx::query(&sql)
                .bind(&expression)
                .bind(MATCH_START)
                .bind(MATCH_END)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await
                .map_err(invalid_or_db)?;
            // A full page (or a page past the end) needs a separate count; a
            // short first page already is the count.
            let total = if offset == 0 && (rows.len() as u32) < limit {
                rows.len() as u64
            } else {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM documents_fts WHERE documents_fts MATCH ?1",
                )
                .bind(&expression)
                .fetch_one(&self.pool)
                .await
                .map_err(invalid_or_db)? as u64
            };
            let hits = rows
                .iter()
                .map(|row| {
                    Ok(SearchHit {
                        id: row.try_get("id")?,
                        title: row.try_get("title")?,
                        snippet: row.try_get("snippet")?,
                        score: row.try_get("score")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(SearchPage { hits, total })
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        super::traced("sqlite", "SELECT", "get", async move {
            let row = sqlx::query(
                "SELECT id, title, body, source, content_type, content_hash, updated_at \
                 FROM documents WHERE id = ?1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|row| {
                Ok(Document {
                    id: row.try_get("id")?,
                    title: row.try_get("title")?,
                    body: row.try_get("body")?,
                    source: row.try_get("source")?,
                    content_type: row.try_get("content_type")?,
                    content_hash: row.try_get("content_hash")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .transpose()
            .map_err(StoreError::Database)
        })
        .await
    }

    async fn upsert(&self, doc: &NewDocument) -> Result<UpsertOutcome, StoreError> {
        super::traced("sqlite", "INSERT", "upsert", async move {
            // IMMEDIATE takes the write lock up front: a deferred transaction that
            // reads and then writes cannot wait for a concurrent writer (SQLite
            // answers SQLITE_BUSY at once rather than risk a deadlock), while an
            // immediate one waits under busy_timeout like any other writer.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let existing: Option<String> =
                sqlx::query_scalar("SELECT content_hash FROM documents WHERE id = ?1")
                    .bind(&doc.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let outcome = match existing {
                Some(hash) if hash == doc.content_hash => return Ok(UpsertOutcome::Unchanged),
                Some(_) => {
                    sqlx::query(
                        "UPDATE documents SET title = ?2, body = ?3, source = ?4, content_type = ?5, \
                         content_hash = ?6, updated_at = ?7 WHERE id = ?1",
                    )
                    .bind(&doc.id)
                    .bind(&doc.title)
                    .bind(&doc.body)
                    .bind(&doc.source)
                    .bind(&doc.content_type)
                    .bind(&doc.content_hash)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    UpsertOutcome::Updated
                }
                None => {
                    sqlx::query(
                        "INSERT INTO documents (id, title, body, source, content_type, content_hash, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .bind(&doc.id)
                    .bind(&doc.title)
                    .bind(&doc.body)
                    .bind(&doc.source)
                    .bind(&doc.content_type)
                    .bind(&doc.content_hash)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    UpsertOutcome::Inserted
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    async fn list(&self, limit: u32, offset: u32) -> Result<Vec<DocumentSummary>, StoreError> {
        super::traced("sqlite", "SELECT", "list", async move {
            let rows =
                sqlx::query("SELECT id, title FROM documents ORDER BY id LIMIT ?1 OFFSET ?2")
                    .bind(i64::from(limit))
                    .bind(i64::from(offset))
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|row| {
                    Ok(DocumentSummary {
                        id: row.try_get("id")?,
                        title: row.try_get("title")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::Database)
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        super::traced("sqlite", "SELECT", "count", async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
                .fetch_one(&self.pool)
                .await?;
            Ok(n as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        super::traced("sqlite", "SELECT", "ping", async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
