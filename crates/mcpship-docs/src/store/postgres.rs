//! PostgreSQL backend: a generated `tsvector` column with a GIN index, ranked
//! with `ts_rank_cd`.
//!
//! The text search configuration is `mcpship_english` (see the migration): the
//! `english` stemmer without stop words, over text whose ASCII punctuation is
//! split like FTS5 splits it, so both backends find the same documents.

use std::time::Duration;

use sqlx::{Row, postgres::PgPoolOptions};

use super::{
    Document, DocumentStore, DocumentSummary, MATCH_END, MATCH_START, NewDocument, SearchHit,
    SearchPage, StoreError, UpsertOutcome, check_query,
};
use crate::query;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Enough for a replica's concurrent requests without exhausting a shared
/// server's `max_connections` when several replicas run.
const MAX_CONNECTIONS: u32 = 8;

/// A request waiting longer than this for a connection fails instead of
/// queueing behind an outage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `updated_at` as RFC 3339 UTC with whole seconds, the format SQLite stores.
const UPDATED_AT: &str =
    r#"to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS updated_at"#;

/// PostgreSQL document store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` and migrates it.
    ///
    /// Replicas starting together are safe: sqlx serialises migrations with an
    /// advisory lock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

fn headline_options() -> String {
    format!("StartSel={MATCH_START}, StopSel={MATCH_END}, MaxWords=35, MinWords=15, MaxFragments=1")
}

fn invalid_or_db(error: sqlx::Error) -> StoreError {
    // The tsquery text is rendered by `query::Query::to_tsquery`, so a rejected
    // query would be our bug; still, it concerns this query alone, so it is
    // reported as the caller's query rather than as a database outage.
    // 42601: syntax error; class 22: data exception (malformed tsquery);
    // 54000: program limit exceeded (a word too long for the index).
    match &error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code == "42601" || code == "54000" || code.starts_with("22") => {
                StoreError::InvalidQuery(db.message().to_owned())
            }
            _ => StoreError::Database(error),
        },
        _ => StoreError::Database(error),
    }
}

fn to_u64(n: i64) -> u64 {
    // Counts are never negative; clamp rather than wrap if one ever were.
    u64::try_from(n).unwrap_or(0)
}

fn now() -> String {
    crate::time::now_rfc3339()
}

#[async_trait::async_trait]
impl DocumentStore for PostgresStore {
    async fn search(&self, query: &str, limit: u32, offset: u32) -> Result<SearchPage, StoreError> {
        super::traced("postgresql", "SELECT", "search", async move {
            let tsquery = query::parse(check_query(query)?)?.to_tsquery();
            // Ranks and counts every match, but reads bodies and builds headlines
            // (the expensive part) only for the rows on the page. `to_tsquery` is
            // written out each time rather than shared through a CTE so that the
            // planner sees an expression it can hand to the GIN index.
            let rows = sqlx::query(
                "SELECT page.id, page.title, \
                        ts_headline('mcpship_english', d.body, to_tsquery('mcpship_english', $1), $4) \
                            AS snippet, \
                        page.score, page.total \
                 FROM ( \
                     SELECT id, title, \
                            ts_rank_cd(tsv, to_tsquery('mcpship_english', $1))::float8 AS score, \
                            count(*) OVER () AS total \
                     FROM documents \
                     WHERE tsv @@ to_tsquery('mcpship_english', $1) \
                     ORDER BY score DESC, id \
                     LIMIT $2 OFFSET $3 \
                 ) page \
                 JOIN documents d ON d.id = page.id \
                 ORDER BY page.score DESC, page.id",
            )
            .bind(&tsquery)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .bind(headline_options())
            .fetch_all(&self.pool)
            .await
            .map_err(invalid_or_db)?;
            let total = match rows.first() {
                Some(row) => to_u64(row.try_get("total")?),
                // Past the last page (or with an empty page asked for) there is no
                // row to carry the window count: count directly.
                None if offset > 0 || limit == 0 => to_u64(
                    sqlx::query_scalar(
                        "SELECT count(*) FROM documents \
                         WHERE tsv @@ to_tsquery('mcpship_english', $1)",
                    )
                    .bind(&tsquery)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(invalid_or_db)?,
                ),
                None => 0,
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
        super::traced("postgresql", "SELECT", "get", async move {
            // PostgreSQL text cannot hold NUL, so no stored id contains one; asking
            // the server would fail with an encoding error instead of "not found".
            if id.contains('\0') {
                return Ok(None);
            }
            let row = sqlx::query(&format!(
                "SELECT id, title, body, source, content_type, content_hash, {UPDATED_AT} \
                 FROM documents WHERE id = $1"
            ))
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
        super::traced("postgresql", "INSERT", "upsert", async move {
            // Two statements rather than a read-then-write: under READ COMMITTED
            // each sees rows committed by a concurrent upsert of the same id (the
            // INSERT waits for it and then skips), so racing upserts neither fail
            // on the primary key nor report the same insert twice.
            let now = now();
            let mut tx = self.pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO documents (id, title, body, source, content_type, content_hash, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&doc.id)
            .bind(&doc.title)
            .bind(&doc.body)
            .bind(&doc.source)
            .bind(&doc.content_type)
            .bind(&doc.content_hash)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let outcome = if inserted > 0 {
                UpsertOutcome::Inserted
            } else {
                let updated = sqlx::query(
                    "UPDATE documents SET title = $2, body = $3, source = $4, content_type = $5, \
                     content_hash = $6, updated_at = $7::timestamptz \
                     WHERE id = $1 AND content_hash <> $6",
                )
                .bind(&doc.id)
                .bind(&doc.title)
                .bind(&doc.body)
                .bind(&doc.source)
                .bind(&doc.content_type)
                .bind(&doc.content_hash)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated > 0 {
                    UpsertOutcome::Updated
                } else {
                    UpsertOutcome::Unchanged
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    async fn list(&self, limit: u32, offset: u32) -> Result<Vec<DocumentSummary>, StoreError> {
        super::traced("postgresql", "SELECT", "list", async move {
            let rows =
                sqlx::query("SELECT id, title FROM documents ORDER BY id LIMIT $1 OFFSET $2")
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
        super::traced("postgresql", "SELECT", "count", async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
                .fetch_one(&self.pool)
                .await?;
            Ok(to_u64(n))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        super::traced("postgresql", "SELECT", "ping", async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
