//! The sample corpus shipped in the repository's `corpus/` folder, compiled
//! into the binary so `mcpship serve` answers searches with no set-up.

use std::sync::Arc;

use include_dir::{Dir, DirEntry, include_dir};

use crate::{
    ingest::{self, Summary},
    store::DocumentStore,
};

static CORPUS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../corpus");

fn files<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => files(d, out),
            DirEntry::File(f) => out.push(f),
        }
    }
}

/// Number of files in the embedded corpus.
pub fn file_count() -> usize {
    let mut all = Vec::new();
    files(&CORPUS, &mut all);
    all.len()
}

/// Loads the embedded corpus into `store`. Idempotent: unchanged documents
/// are not written again, so this is cheap on every start.
pub async fn seed(store: Arc<dyn DocumentStore>) -> Summary {
    let started = std::time::Instant::now();
    let mut all = Vec::new();
    files(&CORPUS, &mut all);
    let mut summary = Summary {
        files: all.len(),
        ..Summary::default()
    };
    for file in all {
        // The same relative paths as `mcpship ingest corpus/` uses, so both give
        // the same ids and a later ingest of the folder updates these documents.
        let relative = file.path().to_string_lossy().replace('\\', "/");
        let docs = match ingest::parse(&relative, file.contents()) {
            Ok(docs) => docs,
            Err(ingest::ParseError::Unsupported { .. }) => {
                summary.skipped += 1;
                continue;
            }
            Err(e) => {
                summary.failed.push(e.to_string());
                continue;
            }
        };
        for doc in docs {
            match store.upsert(&doc).await {
                Ok(outcome) => summary.count(&doc.id, outcome),
                Err(e) => summary.failed.push(format!("{relative}: {e}")),
            }
        }
    }
    summary.elapsed = started.elapsed();
    summary
}
