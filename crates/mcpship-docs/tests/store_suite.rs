//! The `DocumentStore` contract, written once and run against both backends.
//!
//! Every test is a generic function over `&dyn DocumentStore`; `suite!` at the
//! bottom instantiates each one for SQLite (a fresh database file per test)
//! and for PostgreSQL (a fresh database per test on the server named by
//! `MCPSHIP_TEST_POSTGRES_URL`). A test that needs one backend to behave
//! differently does not belong here: the point is that callers cannot tell
//! which backend they talk to.
//!
//! PostgreSQL must be reachable: its tests fail, never skip, when it is not
//! (`scripts/lib/services.sh` provides one for the test scripts).

use std::{
    collections::HashSet,
    hash::{BuildHasher, Hasher},
    sync::Arc,
    time::{Duration, SystemTime},
};

use mcpship_docs::store::{
    self, DocumentStore, MAX_QUERY_BYTES, NewDocument, SearchPage, SqliteStore, StoreError,
    UpsertOutcome,
};
use sha2::{Digest, Sha256};
use sqlx::Connection;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

// ---------------------------------------------------------------------------
// Helpers

fn doc(id: &str, title: &str, body: &str) -> NewDocument {
    let hash = Sha256::digest(format!("{title}\n{body}"));
    NewDocument {
        id: id.to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        source: format!("docs/{id}.md"),
        content_type: "text/markdown".to_owned(),
        content_hash: format!("{hash:x}"),
    }
}

async fn put(store: &dyn DocumentStore, docs: &[NewDocument]) {
    for d in docs {
        store
            .upsert(d)
            .await
            .unwrap_or_else(|e| panic!("upsert {}: {e}", d.id));
    }
}

async fn search(store: &dyn DocumentStore, query: &str) -> SearchPage {
    store
        .search(query, 50, 0)
        .await
        .unwrap_or_else(|e| panic!("search {query:?} on {}: {e}", store.backend()))
}

/// Ids of the hits, in rank order.
async fn ids(store: &dyn DocumentStore, query: &str) -> Vec<String> {
    search(store, query)
        .await
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// Ids of the hits, ignoring order, for tests about matching rather than rank.
async fn id_set(store: &dyn DocumentStore, query: &str) -> HashSet<String> {
    ids(store, query).await.into_iter().collect()
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// The suite

async fn round_trip(store: &dyn DocumentStore) {
    let new = doc("guides/intro", "Introduction", "Welcome to the handbook.");
    assert_eq!(store.upsert(&new).await.unwrap(), UpsertOutcome::Inserted);

    let got = store
        .get("guides/intro")
        .await
        .unwrap()
        .expect("stored document");
    assert_eq!(got.id, new.id);
    assert_eq!(got.title, new.title);
    assert_eq!(got.body, new.body);
    assert_eq!(got.source, new.source);
    assert_eq!(got.content_type, new.content_type);
    assert_eq!(got.content_hash, new.content_hash);

    // RFC 3339, UTC, whole seconds: `2026-11-24T23:31:26Z`.
    let ts = &got.updated_at;
    assert_eq!(ts.len(), 20, "updated_at {ts:?}");
    assert!(
        ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "updated_at {ts:?}"
    );
    let stamped = humantime::parse_rfc3339(ts).unwrap_or_else(|e| panic!("{ts:?}: {e}"));
    let skew = match SystemTime::now().duration_since(stamped) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    assert!(
        skew < Duration::from_secs(300),
        "updated_at {ts:?} is far from now"
    );

    store.ping().await.unwrap();
}

async fn unknown_ids_are_none(store: &dyn DocumentStore) {
    put(store, &[doc("known", "Known", "text")]).await;
    assert!(store.get("unknown").await.unwrap().is_none());
    assert!(store.get("").await.unwrap().is_none());
    assert!(
        store.get("KNOWN").await.unwrap().is_none(),
        "ids are case-sensitive"
    );
    // Ids come from callers; odd bytes are "not found", not a database error.
    assert!(store.get("known\0").await.unwrap().is_none());
    assert!(store.get("known' OR '1'='1").await.unwrap().is_none());
}

async fn upsert_is_idempotent_by_content_hash(store: &dyn DocumentStore) {
    let v1 = doc("notes", "Release notes", "The alpha release.");
    assert_eq!(store.upsert(&v1).await.unwrap(), UpsertOutcome::Inserted);
    let first = store.get("notes").await.unwrap().expect("v1");
    assert_eq!(store.upsert(&v1).await.unwrap(), UpsertOutcome::Unchanged);
    assert_eq!(
        store.get("notes").await.unwrap().expect("v1"),
        first,
        "nothing written"
    );

    let v2 = doc("notes", "Release notes", "The omega release.");
    assert_eq!(store.upsert(&v2).await.unwrap(), UpsertOutcome::Updated);
    assert_eq!(store.upsert(&v2).await.unwrap(), UpsertOutcome::Unchanged);
    let second = store.get("notes").await.unwrap().expect("v2");
    assert_eq!(second.body, v2.body);
    assert_eq!(second.content_hash, v2.content_hash);
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(store.count().await.unwrap(), 1);

    // The index follows the update.
    assert!(ids(store, "alpha").await.is_empty());
    assert_eq!(ids(store, "omega").await, ["notes"]);

    // Going back to an earlier version is an update, not "unchanged".
    assert_eq!(store.upsert(&v1).await.unwrap(), UpsertOutcome::Updated);
    assert_eq!(ids(store, "alpha").await, ["notes"]);
}

async fn concurrent_upserts_of_one_id(store: &dyn DocumentStore) {
    // Ingesters running side by side: exactly one of them inserts.
    let same = doc("shared", "Shared", "Written by many ingesters at once.");
    let outcomes = futures::future::join_all((0..8).map(|_| store.upsert(&same))).await;
    let outcomes: Vec<UpsertOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
    let inserted = outcomes
        .iter()
        .filter(|o| **o == UpsertOutcome::Inserted)
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| *o != UpsertOutcome::Updated),
        "{outcomes:?}"
    );

    // Different versions racing: each one replaces whatever is there.
    let versions: Vec<NewDocument> = (0..8)
        .map(|i| doc("shared", "Shared", &format!("Version number{i}.")))
        .collect();
    let outcomes = futures::future::join_all(versions.iter().map(|v| store.upsert(v))).await;
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), UpsertOutcome::Updated);
    }
    assert_eq!(store.count().await.unwrap(), 1);
    let last = store.get("shared").await.unwrap().expect("stored");
    assert!(
        versions
            .iter()
            .any(|v| v.body == last.body && v.content_hash == last.content_hash)
    );
}

