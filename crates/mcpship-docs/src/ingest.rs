//! Turning files into documents, and loading them into a store.
//!
//! Supported: Markdown (`.md`, `.markdown`), plain text (`.txt`, `.text`),
//! HTML (`.html`, `.htm`) and JSON Lines (`.jsonl`, one document per line).
//! A document's id is derived from its path relative to the directory it was
//! found under, so re-ingesting the same tree updates documents in place; its
//! content hash makes a re-run with unchanged files write nothing.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use sha2::{Digest, Sha256};

use crate::store::{DocumentStore, NewDocument, UpsertOutcome};

/// Why a file could not be turned into documents.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{path}: not valid UTF-8 text")]
    NotUtf8 { path: String },
    #[error("{path}:{line}: {why}")]
    BadLine {
        path: String,
        line: usize,
        why: String,
    },
    #[error("{path}: unsupported file type (expected .md, .txt, .html or .jsonl)")]
    Unsupported { path: String },
}

/// The kinds of file the ingester reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Html,
    JsonLines,
}

impl Format {
    /// The format a file name's extension names, if supported.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "md" | "markdown" => Self::Markdown,
            "txt" | "text" => Self::Text,
            "html" | "htm" => Self::Html,
            "jsonl" => Self::JsonLines,
            _ => return None,
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Markdown => "text/markdown",
            Self::Text | Self::JsonLines => "text/plain",
            Self::Html => "text/html",
        }
    }
}

/// A stable, URL-safe id for a relative path: lower-case letters, digits and
/// hyphens, e.g. `aws/alb-idle-timeout.md` → `aws-alb-idle-timeout`.
pub fn document_id(relative: &str) -> String {
    let without_ext = match relative.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') && !stem.is_empty() => stem,
        _ => relative,
    };
    slug(without_ext)
}

fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// "alb-idle_timeout" → "Alb idle timeout": a readable title from a file name.
fn title_from_file_name(relative: &str) -> String {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let words: Vec<&str> = stem
        .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let mut title = words.join(" ");
    if let Some(first) = title.get(..1) {
        title = first.to_uppercase() + &title[1..];
    }
    if title.is_empty() {
        name.to_owned()
    } else {
        title
    }
}

/// The text of the first Markdown heading (ATX `# …` or setext underline).
fn markdown_title(text: &str) -> Option<String> {
    let mut previous: Option<&str> = None;
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            previous = None;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('#') {
            let heading = rest.trim_start_matches('#');
            // `#tag` is not a heading: ATX needs a space after the hashes.
            if heading.is_empty() || heading.starts_with(' ') {
                let heading = heading.trim().trim_end_matches('#').trim();
                if !heading.is_empty() {
                    return Some(heading.to_owned());
                }
            }
        }
        if let Some(prev) = previous
            && !prev.is_empty()
            && !trimmed.is_empty()
            && (trimmed.chars().all(|c| c == '=') || trimmed.chars().all(|c| c == '-'))
            && trimmed.len() >= 2
        {
            return Some(prev.to_owned());
        }
        previous = Some(trimmed);
    }
    None
}

/// Visible text of an HTML document (scripts, styles and templates dropped),
/// with its title: the first `<h1>`, else `<title>`.
fn html_text(html: &str) -> (Option<String>, String) {
    use scraper::{Html, Node, Selector};
    let document = Html::parse_document(html);
    let pick = |selector: &str| {
        let selector = Selector::parse(selector).ok()?;
        let text: String = document.select(&selector).next()?.text().collect();
        let text = collapse_whitespace(&text);
        (!text.is_empty()).then_some(text)
    };
    let title = pick("h1").or_else(|| pick("title"));
    let mut body = String::new();
    let root = Selector::parse("body")
        .ok()
        .and_then(|s| document.select(&s).next());
    let start = root.map_or_else(|| document.tree.root().id(), |r| r.id());
    let Some(start) = document.tree.get(start) else {
        return (title, body);
    };
    for node in start.descendants() {
        if let Node::Text(text) = node.value() {
            let hidden = node.ancestors().any(|a| {
                a.value().as_element().is_some_and(|e| {
                    matches!(
                        e.name(),
                        "script" | "style" | "noscript" | "template" | "head"
                    )
                })
            });
            if !hidden {
                body.push_str(text);
                body.push(' ');
            }
        } else if let Node::Element(e) = node.value()
            && matches!(
                e.name(),
                "p" | "br" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "div" | "pre"
            )
        {
            body.push('\n');
        }
    }
    let body = body
        .lines()
        .map(collapse_whitespace)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (title, body)
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(serde::Deserialize)]
struct JsonLine {
    id: Option<String>,
    title: Option<String>,
    #[serde(alias = "content", alias = "body")]
    text: String,
    url: Option<String>,
}

