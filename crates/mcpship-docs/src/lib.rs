//! The built-in document-search MCP server.
//!
//! - [`store`]: the [`store::DocumentStore`] trait with SQLite and PostgreSQL backends;
//! - [`query`]: the search query language, shared by both backends;
//! - [`tools`]: the MCP server (`search_documents`, `get_document`, `docs://` resources);
//! - [`ingest`]: loading Markdown, text, HTML and JSON Lines files into a store;
//! - [`corpus`]: the sample corpus compiled into the binary.
//!
//! This crate uses only the public API of the `mcpship` runtime, like any user's
//! server would.

pub mod corpus;
pub mod ingest;
pub mod query;
pub mod store;
pub mod time;
pub mod tools;
