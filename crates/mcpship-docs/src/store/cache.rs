//! A read-through cache for `get` in front of any store.
//!
//! `get_document` is the hottest call and documents change only on ingest, so
//! whole documents are kept in memory for a short time-to-live. Writes through
//! this wrapper invalidate at once; writes by another process (a separate
//! `mcpship ingest`, another replica) are seen within the TTL.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;

use super::{
    Document, DocumentStore, DocumentSummary, NewDocument, SearchPage, StoreError, UpsertOutcome,
};

/// Caches documents by id; everything else passes through.
pub struct CachedStore {
    inner: Arc<dyn DocumentStore>,
    // `None` is cached too: unknown ids are as cheap to answer as known ones.
    documents: Cache<String, Option<Arc<Document>>>,
}

impl CachedStore {
    /// Wraps `inner`, holding up to `capacity` documents for `ttl` each.
    pub fn new(inner: Arc<dyn DocumentStore>, capacity: u64, ttl: Duration) -> Self {
        Self {
            inner,
            documents: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The document with `id`, shared rather than cloned.
    pub async fn get_shared(&self, id: &str) -> Result<Option<Arc<Document>>, StoreError> {
        if let Some(hit) = self.documents.get(id).await {
            return Ok(hit);
        }
        let fetched = self.inner.get(id).await?.map(Arc::new);
        self.documents.insert(id.to_owned(), fetched.clone()).await;
        Ok(fetched)
    }
}

#[async_trait::async_trait]
impl DocumentStore for CachedStore {
    async fn search(&self, query: &str, limit: u32, offset: u32) -> Result<SearchPage, StoreError> {
        self.inner.search(query, limit, offset).await
    }

    async fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        Ok(self.get_shared(id).await?.map(|d| (*d).clone()))
    }

    async fn upsert(&self, doc: &NewDocument) -> Result<UpsertOutcome, StoreError> {
        let outcome = self.inner.upsert(doc).await?;
        self.documents.invalidate(&doc.id).await;
        Ok(outcome)
    }

    async fn list(&self, limit: u32, offset: u32) -> Result<Vec<DocumentSummary>, StoreError> {
        self.inner.list(limit, offset).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
