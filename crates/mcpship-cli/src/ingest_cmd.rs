//! `mcpship ingest PATH…`: files into the store, with a progress bar on a
//! terminal and one summary line at the end.

use std::{io::IsTerminal, path::PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use mcpship_docs::ingest::{self, Progress};

use crate::cli::StoreArgs;

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
    no_progress: bool,
) -> anyhow::Result<bool> {
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
    Ok(summary.failed.is_empty())
}
