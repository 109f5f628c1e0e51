//! The deploy kit (Terraform alarms, dashboards, saved queries under
//! `deploy/`) may only use names the server really emits: EMF metrics and
//! dimensions in the `MCPShip` namespace, Logs Insights fields, and
//! Prometheus series, all listed in `mcpship::telemetry::names`.
//!
//! Skips (and says so) while `deploy/terraform` does not exist; fails when it
//! exists and references a name the server does not emit.
//!
//! What is scanned, in `deploy/**/*.tf` and `deploy/**/*.json`:
//! - `metric_name = "X"` / `"MetricName": "X"` in a block or object whose
//!   namespace is `MCPShip` (or not an `AWS/…` one), and dashboard metric
//!   arrays `["MCPShip", "X", "Dim", value, …]` (and the `"."` shorthand
//!   that repeats them): X must be an EMF metric, each Dim an EMF dimension
//!   (or one set with `MCPSHIP_EMF_DIMENSIONS` in the kit);
//! - Logs Insights queries (`query_string`, `query`, `queryString` values,
//!   heredocs included): every field they read must be a log field;
//! - `mcpship_*` Prometheus series names;
//! - `telemetry` objects of JSON files (`deploy/contract.json`): metric names
//!   and units, dimensions, the namespace, tool events and log fields.
//!
//! Terraform that keeps its names in `locals` (`local.telemetry.log_fields`,
//! aliases like `f = local.telemetry.log_fields`, `${local.f.tool}` in query
//! heredocs) is resolved first; `var.emf_namespace` counts as the `MCPShip`
//! namespace. Heredocs that read as Logs Insights queries (starting with
//! `fields`, `filter`, `stats`, `parse`, `sort` or `SOURCE`) are queries.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use mcpship::telemetry::names;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !name.starts_with('.') {
                files(&path, out);
            }
        } else if name.ends_with(".tf") || name.ends_with(".json") {
            out.push(path);
        }
    }
}

/// Quoted strings of `text`, with the byte offset of each.
fn strings(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' || (bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'/')) {
            // A comment (HCL): skip the line. JSON has none.
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if bytes[i] == b'"' {
            let start = i;
            let mut s = String::new();
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    match bytes[i + 1] {
                        b'n' => s.push('\n'),
                        b't' => s.push('\t'),
                        c => s.push(c as char),
                    }
                    i += 2;
                    continue;
                }
                let ch = text[i..].chars().next().unwrap();
                s.push(ch);
                i += ch.len_utf8();
            }
            out.push((start, s));
        }
        i += 1;
    }
    out
}

/// Values of `key = "v"` (HCL) and `"key": "v"` (JSON), and HCL heredocs
/// `key = <<EOT … EOT`.
fn values_of(text: &str, keys: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for key in keys {
        for (pos, _) in text.match_indices(key) {
            let before = text[..pos].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut rest = &text[pos + key.len()..];
            rest = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            let Some(r) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) else {
                continue;
            };
            let r = r.trim_start();
            if let Some(h) = r.strip_prefix("<<") {
                let h = h.strip_prefix('-').unwrap_or(h);
                let (tag, body) = h.split_once('\n').unwrap_or((h, ""));
                let tag = tag.trim();
                let end = body
                    .lines()
                    .position(|l| l.trim() == tag)
                    .unwrap_or(body.lines().count());
                out.push(body.lines().take(end).collect::<Vec<_>>().join("\n"));
            } else if r.starts_with('"')
                && let Some((_, s)) = strings(r).into_iter().next()
            {
                out.push(s);
            }
        }
    }
    out
}

/// The innermost `{ … }` block of `text` around byte offset `at`.
fn enclosing_blocks(text: &str, at: usize) -> &str {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut start = 0;
    for i in (0..at).rev() {
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth == 0 => {
                start = i;
                break;
            }
            b'{' => depth -= 1,
            _ => {}
        }
    }
    let mut depth = 0i32;
    let mut end = text.len();
    for (i, &b) in bytes.iter().enumerate().skip(at) {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => {
                end = i + 1;
                break;
            }
            b'}' => depth -= 1,
            _ => {}
        }
    }
    &text[start..end]
}

#[derive(Debug, Default)]
struct Found {
    emf_metrics: BTreeSet<String>,
    emf_dimensions: BTreeSet<String>,
    log_fields: BTreeSet<String>,
    prometheus: BTreeSet<String>,
    extra_dimensions: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    emf_units: BTreeSet<(String, String)>,
    events: BTreeSet<String>,
}

