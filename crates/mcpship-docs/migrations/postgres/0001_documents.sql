-- Documents and their full-text index.
--
-- The search behaviour must match the SQLite backend (FTS5, `porter unicode61`),
-- so two choices differ from a stock `to_tsvector('english', …)`:
--
-- 1. `mcpship_english` is the `english` configuration with a stemmer that has
--    no stop-word list. FTS5 has no stop words: there, `the` finds every
--    document containing "the". With PostgreSQL's stop words the same query
--    would find nothing, and `"the load balancer"` would match different text.
--
-- 2. ASCII punctuation is replaced by spaces before parsing. PostgreSQL's
--    parser keeps `README.md`, `example.com`, `1.2.3` and `/usr/bin` as single
--    tokens (file, host, version) and drops `<T>` as an XML tag; FTS5 and the
--    query parser (`query.rs`) split all of these into words. Splitting them
--    here too makes `README.md` (the phrase "readme md") match in both.
--
-- 3. A placeholder lexeme (`-`, which no query can produce) sits between
--    title and body. `||` numbers the body's positions right after the title's,
--    so without it the phrase "guide how" would match the title "… guide" and a
--    body starting "How …"; FTS5 phrases never span columns.
--
-- Weights: title `A`, body `B`, so a title match counts more in `ts_rank_cd`.

CREATE TEXT SEARCH DICTIONARY mcpship_english_stem (
    TEMPLATE = snowball,
    LANGUAGE = english
);

CREATE TEXT SEARCH CONFIGURATION mcpship_english (COPY = english);

ALTER TEXT SEARCH CONFIGURATION mcpship_english
    ALTER MAPPING REPLACE english_stem WITH mcpship_english_stem;

CREATE TABLE documents (
    -- Byte order, as SQLite's BINARY collation: listings and ties in ranking
    -- come out in the same order on both backends, whatever the server locale.
    id           TEXT COLLATE "C" PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    source       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    tsv          TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('mcpship_english', regexp_replace(title, '[[:punct:]]+', ' ', 'g')), 'A')
        || '-:1'::tsvector
        || setweight(to_tsvector('mcpship_english', regexp_replace(body, '[[:punct:]]+', ' ', 'g')), 'B')
    ) STORED
);

CREATE INDEX documents_tsv_idx ON documents USING GIN (tsv);
