//! Redaction of tool arguments before they reach a log line.
//!
//! Arguments are logged only with `MCPSHIP_LOG_TOOL_ARGUMENTS=true`, and even
//! then any object key that looks like it names a secret is replaced by
//! `"[REDACTED]"`, at any depth (objects inside arrays inside objects...).
//! Keys are compared case-insensitively with `_`, `-` and `.` removed, so
//! `apiKey`, `api_key` and `API-KEY` are one name.

use serde_json::{Map, Value};

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Longest argument text logged; longer is cut (with a note of the length).
pub const MAX_LOGGED_ARGUMENTS: usize = 2048;

/// Normalised key fragments that mark a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "auth",
    "bearer",
    "cookie",
    "credential",
    "session",
    "signature",
    "jwt",
    "otp",
    "pin",
    "ssn",
    "cvv",
    "cardnumber",
    "connectionstring",
    "databaseurl",
    "dsn",
];

/// Keys that contain a secret word by accident.
const NOT_SECRET: &[&str] = &[
    "author", "authors", "authored", "pinned", "spinner", "option",
];

/// Whether an object key names something secret.
pub fn is_secret_key(key: &str) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if NOT_SECRET.contains(&norm.as_str()) {
        return false;
    }
    SECRET_WORDS.iter().any(|w| match *w {
        // Short words only as a whole key or a suffix/prefix, not inside
        // ordinary words ("spinach", "options").
        "pwd" | "otp" | "pin" | "ssn" | "cvv" | "jwt" | "dsn" | "auth" => {
            norm == *w || norm.ends_with(w) || norm.starts_with(w)
        }
        _ => norm.contains(w),
    })
}

/// A copy of `value` with secret-keyed values replaced.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(redact_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn redact_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                Value::String(REDACTED.to_owned())
            } else {
                redact(v)
            };
            (k.clone(), v)
        })
        .collect()
}

/// Tool arguments as the redacted JSON text a log line carries.
pub fn arguments_for_log(arguments: Option<&Map<String, Value>>) -> String {
    let Some(arguments) = arguments else {
        return "{}".to_owned();
    };
    let mut text = Value::Object(redact_map(arguments)).to_string();
    if text.len() > MAX_LOGGED_ARGUMENTS {
        let total = text.len();
        let mut cut = MAX_LOGGED_ARGUMENTS;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("… ({total} bytes)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let args = json!({
            "query": "deploy",
            "password": "hunter2",
            "nested": {"apiKey": "k-123", "list": [{"Authorization": "Bearer x"}, {"ok": 1}]},
            "db": {"DATABASE_URL": "postgres://u:p@h/d", "client_secret": "s"},
            "author": "Ada",
            "Cookie": "sid=1",
            "access_token": "t",
        });
        let text = arguments_for_log(args.as_object());
        for secret in [
            "hunter2", "k-123", "Bearer x", "u:p@h", "\"s\"", "sid=1", "\"t\"",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["query"], "deploy");
        assert_eq!(v["author"], "Ada");
        assert_eq!(v["nested"]["list"][1]["ok"], 1);
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["nested"]["list"][0]["Authorization"], REDACTED);
    }

    #[test]
    fn key_names() {
        for k in [
            "password",
            "Pass-Word",
            "x_api_key",
            "API-KEY",
            "refreshToken",
            "credentials",
            "pwd",
            "user_pin",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "query", "limit", "offset", "id", "author", "options", "spinach",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn long_arguments_are_cut() {
        let args = json!({"query": "é".repeat(3000)});
        let text = arguments_for_log(args.as_object());
        assert!(text.len() < MAX_LOGGED_ARGUMENTS + 32);
        assert!(text.ends_with("bytes)"));
    }
}