/// Resolves `local.…` references of HCL to the string values the `locals`
/// blocks assign, following aliases (`f = local.telemetry.log_fields`);
/// `${local.x}` becomes the bare value, a bare `local.x` a quoted one.
/// Interpolations that stay unresolved are dropped.
fn resolve_locals(text: &str) -> String {
    use std::collections::HashMap;
    let mut values: HashMap<String, String> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut path: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    for line in text.lines() {
        let l = line.trim();
        if let Some((key, value)) = l.split_once('=') {
            let key = key.trim().trim_matches('"');
            let value = value.trim();
            let ident = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if ident && value == "{" {
                path.push((key.to_owned(), depth));
            } else if ident && value.starts_with('"') && value.ends_with('"') && value.len() >= 2 {
                let mut full: Vec<&str> = path.iter().map(|(p, _)| p.as_str()).collect();
                full.push(key);
                values.insert(full.join("."), value[1..value.len() - 1].to_owned());
            } else if ident
                && let Some(target) = value.strip_prefix("local.")
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                aliases.insert(key.to_owned(), target.to_owned());
            }
        }
        for c in l.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    while path.last().is_some_and(|(_, d)| *d >= depth) {
                        path.pop();
                    }
                }
                _ => {}
            }
        }
    }
    let lookup = |reference: &str| -> Option<String> {
        if reference == "var.emf_namespace" {
            return Some(names::emf::NAMESPACE.to_owned());
        }
        let mut r = reference.strip_prefix("local.")?.to_owned();
        for _ in 0..8 {
            let (head, tail) = r.split_once('.').unwrap_or((r.as_str(), ""));
            match aliases.get(head) {
                Some(target) if !tail.is_empty() => r = format!("{target}.{tail}"),
                Some(target) => r = target.clone(),
                None => break,
            }
        }
        // Values were recorded under their block path (`locals.telemetry…`).
        values
            .iter()
            .find(|(k, _)| k.ends_with(&format!(".{r}")) || **k == r)
            .map(|(_, v)| v.clone())
            .or_else(|| (r.ends_with("namespace")).then(|| names::emf::NAMESPACE.to_owned()))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix("${") {
            let end = inner.find('}').unwrap_or(inner.len());
            let expr = inner[..end].trim();
            if let Some(v) = lookup(expr) {
                out.push_str(&v);
            } else {
                out.push(' ');
            }
            rest = inner.get(end + 1..).unwrap_or("");
            continue;
        }
        let starts_reference = (rest.starts_with("local.")
            || rest.starts_with("var.emf_namespace"))
            && !out
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if starts_reference {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            if let Some(v) = lookup(&rest[..len]) {
                out.push('"');
                out.push_str(&v);
                out.push('"');
                rest = &rest[len..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Bodies of HCL heredocs that read as Logs Insights queries.
fn query_heredocs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (pos, _) in text.match_indices("<<") {
        let h = &text[pos + 2..];
        let h = h.strip_prefix('-').unwrap_or(h);
        let Some((tag, body)) = h.split_once('\n') else {
            continue;
        };
        let tag = tag.trim();
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let lines: Vec<&str> = body.lines().take_while(|l| l.trim() != tag).collect();
        let first = lines
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .unwrap_or("");
        if ["fields", "filter", "stats", "parse", "sort", "SOURCE"]
            .iter()
            .any(|k| first.starts_with(&format!("{k} ")))
        {
            out.push(lines.join("\n"));
        }
    }
    out
}

/// The `telemetry` objects of a JSON document (a deploy contract).
fn scan_json_contract(value: &serde_json::Value, found: &mut Found) {
    use serde_json::Value;
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for item in items {
                scan_json_contract(item, found);
            }
        }
        return;
    };
    for (key, v) in map {
        if key == "telemetry"
            && let Value::Object(t) = v
        {
            if let Some(Value::String(ns)) = t.get("emf_namespace") {
                found.namespaces.insert(ns.clone());
            }
            if let Some(Value::Object(metrics)) = t.get("metrics") {
                for m in metrics.values() {
                    if let Some(Value::String(name)) = m.get("name") {
                        found.emf_metrics.insert(name.clone());
                        if let Some(Value::String(unit)) = m.get("unit") {
                            found.emf_units.insert((name.clone(), unit.clone()));
                        }
                    }
                }
            }
            if let Some(Value::Array(dims)) = t.get("dimensions") {
                for d in dims.iter().filter_map(Value::as_str) {
                    found.emf_dimensions.insert(d.to_owned());
                }
            }
            for (k, v) in t {
                let list: Vec<&str> = match v {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    Value::Object(o) => o.values().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                if k.ends_with("events") {
                    found.events.extend(list.iter().map(|s| s.to_string()));
                } else if k.ends_with("log_fields") {
                    found.log_fields.extend(list.iter().map(|s| s.to_string()));
                }
            }
        }
        scan_json_contract(v, found);
    }
}

fn scan(text: &str, found: &mut Found) {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        scan_json_contract(&json, found);
    }
    let resolved = resolve_locals(text);
    let text = resolved.as_str();
    for query in query_heredocs(text) {
        for field in query_fields(&query) {
            found.log_fields.insert(field);
        }
    }
    // Extra EMF dimensions the kit configures.
    for v in values_of(text, &["MCPSHIP_EMF_DIMENSIONS"]) {
        for pair in v.split(',') {
            if let Some((k, _)) = pair.split_once('=') {
                found.extra_dimensions.insert(k.trim().to_owned());
            }
        }
    }
    // `{ "name": "MCPSHIP_EMF_DIMENSIONS", "value": "…" }` (ECS container env).
    if let Some(i) = text.find("MCPSHIP_EMF_DIMENSIONS") {
        for v in values_of(enclosing_blocks(text, i), &["value"]) {
            for pair in v.split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    found.extra_dimensions.insert(k.trim().to_owned());
                }
            }
        }
    }

    // Alarms: metric_name in a non-AWS namespace.
    for key in ["metric_name", "MetricName", "metricName"] {
        for (pos, _) in text.match_indices(key) {
            let block = enclosing_blocks(text, pos);
            let namespace = values_of(block, &["namespace", "Namespace"]);
            if namespace.iter().any(|n| n.starts_with("AWS/")) {
                continue;
            }
            let own = namespace.iter().any(|n| n == names::emf::NAMESPACE)
                || block.contains("emf_namespace");
            for name in values_of(block, &[key]) {
                if name.starts_with("mcpship_") {
                    found.prometheus.insert(name);
                } else if own {
                    found.emf_metrics.insert(name);
                }
            }
            if own {
                for dims in ["dimensions", "Dimensions"] {
                    if let Some(i) = block.find(dims) {
                        let inner = &block[i..];
                        if let Some(open) = inner.find(['{', '[']) {
                            let body = enclosing_blocks(inner, open + 1);
                            // HCL `{ Service = x, Tool = y }` keys.
                            for part in body.split([',', '\n']) {
                                if let Some((k, _)) = part.split_once('=') {
                                    let k = k.trim().trim_matches(['{', '"', ' ']);
                                    if !k.is_empty()
                                        && k.chars().all(|c| c.is_alphanumeric() || c == '_')
                                    {
                                        found.emf_dimensions.insert(k.to_owned());
                                    }
                                }
                            }
                            for name in values_of(body, &["Name", "name"]) {
                                found.emf_dimensions.insert(name);
                            }
                        }
                    }
                }
            }
        }
    }

    // Dashboard metric arrays: ["MCPShip", "Metric", "Dim", value, "Dim", value, {...}].
    let strs = strings(text);
    let mut in_ours = false;
    for (i, (pos, s)) in strs.iter().enumerate() {
        let prev = text[..*pos].trim_end();
        if !prev.ends_with('[') {
            continue;
        }
        let ns = s.as_str();
        if ns == "." {
            if !in_ours {
                continue;
            }
        } else if ns == names::emf::NAMESPACE {
            in_ours = true;
        } else {
            in_ours = false;
            continue;
        }
        if let Some((_, metric)) = strs.get(i + 1)
            && metric != "."
        {
            found.emf_metrics.insert(metric.clone());
        }
        // Dimension names are the strings at odd positions after the metric,
        // up to the closing bracket of this array.
        let end = text[*pos..].find(']').map_or(text.len(), |e| pos + e);
        let dims: Vec<&String> = strs
            .iter()
            .skip(i + 2)
            .take_while(|(p, _)| *p < end)
            .map(|(_, s)| s)
            .collect();
        for (j, d) in dims.iter().enumerate() {
            if j % 2 == 0 && *d != "." && !d.starts_with('{') {
                found.emf_dimensions.insert((*d).clone());
            }
        }
    }

    // Logs Insights queries.
    for query in values_of(text, &["query_string", "queryString", "query"]) {
        for field in query_fields(&query) {
            found.log_fields.insert(field);
        }
    }

    // Prometheus series.
    let mut rest = text;
    while let Some(i) = rest.find("mcpship_") {
        let tail = &rest[i..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..len];
        let before = rest[..i].chars().last();
        let is_series = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && [
                "_total",
                "_seconds",
                "_bucket",
                "_sum",
                "_count",
                "_requests",
                "_streams",
                "_sessions",
                "_state",
                "_info",
            ]
            .iter()
            .any(|s| name.ends_with(s));
        if is_series {
            found.prometheus.insert(name.to_owned());
        }
        rest = &tail[len..];
    }
}