async fn title_matches_rank_higher(store: &dyn DocumentStore) {
    put(
        store,
        &[
            doc(
                "b-body-once",
                "Release notes",
                "This release improves logging, metrics and tracing, adds a rollback \
                 command to the command line tool, and fixes several bugs in the \
                 scheduler and in the storage layer.",
            ),
            doc(
                "a-title-and-body",
                "Rollback guide",
                "How to rollback a release safely.",
            ),
            doc("c-unrelated", "Metrics", "Counters and histograms."),
        ],
    )
    .await;
    let page = search(store, "rollback").await;
    let ranked: Vec<&str> = page.hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ranked, ["a-title-and-body", "b-body-once"]);
    assert_eq!(page.total, 2);
    assert!(
        page.hits[0].score > page.hits[1].score,
        "higher is better: {:?}",
        page.hits
    );
    assert!(
        page.hits
            .iter()
            .all(|h| h.score.is_finite() && h.score > 0.0),
        "{:?}",
        page.hits
    );
    assert_eq!(page.hits[0].title, "Rollback guide");
}

async fn snippets_mark_matches(store: &dyn DocumentStore) {
    put(
        store,
        &[
            doc(
                "rollback",
                "Rollback guide",
                "How to rollback a release safely.",
            ),
            doc(
                "friday",
                "Deploys",
                "We deployed on Friday and nobody noticed.",
            ),
        ],
    )
    .await;
    let page = search(store, "rollback").await;
    let snippet = &page.hits[0].snippet;
    assert!(snippet.contains("**rollback**"), "{snippet:?}");
    assert!(
        snippet.contains("release"),
        "the snippet shows context: {snippet:?}"
    );

    // The word as written is marked, not the stem that matched.
    let page = search(store, "deploying").await;
    assert!(
        page.hits[0].snippet.contains("**deployed**"),
        "{:?}",
        page.hits[0].snippet
    );
}

