//! The search query language, parsed once and rendered for each engine.
//!
//! Users type web-search style queries; each backend has its own syntax (FTS5
//! `MATCH`, PostgreSQL `tsquery`) with its own failure modes. Parsing here and
//! rendering per engine means both backends accept and reject exactly the same
//! queries, with the same messages, and raw engine syntax never reaches SQL.
//!
//! Grammar (case-sensitive `OR`):
//! - `word`: must occur (terms are ANDed);
//! - `"a phrase"`: the words in order;
//! - `word*`: prefix match;
//! - `a OR b`: either;
//! - `-word` / `-"a phrase"`: must not occur.
//!
//! Words are split on anything that is not a letter or digit, so `tcp_nodelay`
//! searches for the phrase "tcp nodelay", as both engines' tokenizers index it.

use crate::store::StoreError;

/// One searchable unit: a word or a phrase, optionally a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Lower-cased tokens; more than one means a phrase.
    pub tokens: Vec<String>,
    /// The last token matches as a prefix.
    pub prefix: bool,
}

/// A parsed query: every group must match (each group is an OR of terms), and
/// no excluded term may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub groups: Vec<Vec<Term>>,
    pub excluded: Vec<Term>,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidQuery(message.into())
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

enum Lexeme {
    Term { text: String, negated: bool },
    Or,
}

fn lex(input: &str) -> Result<Vec<Lexeme>, StoreError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        match chars.peek() {
            Some(&(start, '"')) => {
                chars.next();
                let mut text = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    text.push(c);
                }
                if !closed {
                    return Err(invalid(format!(
                        "the quote at character {} is never closed; add a closing \"",
                        start + 1
                    )));
                }
                // A `*` straight after a closing quote makes the phrase a prefix.
                if let Some(&(_, '*')) = chars.peek() {
                    chars.next();
                    text.push('*');
                }
                out.push(Lexeme::Term { text, negated });
            }
            Some(_) => {
                let mut text = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || c == '"' {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                if text == "OR" && !negated {
                    out.push(Lexeme::Or);
                } else {
                    out.push(Lexeme::Term { text, negated });
                }
            }
            None => {}
        }
    }
    Ok(out)
}

fn term(text: &str) -> Option<Term> {
    let prefix = text.ends_with('*');
    let tokens = tokens(text);
    (!tokens.is_empty()).then_some(Term { tokens, prefix })
}

/// Parses user text into a [`Query`], or explains what is wrong with it.
pub fn parse(input: &str) -> Result<Query, StoreError> {
    let mut groups: Vec<Vec<Term>> = Vec::new();
    let mut excluded = Vec::new();
    let mut pending_or = false;
    for lexeme in lex(input)? {
        match lexeme {
            Lexeme::Or => {
                if groups.is_empty() || pending_or {
                    return Err(invalid("OR must stand between two search terms"));
                }
                pending_or = true;
            }
            Lexeme::Term { text, negated, .. } => {
                let Some(term) = term(&text) else {
                    // Pure punctuation: nothing to search for in this word.
                    continue;
                };
                if negated {
                    if pending_or {
                        return Err(invalid("OR cannot join an excluded (-) term"));
                    }
                    excluded.push(term);
                } else if pending_or {
                    groups.last_mut().expect("checked non-empty").push(term);
                    pending_or = false;
                } else {
                    groups.push(vec![term]);
                }
            }
        }
    }
    if pending_or {
        return Err(invalid("OR must stand between two search terms"));
    }
    if groups.is_empty() {
        return Err(invalid(if excluded.is_empty() {
            "the query has no words to search for"
        } else {
            "the query only excludes terms; add at least one word to search for"
        }));
    }
    Ok(Query { groups, excluded })
}