/// Fields a Logs Insights query reads (not the ones it defines with `as`).
fn query_fields(query: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "fields",
        "filter",
        "stats",
        "sort",
        "limit",
        "display",
        "parse",
        "dedup",
        "by",
        "as",
        "and",
        "or",
        "not",
        "in",
        "like",
        "desc",
        "asc",
        "source",
        "avg",
        "pct",
        "count",
        "count_distinct",
        "sum",
        "min",
        "max",
        "stddev",
        "earliest",
        "latest",
        "sortsFirst",
        "sortsLast",
        "bin",
        "ispresent",
        "isempty",
        "isblank",
        "strcontains",
        "concat",
        "strlen",
        "toupper",
        "tolower",
        "trim",
        "ltrim",
        "rtrim",
        "substr",
        "replace",
        "abs",
        "ceil",
        "floor",
        "greatest",
        "least",
        "log",
        "sqrt",
        "datefloor",
        "dateceil",
        "fromMillis",
        "toMillis",
        "coalesce",
        "ispresent",
        "tostring",
        "tonumber",
        "unmask",
        "pattern",
        "diff",
        "anomaly",
        "regex",
        "true",
        "false",
        "null",
        "unnest",
        "filterIndex",
        "SOURCE",
    ];
    let mut text = String::new();
    // Drop string literals, regex literals and `@` fields.
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                text.push(' ');
            }
            '/' => {
                for d in chars.by_ref() {
                    if d == '/' {
                        break;
                    }
                }
                text.push(' ');
            }
            '`' => {
                let mut name = String::new();
                for d in chars.by_ref() {
                    if d == '`' {
                        break;
                    }
                    name.push(d);
                }
                text.push_str(&format!(" `{name}` "));
            }
            _ => text.push(c),
        }
    }
    let tokens: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || "_.@`".contains(c)))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let aliases: BTreeSet<&str> = tokens
        .windows(2)
        .filter(|w| w[0] == "as")
        .map(|w| w[1].as_str())
        .collect();
    tokens
        .iter()
        .map(|t| t.trim_matches('`').to_owned())
        .filter(|t| {
            !t.starts_with('@')
                && !WORDS.contains(&t.as_str())
                && !aliases.contains(t.as_str())
                && !t.chars().next().is_some_and(|c| c.is_ascii_digit())
                && !t.is_empty()
        })
        .collect()
}