async fn totals_and_paging(store: &dyn DocumentStore) {
    // Identical text, so scores tie and the order is by id on both backends;
    // inserted in reverse, so insertion order cannot pass for id order.
    let docs: Vec<NewDocument> = (1..=5)
        .rev()
        .map(|i| {
            doc(
                &format!("page-{i}"),
                &format!("Page {i}"),
                "Kubernetes operators.",
            )
        })
        .chain([doc("other", "Other", "Nomad jobs.")])
        .collect();
    put(store, &docs).await;

    let mut seen = Vec::new();
    for (offset, expected) in [(0, 2), (2, 2), (4, 1)] {
        let page = store.search("kubernetes", 2, offset).await.unwrap();
        assert_eq!(page.total, 5, "offset {offset}");
        assert_eq!(page.hits.len(), expected, "offset {offset}");
        seen.extend(page.hits.into_iter().map(|h| h.id));
    }
    assert_eq!(seen, ["page-1", "page-2", "page-3", "page-4", "page-5"]);

    // Past the end: no hits, but the total is still right.
    for offset in [5, 100, u32::MAX] {
        let page = store.search("kubernetes", 2, offset).await.unwrap();
        assert!(page.hits.is_empty(), "offset {offset}");
        assert_eq!(page.total, 5, "offset {offset}");
    }

    let none = store.search("zookeeper", 10, 0).await.unwrap();
    assert!(none.hits.is_empty());
    assert_eq!(none.total, 0);
    let none = store.search("zookeeper", 10, 10).await.unwrap();
    assert_eq!(none.total, 0);

    // An empty page still counts.
    let zero = store.search("kubernetes", 0, 0).await.unwrap();
    assert!(zero.hits.is_empty());
    assert_eq!(zero.total, 5);
}

async fn query_language(store: &dyn DocumentStore) {
    put(
        store,
        &[
            doc(
                "phrase",
                "Balancing",
                "Put the load balancer in front of the service.",
            ),
            doc(
                "scattered",
                "Balancers",
                "The balancer spreads load evenly.",
            ),
            doc("deploying", "Pipelines", "Deploying pipelines run nightly."),
            doc("deploys", "Shipping", "The bot deploys every hour."),
            doc("kube", "Kubernetes", "Kubernetes schedules pods."),
            doc("nomad", "Nomad", "Nomad schedules jobs."),
        ],
    )
    .await;

    // Words are ANDed, in any order; a phrase needs them adjacent and in order.
    assert_eq!(
        id_set(store, "load balancer").await,
        set(&["phrase", "scattered"])
    );
    assert_eq!(
        id_set(store, "balancer load").await,
        set(&["phrase", "scattered"])
    );
    assert_eq!(id_set(store, "\"load balancer\"").await, set(&["phrase"]));
    assert!(id_set(store, "\"balancer load\"").await.is_empty());

    // Prefixes are stemmed like words, and the stemmers differ at the edges:
    // both find "deploys" and "deploying" with `deploy*`, but "deployment" only
    // on PostgreSQL (Snowball stems it "deploy"; FTS5's Porter turns the
    // prefix into "deploi", which "deployment" is not stemmed to).
    assert_eq!(
        id_set(store, "deploy*").await,
        set(&["deploying", "deploys"])
    );
    assert_eq!(id_set(store, "kube*").await, set(&["kube"]));
    assert_eq!(
        id_set(store, "kubernetes OR nomad").await,
        set(&["kube", "nomad"])
    );
    assert_eq!(
        id_set(store, "schedules kubernetes OR nomad").await,
        set(&["kube", "nomad"])
    );
    assert!(id_set(store, "kubernetes nomad").await.is_empty());

    assert_eq!(id_set(store, "deploy* -nightly").await, set(&["deploys"]));
    assert_eq!(id_set(store, "schedules -pods").await, set(&["nomad"]));
    assert_eq!(
        id_set(store, "balancer -\"load balancer\"").await,
        set(&["scattered"])
    );

    // Phrases do not run from the title into the body.
    assert!(id_set(store, "\"pipelines deploying\"").await.is_empty());
    assert!(id_set(store, "\"shipping the\"").await.is_empty());

    // Case does not matter.
    assert_eq!(id_set(store, "KUBERNETES").await, set(&["kube"]));
}

async fn stemming(store: &dyn DocumentStore) {
    put(
        store,
        &[
            doc("deployed", "Friday", "We deployed on Friday."),
            doc("unrelated", "Monday", "We rested on Monday."),
        ],
    )
    .await;
    assert_eq!(ids(store, "deploying").await, ["deployed"]);
    assert_eq!(ids(store, "deploys").await, ["deployed"]);
    assert_eq!(ids(store, "deploy").await, ["deployed"]);
}

async fn common_words_are_searchable(store: &dyn DocumentStore) {
    // SQLite's FTS5 has no stop-word list; PostgreSQL's `english` one would
    // drop "the" and find nothing. The PostgreSQL schema indexes stop words so
    // that both find documents containing them.
    put(
        store,
        &[
            doc("with-the", "Foxes", "The quick fox."),
            doc("without", "Foxes", "A quick fox."),
            doc("phrase", "Hamlet", "To be, or not to be."),
        ],
    )
    .await;
    assert_eq!(ids(store, "the").await, ["with-the"]);
    assert_eq!(
        id_set(store, "quick fox").await,
        set(&["with-the", "without"])
    );
    assert_eq!(ids(store, "\"the quick\"").await, ["with-the"]);
    assert_eq!(ids(store, "\"to be or not to be\"").await, ["phrase"]);
    assert!(ids(store, "\"a fox\"").await.is_empty());
}