impl Query {
    /// Renders an FTS5 `MATCH` expression. Every token is double-quoted, so no
    /// user text is interpreted as FTS5 syntax.
    pub fn to_fts5(&self) -> String {
        fn render(term: &Term) -> String {
            let mut s = format!("\"{}\"", term.tokens.join(" "));
            if term.prefix {
                s.push('*');
            }
            s
        }
        fn any(terms: &[Term]) -> String {
            let parts: Vec<String> = terms.iter().map(render).collect();
            format!("({})", parts.join(" OR "))
        }
        let positive: Vec<String> = self.groups.iter().map(|g| any(g)).collect();
        let mut expr = format!("({})", positive.join(" AND "));
        if !self.excluded.is_empty() {
            expr = format!("{expr} NOT {}", any(&self.excluded));
        }
        expr
    }

    /// Renders a PostgreSQL `to_tsquery` input. Tokens are quoted lexemes
    /// (letters and digits only, so they need no escaping) and go through the
    /// text search configuration's stemmer like indexed text does.
    pub fn to_tsquery(&self) -> String {
        fn render(term: &Term) -> String {
            let last = term.tokens.len() - 1;
            let words: Vec<String> = term
                .tokens
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if term.prefix && i == last {
                        format!("'{t}':*")
                    } else {
                        format!("'{t}'")
                    }
                })
                .collect();
            format!("({})", words.join(" <-> "))
        }
        fn any(terms: &[Term]) -> String {
            let parts: Vec<String> = terms.iter().map(render).collect();
            format!("({})", parts.join(" | "))
        }
        let mut parts: Vec<String> = self.groups.iter().map(|g| any(g)).collect();
        parts.extend(self.excluded.iter().map(|t| format!("!{}", render(t))));
        parts.join(" & ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str], prefix: bool) -> Term {
        Term {
            tokens: words.iter().map(|s| s.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn words_are_anded_and_lowercased() {
        let q = parse("Rust  Server").unwrap();
        assert_eq!(
            q.groups,
            vec![vec![t(&["rust"], false)], vec![t(&["server"], false)]]
        );
        assert_eq!(q.to_fts5(), r#"(("rust") AND ("server"))"#);
        assert_eq!(q.to_tsquery(), "(('rust')) & (('server'))");
    }

    #[test]
    fn phrases_prefixes_or_and_exclusion() {
        let q = parse(r#""load balancer" deploy* OR rollout -lambda"#).unwrap();
        assert_eq!(q.groups[0], vec![t(&["load", "balancer"], false)]);
        assert_eq!(
            q.groups[1],
            vec![t(&["deploy"], true), t(&["rollout"], false)]
        );
        assert_eq!(q.excluded, vec![t(&["lambda"], false)]);
        assert_eq!(
            q.to_fts5(),
            r#"(("load balancer") AND ("deploy"* OR "rollout")) NOT ("lambda")"#
        );
        assert_eq!(
            q.to_tsquery(),
            "(('load' <-> 'balancer')) & (('deploy':*) | ('rollout')) & !('lambda')"
        );
    }

    #[test]
    fn punctuation_splits_words_into_phrases() {
        let q = parse("tcp_nodelay").unwrap();
        assert_eq!(q.groups, vec![vec![t(&["tcp", "nodelay"], false)]]);
    }

    #[test]
    fn engine_syntax_is_quoted_away() {
        // FTS5 column filters, NEAR and carets are plain words to us.
        let q = parse("title:foo NEAR(a b) ^x").unwrap();
        assert!(!q.to_fts5().contains(':'));
        assert!(!q.to_tsquery().contains("NEAR"));
    }

    #[test]
    fn malformed_queries_are_explained() {
        for (input, needle) in [
            ("", "no words"),
            ("  !!! ", "no words"),
            ("\"open phrase", "never closed"),
            ("OR rust", "between two"),
            ("rust OR", "between two"),
            ("rust OR OR go", "between two"),
            ("-rust", "only excludes"),
            ("go OR -rust", "excluded"),
        ] {
            let err = parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }
}