fn unknown(found: &Found) -> Vec<String> {
    let mut errors = Vec::new();
    for ns in &found.namespaces {
        if ns != names::emf::NAMESPACE {
            errors.push(format!(
                "EMF namespace {ns:?} (the server's default is {:?})",
                names::emf::NAMESPACE
            ));
        }
    }
    for (metric, unit) in &found.emf_units {
        if !names::EMF_METRIC_UNITS.contains(&(metric.as_str(), unit.as_str())) {
            errors.push(format!(
                "EMF metric {metric:?} with unit {unit:?} (emitted: {:?})",
                names::EMF_METRIC_UNITS
            ));
        }
    }
    for e in &found.events {
        if !names::LOG_EVENTS.contains(&e.as_str()) {
            errors.push(format!(
                "log event {e:?} (emitted: {:?})",
                names::LOG_EVENTS
            ));
        }
    }
    for m in &found.emf_metrics {
        if !names::EMF_METRICS.contains(&m.as_str()) {
            errors.push(format!(
                "EMF metric {m:?} (known: {:?})",
                names::EMF_METRICS
            ));
        }
    }
    for d in &found.emf_dimensions {
        if !names::EMF_DIMENSIONS.contains(&d.as_str()) && !found.extra_dimensions.contains(d) {
            errors.push(format!(
                "EMF dimension {d:?} (known: {:?}, or set it with MCPSHIP_EMF_DIMENSIONS)",
                names::EMF_DIMENSIONS
            ));
        }
    }
    for f in &found.log_fields {
        if !names::LOG_FIELDS.contains(&f.as_str()) {
            errors.push(format!("log field {f:?} in a Logs Insights query"));
        }
    }
    let series = names::prometheus_series();
    for p in &found.prometheus {
        if !series.contains(p) {
            errors.push(format!("Prometheus series {p:?}"));
        }
    }
    errors
}