/// Parses one file's bytes into documents. `relative` is the path shown as the
/// document's source and used for its id.
pub fn parse(relative: &str, bytes: &[u8]) -> Result<Vec<NewDocument>, ParseError> {
    let format = Format::of(Path::new(relative)).ok_or_else(|| ParseError::Unsupported {
        path: relative.to_owned(),
    })?;
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8 {
        path: relative.to_owned(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let hash = || sha256_hex(&[relative.as_bytes(), b"\0", bytes]);
    let single = |title: String, body: String| NewDocument {
        id: document_id(relative),
        title,
        body,
        source: relative.to_owned(),
        content_type: format.content_type().to_owned(),
        content_hash: hash(),
    };
    Ok(match format {
        Format::Markdown => vec![single(
            markdown_title(text).unwrap_or_else(|| title_from_file_name(relative)),
            text.to_owned(),
        )],
        Format::Text => vec![single(
            markdown_title(text).unwrap_or_else(|| title_from_file_name(relative)),
            text.to_owned(),
        )],
        Format::Html => {
            let (title, body) = html_text(text);
            vec![single(
                title.unwrap_or_else(|| title_from_file_name(relative)),
                body,
            )]
        }
        Format::JsonLines => {
            let file_id = document_id(relative);
            let mut docs = Vec::new();
            for (index, line) in text.lines().enumerate() {
                let number = index + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let entry: JsonLine =
                    serde_json::from_str(line).map_err(|e| ParseError::BadLine {
                        path: relative.to_owned(),
                        line: number,
                        why: format!("not a JSON object with a \"text\" field: {e}"),
                    })?;
                let id = match entry.id.as_deref().map(slug) {
                    Some(id) => format!("{file_id}-{id}"),
                    None => format!("{file_id}-{number}"),
                };
                let title = entry
                    .title
                    .filter(|t| !t.trim().is_empty())
                    .or_else(|| markdown_title(&entry.text))
                    .unwrap_or_else(|| format!("{} line {number}", title_from_file_name(relative)));
                let mut body = entry.text;
                if let Some(url) = entry.url {
                    body.push_str("\n\nSource: ");
                    body.push_str(&url);
                }
                docs.push(NewDocument {
                    id,
                    title,
                    body,
                    source: format!("{relative}#{number}"),
                    content_type: format.content_type().to_owned(),
                    content_hash: sha256_hex(&[relative.as_bytes(), b"\0", line.as_bytes()]),
                });
            }
            docs
        }
    })
}

/// A file found under one of the paths given to `ingest`.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    /// Path relative to the directory named on the command line (or the file
    /// name, for a file named directly), with `/` separators.
    pub relative: String,
}

/// Walks `paths` (files or directories) for supported files, sorted for a
/// stable order. Returns the files and how many were skipped as unsupported.
pub fn discover(paths: &[PathBuf]) -> std::io::Result<(Vec<Found>, usize)> {
    let mut found = Vec::new();
    let mut skipped = 0;
    for root in paths {
        let meta = std::fs::metadata(root)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if Format::of(root).is_none() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{}: unsupported file type (expected .md, .txt, .html or .jsonl)",
                        root.display()
                    ),
                ));
            }
            found.push(Found {
                path: root.clone(),
                relative: name,
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(std::io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let hidden = entry.path().strip_prefix(root).ok().is_some_and(|rel| {
                rel.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
            });
            if hidden {
                continue;
            }
            if Format::of(entry.path()).is_none() {
                skipped += 1;
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            found.push(Found {
                path: entry.path().to_owned(),
                relative,
            });
        }
    }
    Ok((found, skipped))
}

/// What an ingest run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Ids of the documents inserted or updated, in no particular order.
    pub changed: Vec<String>,
    /// Files that could not be read or parsed, with why.
    pub failed: Vec<String>,
    pub skipped: usize,
    pub elapsed: Duration,
}

impl Summary {
    pub(crate) fn count(&mut self, id: &str, outcome: UpsertOutcome) {
        match outcome {
            UpsertOutcome::Inserted => self.inserted += 1,
            UpsertOutcome::Updated => self.updated += 1,
            UpsertOutcome::Unchanged => {
                self.unchanged += 1;
                return;
            }
        }
        self.changed.push(id.to_owned());
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.files as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "ingested {} files in {secs:.2}s ({rate:.0} files/s): {} inserted, {} updated, {} unchanged, {} failed",
            self.files,
            self.inserted,
            self.updated,
            self.unchanged,
            self.failed.len()
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped (unsupported type)", self.skipped)?;
        }
        Ok(())
    }
}