async fn punctuation_splits_words(store: &dyn DocumentStore) {
    // Both backends index `README.md` as the words "readme md", like the query
    // parser splits it (PostgreSQL's parser alone would keep it whole).
    put(
        store,
        &[
            doc(
                "technical",
                "Setup",
                "Edit README.md, then visit example.com and upgrade to v1.2.3. \
                 Set tcp_nodelay in /etc/app.conf. It returns Vec<String>.",
            ),
            doc("plain", "Plain", "Nothing technical here."),
        ],
    )
    .await;
    for query in [
        "README.md",
        "readme",
        "example.com",
        "\"example com\"",
        "v1.2.3",
        "tcp_nodelay",
        "nodelay",
        "/etc/app.conf",
        "Vec<String>",
        "String",
    ] {
        assert_eq!(ids(store, query).await, ["technical"], "query {query:?}");
    }
}

async fn unicode_text(store: &dyn DocumentStore) {
    put(
        store,
        &[
            doc(
                "cafe",
                "Café notes",
                "The café serves crème brûlée. Straße und Größe. 東京",
            ),
            doc("plain", "Plain", "Coffee and tea."),
        ],
    )
    .await;
    for query in ["café", "CAFÉ", "crème", "brûlée", "größe", "straße", "東京"] {
        assert_eq!(ids(store, query).await, ["cafe"], "query {query:?}");
    }
    let page = search(store, "café").await;
    assert!(
        page.hits[0].snippet.contains("**café**"),
        "{:?}",
        page.hits[0].snippet
    );
    // Differs by backend, so only "no error" is asserted: SQLite's tokenizer
    // removes diacritics (`remove_diacritics 2`), so there "cafe" also finds
    // "café"; PostgreSQL's configuration keeps them and "cafe" finds nothing
    // (agreeing would need the `unaccent` extension, which a migration cannot
    // count on being installable).
    store.search("cafe", 10, 0).await.unwrap();
}

async fn invalid_queries_are_caller_errors(store: &dyn DocumentStore) {
    put(store, &[doc("any", "Any", "Some text.")]).await;
    let too_long = "a".repeat(MAX_QUERY_BYTES + 1);
    for query in [
        "\"unclosed",
        "OR",
        "-only",
        "",
        "   ",
        "!!!",
        "rust OR",
        "OR rust",
        "go OR -rust",
        &too_long,
    ] {
        match store.search(query, 10, 0).await {
            Err(StoreError::InvalidQuery(message)) => assert!(!message.is_empty()),
            other => panic!(
                "{query:?} on {}: expected InvalidQuery, got {other:?}",
                store.backend()
            ),
        }
    }
}

async fn engine_syntax_is_plain_text(store: &dyn DocumentStore) {
    put(store, &[doc("any", "Title", "foo bar baz")]).await;
    // FTS5 and tsquery operators in user text are words or punctuation to us:
    // a query may match or be rejected as ours, but never reach the engine as
    // syntax (a database error).
    for query in [
        "title:foo",
        "NEAR(foo bar)",
        "foo & bar | !baz",
        "foo:*",
        "'foo'",
        "foo <-> bar",
        "foo AND bar",
        "NOT foo",
        "(foo",
        "foo)",
        "*",
        "^foo",
        "foo\\",
        "foo\0bar",
        "{title body}: foo",
        "\"\"",
        "-",
        "--foo bar",
    ] {
        match store.search(query, 10, 0).await {
            Ok(_) | Err(StoreError::InvalidQuery(_)) => {}
            Err(other) => panic!("{query:?} on {}: {other}", store.backend()),
        }
    }
    assert_eq!(
        ids(store, "title:foo").await,
        Vec::<String>::new(),
        "the phrase \"title foo\""
    );
    assert_eq!(ids(store, "foo:*").await, ["any"]);
}