#[test]
fn deploy_kit_uses_only_emitted_names() {
    // MCPSHIP_DEPLOY_ROOT checks another checkout's deploy/ (e.g. before a merge).
    let root = std::env::var_os("MCPSHIP_DEPLOY_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(workspace_root);
    let terraform = root.join("deploy/terraform");
    if !terraform.is_dir() {
        println!(
            "SKIP: {} does not exist yet; nothing to check",
            terraform.display()
        );
        return;
    }
    let mut paths = Vec::new();
    files(&root.join("deploy"), &mut paths);
    let mut found = Found::default();
    let mut problems = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let mut here = Found::default();
        scan(&text, &mut here);
        found
            .extra_dimensions
            .extend(here.extra_dimensions.iter().cloned());
        found.emf_metrics.extend(here.emf_metrics.iter().cloned());
        found
            .emf_dimensions
            .extend(here.emf_dimensions.iter().cloned());
        found.log_fields.extend(here.log_fields.iter().cloned());
        found.prometheus.extend(here.prometheus.iter().cloned());
        for e in unknown(&Found {
            extra_dimensions: BTreeSet::new(),
            ..here
        }) {
            problems.push((path.clone(), e));
        }
    }
    // Extra dimensions may be configured in one file and used in another.
    problems.retain(|(_, e)| {
        !found
            .extra_dimensions
            .iter()
            .any(|d| e.starts_with(&format!("EMF dimension {d:?}")))
    });
    let report: Vec<String> = problems
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.strip_prefix(&root).unwrap_or(p).display()))
        .collect();
    assert!(
        report.is_empty(),
        "the deploy kit names what the server does not emit:\n{}",
        report.join("\n")
    );
    println!(
        "checked {} deploy files: EMF metrics {:?}, dimensions {:?}, log fields {:?}, series {:?}",
        paths.len(),
        found.emf_metrics,
        found.emf_dimensions,
        found.log_fields,
        found.prometheus
    );
}

#[test]
fn the_scanner_finds_names_in_terraform_and_dashboards() {
    let tf = r#"
resource "aws_cloudwatch_metric_alarm" "mcpship_tool_errors" {
  alarm_name  = "tool-errors"
  namespace   = "MCPShip"
  metric_name = "ToolErrors"
  dimensions = {
    Service = var.service_name
    Tool    = "search_documents"
  }
}
resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  namespace   = "AWS/ApplicationELB"
  metric_name = "HTTPCode_Target_5XX_Count"
}
resource "aws_cloudwatch_query_definition" "slow_tools" {
  name = "slow tools"
  query_string = <<-EOT
    fields tool, duration_ms, `http.status`
    | filter ispresent(tool) and message = "tool.failed" and @message like /timeout/
    | stats avg(duration_ms) as avg_ms, pct(duration_ms, 99) by tool, error_class
  EOT
}
resource "aws_cloudwatch_dashboard" "main" {
  dashboard_body = jsonencode({
    widgets = [{ properties = { metrics = [
      ["MCPShip", "ToolCalls", "Service", "mcpship", "Tool", "get_document"],
      [".", "ToolDuration", ".", ".", ".", "."],
    ] } }, { properties = { query = "SOURCE '/ecs/mcpship' | fields `http.method`, bytes | filter `http.status` >= 500" } }]
  })
}
"#;
    let mut found = Found::default();
    scan(tf, &mut found);
    assert!(unknown(&found).is_empty(), "{:?}", unknown(&found));
    assert_eq!(
        found.emf_metrics,
        ["ToolCalls", "ToolDuration", "ToolErrors"]
            .map(String::from)
            .into()
    );
    assert!(found.emf_dimensions.contains("Tool"));
    for f in [
        "tool",
        "duration_ms",
        "http.status",
        "error_class",
        "http.method",
        "bytes",
        "message",
    ] {
        assert!(
            found.log_fields.contains(f),
            "{f} in {:?}",
            found.log_fields
        );
    }
    assert!(!found.log_fields.contains("avg_ms"));
    assert!(found.prometheus.is_empty(), "{:?}", found.prometheus);

    let bad = r#"