/// Receives progress, so the command line can draw a bar and tests need none.
pub trait Progress: Send + Sync {
    fn start(&self, _total: usize) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

/// How many files are read and stored at once. Reads overlap; the database
/// serializes writes itself.
const PARALLELISM: usize = 16;

/// Ingests every document in `files` into `store`.
pub async fn ingest(
    store: Arc<dyn DocumentStore>,
    files: Vec<Found>,
    skipped: usize,
    progress: &dyn Progress,
) -> Summary {
    let started = Instant::now();
    progress.start(files.len());
    let mut summary = Summary {
        files: files.len(),
        skipped,
        ..Summary::default()
    };
    let mut results = stream::iter(files)
        .map(|file| {
            let store = store.clone();
            async move {
                let bytes = tokio::fs::read(&file.path)
                    .await
                    .map_err(|e| format!("{}: {e}", file.path.display()))?;
                let docs = parse(&file.relative, &bytes).map_err(|e| e.to_string())?;
                let mut outcomes = Vec::with_capacity(docs.len());
                for doc in docs {
                    let outcome = store
                        .upsert(&doc)
                        .await
                        .map_err(|e| format!("{}: storing {}: {e}", file.relative, doc.id))?;
                    outcomes.push((doc.id, outcome));
                }
                Ok::<_, String>(outcomes)
            }
        })
        .buffer_unordered(PARALLELISM);
    while let Some(result) = results.next().await {
        match result {
            Ok(outcomes) => outcomes
                .into_iter()
                .for_each(|(id, outcome)| summary.count(&id, outcome)),
            Err(why) => {
                tracing::warn!(error = %why, "could not ingest a file");
                summary.failed.push(why);
            }
        }
        progress.advance();
    }
    progress.finish();
    summary.elapsed = started.elapsed();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_slugs() {
        assert_eq!(
            document_id("aws/ALB Idle_Timeout.md"),
            "aws-alb-idle-timeout"
        );
        assert_eq!(document_id("notes.v2.txt"), "notes-v2");
        assert_eq!(document_id("README"), "readme");
        assert_eq!(document_id("---.md"), "document");
    }

    #[test]
    fn markdown_title_is_first_heading_else_file_name() {
        let docs = parse("ops/drain.md", b"intro\n\n## Draining well\n\n# Later").unwrap();
        assert_eq!(docs[0].title, "Draining well");
        let docs = parse("ops/drain-notes.md", b"no heading here\n#hashtag").unwrap();
        assert_eq!(docs[0].title, "Drain notes");
        let docs = parse("a.md", b"```\n# not a heading\n```\nSetext title\n===\n").unwrap();
        assert_eq!(docs[0].title, "Setext title");
    }

    #[test]
    fn html_drops_scripts_and_decodes_entities() {
        let html = br#"<html><head><title>T</title><style>.x{}</style></head>
            <body><h1>Caf&eacute; &amp; tea</h1><script>var secret=1;</script>
            <p>Hello <b>world</b></p><ul><li>one</li><li>two</li></ul></body></html>"#;
        let docs = parse("x.html", html).unwrap();
        assert_eq!(docs[0].title, "Café & tea");
        assert!(docs[0].body.contains("Hello world"), "{}", docs[0].body);
        assert!(docs[0].body.contains("one") && docs[0].body.contains("two"));
        assert!(!docs[0].body.contains("secret"));
        assert!(!docs[0].body.contains(".x{}"));
        assert_eq!(docs[0].content_type, "text/html");
    }

    #[test]
    fn json_lines_give_one_document_per_line() {
        let input = b"{\"id\":\"A b\",\"title\":\"First\",\"text\":\"alpha\"}\n\n{\"content\":\"# Heading\\nbeta\",\"url\":\"https://x\"}\n";
        let docs = parse("faq/faq.jsonl", input).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id, "faq-faq-a-b");
        assert_eq!(docs[0].title, "First");
        assert_eq!(docs[1].id, "faq-faq-3");
        assert_eq!(docs[1].title, "Heading");
        assert!(docs[1].body.ends_with("Source: https://x"));
        assert_eq!(docs[1].source, "faq/faq.jsonl#3");
        assert_ne!(docs[0].content_hash, docs[1].content_hash);
    }

    #[test]
    fn bad_input_is_explained() {
        let err = parse("f.jsonl", b"{\"text\":\"ok\"}\nnot json\n").unwrap_err();
        assert!(err.to_string().starts_with("f.jsonl:2:"), "{err}");
        assert!(matches!(
            parse("x.md", &[0xff, 0xfe, 0x00]),
            Err(ParseError::NotUtf8 { .. })
        ));
        assert!(matches!(
            parse("x.pdf", b"%PDF"),
            Err(ParseError::Unsupported { .. })
        ));
    }

    #[test]
    fn hash_changes_with_content_only() {
        let a = parse("a.md", b"# A\nx").unwrap();
        let b = parse("a.md", b"# A\nx").unwrap();
        let c = parse("a.md", b"# A\ny").unwrap();
        assert_eq!(a[0].content_hash, b[0].content_hash);
        assert_ne!(a[0].content_hash, c[0].content_hash);
    }
}
