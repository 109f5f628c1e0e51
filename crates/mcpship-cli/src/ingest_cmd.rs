//! `mcpship ingest PATH…`: files into the store, with a progress bar on a
//! terminal and one summary line at the end.
//!
//! With `MCPSHIP_STATE=redis`, an ingest that changed documents then
//! publishes `resources/list_changed` and `resources/updated` for each
//! changed `docs://` URI on the change feed, so `subscriptions/listen`
//! streams on every serving replica hear of it. Redis is checked before any
//! file is read, so a wrong URL fails early, not after the work.

use std::{io::IsTerminal, path::PathBuf, time::Duration};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mcpship::state::{Change, ChangeFeed, StateBackend};
use mcpship_docs::ingest::{self, Progress};

use crate::cli::{ChangeArgs, StoreArgs};

/// How long ingest waits for Redis to answer at start.
const REDIS_WAIT: Duration = Duration::from_secs(5);

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.0.set_length(total as u64);
    }
    fn advance(&self) {
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Returns whether every file was ingested.
pub(crate) async fn run(
    paths: Vec<PathBuf>,
    store: &StoreArgs,
    changes: &ChangeArgs,
    no_progress: bool,
) -> anyhow::Result<bool> {
    let feed = change_feed(changes).await?;
    let (files, skipped) = ingest::discover(&paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no .md, .txt, .html or .jsonl files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let backend = store.open().await?;
    let summary = if !no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        ingest::ingest(backend, files, skipped, &Bar(bar)).await
    } else {
        ingest::ingest(backend, files, skipped, &ingest::NoProgress).await
    };
    for failure in &summary.failed {
        eprintln!("failed: {failure}");
    }
    println!("{summary}");
    if let Some(feed) = feed
        && !summary.changed.is_empty()
    {
        publish(&feed, &summary.changed).await?;
        println!(
            "told listeners on every replica: {} document(s) changed",
            summary.changed.len()
        );
    }
    Ok(summary.failed.is_empty())
}

/// The feed to publish on, if the configuration names one.
async fn change_feed(args: &ChangeArgs) -> anyhow::Result<Option<ChangeFeed>> {
    if args.state != StateBackend::Redis {
        return Ok(None);
    }
    let config = mcpship::ServeConfig {
        state: args.state,
        redis_url: args.redis_url.clone(),
        redis_prefix: args.redis_prefix.clone(),
        ..mcpship::ServeConfig::default()
    };
    let redis = mcpship::state::connect_redis(&config, REDIS_WAIT)
        .await
        .context("connecting to Redis (MCPSHIP_REDIS_URL) to announce changed documents")?;
    Ok(Some(ChangeFeed::redis_publisher(&redis)))
}

async fn publish(feed: &ChangeFeed, changed: &[String]) -> anyhow::Result<()> {
    let changes = std::iter::once(Change::ResourcesListChanged).chain(
        changed
            .iter()
            .map(|id| Change::resource_updated(mcpship_docs::tools::document_uri(id))),
    );
    feed.publish(changes).await.with_context(|| {
        format!(
            "{} document(s) were stored, but listeners were not told; \
             they see the changes on their next read",
            changed.len()
        )
    })
}