resource "aws_cloudwatch_metric_alarm" "x" {
  namespace   = "MCPShip"
  metric_name = "ToolFailures"
  dimensions = { Service = "mcpship", Region = "eu-west-1" }
}
locals { q = "fields tool, latency_ms | stats avg(latency_ms) by tool" }
resource "x" "y" { query = "fields tool_name" }
resource "aws_cloudwatch_metric_alarm" "p" { metric_name = "mcpship_tool_requests_total" }
"#;
    let mut found = Found::default();
    scan(bad, &mut found);
    let errors = unknown(&found).join("\n");
    for needle in [
        "ToolFailures",
        "Region",
        "tool_name",
        "mcpship_tool_requests_total",
    ] {
        assert!(
            errors.contains(needle),
            "{needle} not reported in\n{errors}"
        );
    }
    // `locals { q = … }` is not a query key; only query-ish keys are read.
    assert!(!errors.contains("latency_ms"), "{errors}");

    // Names kept in locals, aliased, interpolated into query heredocs.
    let locals = r#"
locals {
  telemetry = {
    namespace = var.emf_namespace
    metrics = {
      calls = "ToolCalls"
      slow  = "ToolLatency"
    }
    log_fields = {
      tool    = "tool"
      latency = "latency_ms"
    }
  }
  m = local.telemetry.metrics
  f = local.telemetry.log_fields
  queries = {
    "slow" = <<-QUERY
      fields @timestamp, ${local.f.tool}, ${local.f.latency}
      | filter ${local.f.tool} in ["a", "b"]
      | stats count(*) as n by bin(5m), ${local.f.tool}
    QUERY
  }
}
resource "aws_cloudwatch_metric_alarm" "a" {
  namespace   = local.telemetry.namespace
  metric_name = local.m.calls
}
resource "aws_cloudwatch_metric_alarm" "b" {
  namespace   = local.telemetry.namespace
  metric_name = local.m.slow
}
"#;
    let mut found = Found::default();
    scan(locals, &mut found);
    let errors = unknown(&found).join("\n");
    assert!(found.emf_metrics.contains("ToolCalls"), "{found:?}");
    assert!(found.log_fields.contains("tool"), "{found:?}");
    for needle in ["ToolLatency", "latency_ms"] {
        assert!(
            errors.contains(needle),
            "{needle} not reported in\n{errors}"
        );
    }
    assert_eq!(errors.lines().count(), 2, "{errors}");

    // A deploy contract.
    let contract = r#"{"telemetry": {"emf_namespace": "MCPShip", "dimensions": ["Service", "Tool"],
      "metrics": {"calls": {"name": "ToolCalls", "unit": "Count"}, "duration": {"name": "ToolDuration", "unit": "Seconds"}},
      "tool_events": ["tool.invoked", "tool.retried"], "tool_log_fields": ["tool", "elapsed"]}}"#;
    let mut found = Found::default();
    scan(contract, &mut found);
    let errors = unknown(&found).join("\n");
    for needle in ["\"Seconds\"", "tool.retried", "elapsed"] {
        assert!(
            errors.contains(needle),
            "{needle} not reported in\n{errors}"
        );
    }
    assert_eq!(errors.lines().count(), 3, "{errors}");

    let json = r#"{"widgets":[{"properties":{"metrics":[["MCPShip","ToolCalls","Service","mcpship","Tool","x"]],
      "query":"SOURCE 'g' | fields request_id, trace_id | filter session_id = 'a'"}}],
      "MetricName":"mcpship_http_requests_total"}"#;
    let mut found = Found::default();
    scan(json, &mut found);
    assert!(unknown(&found).is_empty(), "{:?}", unknown(&found));
    assert!(found.log_fields.contains("trace_id"));
    assert!(found.prometheus.contains("mcpship_http_requests_total"));
}
