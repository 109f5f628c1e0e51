//! Just enough Server-Sent Events parsing to find a JSON-RPC response in a
//! stream: used by the plain-JSON compatibility layer and the smoke test.
//! (Hand-written: the SSE crates parse into owned events with more machinery
//! than finding one response needs.)

/// Length of the first complete event in `bytes`, blank line included.
pub(crate) fn find_event_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\n' && bytes[i + 1] == b'\n' {
            return Some(i + 2);
        }
        if bytes[i] == b'\n' && bytes[i + 1] == b'\r' && bytes.get(i + 2) == Some(&b'\n') {
            return Some(i + 3);
        }
        i += 1;
    }
    None
}

/// The `data` of an event if it is a JSON-RPC response (has an id and a
/// result or error), not a notification or a priming event.
pub(crate) fn response_in_event(event: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(event).ok()?;
    let mut data = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    if data.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&data).ok()?;
    let object = value.as_object()?;
    (object.contains_key("id") && (object.contains_key("result") || object.contains_key("error")))
        .then(|| data.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_events_with_either_line_ending() {
        assert_eq!(find_event_end(b"data: x\n\nrest"), Some(9));
        assert_eq!(find_event_end(b"data: x\r\n\r\nrest"), Some(11));
        assert_eq!(find_event_end(b"data: x\n"), None);
    }

    #[test]
    fn picks_responses_not_notifications_or_priming() {
        assert!(response_in_event(b"id: 0\nretry: 3000\ndata: \n\n").is_none());
        assert!(
            response_in_event(
                b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
            )
            .is_none()
        );
        let r = response_in_event(b"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
            .unwrap();
        assert_eq!(r, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    }
}