async fn list_and_count(store: &dyn DocumentStore) {
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(store.list(10, 0).await.unwrap().is_empty());
    put(
        store,
        &[
            doc("b", "Bee", "x"),
            doc("B", "Big bee", "x"),
            doc("a_b", "Underscore", "x"),
            doc("a-b", "Hyphen", "x"),
            doc("a", "Ay", "x"),
        ],
    )
    .await;
    assert_eq!(store.count().await.unwrap(), 5);

    // Byte order of the id, whatever the database's locale.
    let all = store.list(10, 0).await.unwrap();
    let order: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(order, ["B", "a", "a-b", "a_b", "b"]);
    assert_eq!(all[0].title, "Big bee");

    let page: Vec<String> = store
        .list(2, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(page, ["a", "a-b"]);
    assert!(store.list(10, 5).await.unwrap().is_empty());
    assert!(store.list(0, 0).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Backends

/// A store on a database of its own, removed when the fixture is dropped.
struct Fixture {
    store: Arc<dyn DocumentStore>,
    url: String,
    // Declared after `store`, so it runs once the store is gone.
    _cleanup: Cleanup,
}

enum Cleanup {
    Dir { _dir: tempfile::TempDir },
    Database { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Cleanup::Database { admin_url, name } = self else {
            return;
        };
        // Best effort, and on its own thread: `Drop` cannot await, and this
        // also runs while a failed test unwinds.
        let (admin_url, name) = (admin_url.clone(), name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    // FORCE: the dropped store's pool may still hold connections.
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&sql).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = SqliteStore::connect(&url).await.expect("open SQLite store");
        Self {
            store: Arc::new(store),
            url,
            _cleanup: Cleanup::Dir { _dir: dir },
        }
    }

    async fn postgres() -> Self {
        let admin_url = std::env::var("MCPSHIP_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(e) => panic!("{}", unreachable_message(&admin_url, &e)),
        };
        let name = format!("mcpship_test_{:016x}", random_u64());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        // From here on the database is dropped even if connecting fails.
        let cleanup = Cleanup::Database {
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let url = with_database(&admin_url, &name);
        let store = store::PostgresStore::connect(&url)
            .await
            .expect("open PostgreSQL store");
        Self {
            store: Arc::new(store),
            url,
            _cleanup: cleanup,
        }
    }
}

fn unreachable_message(url: &str, error: &sqlx::Error) -> String {
    let why = if std::env::var("CI").as_deref() == Ok("true") {
        "CI=true: the PostgreSQL store tests are required in CI"
    } else {
        "the PostgreSQL store tests do not skip"
    };
    format!(
        "PostgreSQL is not reachable at {} ({error}); {why}. Start a server \
         (`ensure_postgres` in scripts/lib/services.sh does) or point \
         MCPSHIP_TEST_POSTGRES_URL at one.",
        store::redact_url(url)
    )
}

fn random_u64() -> u64 {
    // RandomState is seeded randomly per process and per instance: enough to
    // keep concurrent test runs on one server from colliding, with no extra crate.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// `url` with its database name replaced by `name`, keeping any `?options`.
fn with_database(url: &str, name: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match params {
        Some(params) => format!("{server}/{name}?{params}"),
        None => format!("{server}/{name}"),
    }
}

/// Reopening an existing database (migrations already applied) through the
/// URL dispatcher keeps its documents.
async fn reopen(fixture: &Fixture, backend: &str) {
    put(
        &*fixture.store,
        &[doc("kept", "Kept", "Still here after reopening.")],
    )
    .await;
    let again = store::open(&fixture.url).await.expect("reopen");
    assert_eq!(again.backend(), backend);
    assert_eq!(fixture.store.backend(), backend);
    assert_eq!(again.count().await.unwrap(), 1);
    assert_eq!(ids(&*again, "reopening").await, ["kept"]);
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$test(&*fixture.store).await;
                }
            )*

            #[tokio::test]
            async fn reopen() {
                super::reopen(&super::Fixture::sqlite().await, "sqlite").await;
            }
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let fixture = super::Fixture::postgres().await;
                    super::$test(&*fixture.store).await;
                }
            )*

            #[tokio::test]
            async fn reopen() {
                super::reopen(&super::Fixture::postgres().await, "postgres").await;
            }
        }
    };
}

suite!(
    round_trip,
    unknown_ids_are_none,
    upsert_is_idempotent_by_content_hash,
    concurrent_upserts_of_one_id,
    title_matches_rank_higher,
    snippets_mark_matches,
    totals_and_paging,
    query_language,
    stemming,
    common_words_are_searchable,
    punctuation_splits_words,
    unicode_text,
    invalid_queries_are_caller_errors,
    engine_syntax_is_plain_text,
    list_and_count,
);

#[test]
fn database_names_in_urls_are_replaced() {
    assert_eq!(
        with_database("postgres://u@h:1/postgres", "t"),
        "postgres://u@h:1/t"
    );
    assert_eq!(with_database("postgres://u@h:1", "t"), "postgres://u@h:1/t");
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "t"),
        "postgresql://u:p@h/t?sslmode=disable"
    );
}
