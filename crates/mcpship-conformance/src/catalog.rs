//! The static fixture catalog: every tool, resource, resource template and
//! prompt the conformance suite looks up by name, with the exact shapes its
//! scenarios assert on.
//!
//! Names, keys and texts follow the suite's scenario descriptions
//! (`@modelcontextprotocol/conformance`, `src/scenarios/server/*.ts`).

use std::sync::OnceLock;

use rmcp::model::{JsonObject, Prompt, PromptArgument, Resource, ResourceTemplate, Tool};
use serde_json::{Value, json};

/// A 1x1 PNG (base64), used for image content, the binary resource and the
/// image prompt.
pub(crate) const TEST_IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A minimal WAV file (base64) for audio content.
pub(crate) const TEST_AUDIO_BASE64: &str =
    "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// Freshness hint on list and read results (SEP-2549): five minutes. The
/// fixture catalog never changes within a process.
pub(crate) const CACHE_TTL_MS: u64 = 300_000;

pub(crate) const STATIC_TEXT_URI: &str = "test://static-text";
pub(crate) const STATIC_TEXT: &str = "This is the content of the static text resource.";
pub(crate) const STATIC_BINARY_URI: &str = "test://static-binary";
pub(crate) const WATCHED_URI: &str = "test://watched-resource";
pub(crate) const WATCHED_TEXT: &str = "Watched resource content";
pub(crate) const TEMPLATE_URI: &str = "test://template/{id}/data";

/// The tool whose `value` parameter is mirrored into the `Mcp-Param-Value`
/// header (SEP-2243 `x-mcp-header`).
pub(crate) const CUSTOM_HEADER_TOOL: &str = "test_custom_header";

/// SEP-2322 (MRTR) fixture tools; each takes no arguments.
pub(crate) const MRTR_TOOLS: &[(&str, &str)] = &[
    (
        "test_input_required_result_elicitation",
        "MRTR: asks for the user's name through an elicitation input request",
    ),
    (
        "test_input_required_result_sampling",
        "MRTR: asks the client to sample an LLM completion",
    ),
    (
        "test_input_required_result_list_roots",
        "MRTR: asks the client for its roots",
    ),
    (
        "test_input_required_result_request_state",
        "MRTR: round-trips an integrity-protected requestState",
    ),
    (
        "test_input_required_result_multiple_inputs",
        "MRTR: asks for elicitation, sampling and roots input in one round",
    ),
    (
        "test_input_required_result_multi_round",
        "MRTR: two input rounds, each with a new requestState",
    ),
    (
        "test_input_required_result_tampered_state",
        "MRTR: rejects a requestState that fails integrity verification",
    ),
    (
        "test_input_required_result_capabilities",
        "MRTR: only asks for input the client declared a capability for",
    ),
];

/// SEP-2663 (tasks extension) fixture tools.
pub(crate) const TASK_TOOLS: &[&str] = &[
    "greet",
    "slow_compute",
    "failing_job",
    "protocol_error_job",
    "confirm_delete",
    "multi_input",
    "test_tool_with_task",
];

/// A tool with an empty object input schema.
fn no_args(name: &'static str, description: &'static str) -> Tool {
    tool(
        name,
        description,
        json!({ "type": "object", "properties": {} }),
    )
}

fn tool(name: &'static str, description: &'static str, schema: Value) -> Tool {
    Tool::new(name, description, object(schema))
}

/// Unwraps a `json!({...})` literal. Every caller passes an object literal,
/// which the unit tests check by building the whole catalog.
fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => unreachable!("fixture schema is not a JSON object: {other}"),
    }
}

/// The JSON Schema 2020-12 fixture (SEP-1613, SEP-2106): `$schema`, `$defs`
/// with an `$anchor`, composition, conditionals and `additionalProperties`
/// must all survive `tools/list` verbatim.
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" }
                }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": {
            "properties": { "contactMethod": { "const": "phone" } },
            "required": ["contactMethod"]
        },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    })
}

fn task_tool(name: &'static str) -> Tool {
    let (description, schema) = match name {
        "greet" => (
            "Tasks fixture: synchronous greeting; never runs as a task",
            json!({
                "type": "object",
                "properties": { "name": { "type": "string" } },
                "required": ["name"]
            }),
        ),
        "slow_compute" => (
            "Tasks fixture: sleeps `seconds`, then returns; runs as a task when the client supports tasks",
            json!({
                "type": "object",
                "properties": {
                    "seconds": { "type": "number" },
                    "label": { "type": "string" }
                }
            }),
        ),
        "failing_job" => (
            "Tasks fixture (task required): ends with a tool execution error",
            json!({ "type": "object", "properties": {} }),
        ),
        "protocol_error_job" => (
            "Tasks fixture: fails with a protocol-level error",
            json!({ "type": "object", "properties": {} }),
        ),
        "confirm_delete" => (
            "Tasks fixture (task required): waits on one elicitation input request",
            json!({
                "type": "object",
                "properties": { "filename": { "type": "string" } }
            }),
        ),
        "multi_input" => (
            "Tasks fixture (task required): waits on two parallel elicitation input requests",
            json!({ "type": "object", "properties": {} }),
        ),
        "test_tool_with_task" => (
            "Tasks fixture (task required): one MRTR round for the user's name, then a task",
            json!({ "type": "object", "properties": {} }),
        ),
        other => unreachable!("not a task fixture tool: {other}"),
    };
    tool(name, description, schema)
}

fn build_tools() -> Vec<Tool> {
    let mut tools = vec![
        no_args("test_simple_text", "Returns a simple text content block"),
        no_args("test_image_content", "Returns an image content block"),
        no_args("test_audio_content", "Returns an audio content block"),
        no_args(
            "test_embedded_resource",
            "Returns an embedded text resource content block",
        ),
        no_args(
            "test_multiple_content_types",
            "Returns text, image and embedded resource content together",
        ),
        no_args(
            "test_tool_with_logging",
            "Emits three log messages while it runs",
        ),
        no_args(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100 against the request's progressToken",
        ),
        no_args(
            "test_error_handling",
            "Always fails with a tool execution error (isError: true)",
        ),
        tool(
            "test_sampling",
            "Asks the client to sample an LLM completion for `prompt`",
            json!({
                "type": "object",
                "properties": {
                    "prompt": { "type": "string", "description": "The prompt to send to the LLM" }
                },
                "required": ["prompt"]
            }),
        ),
        tool(
            "test_elicitation",
            "Asks the user for input, showing `message`",
            json!({
                "type": "object",
                "properties": {
                    "message": { "type": "string", "description": "The message to show the user" }
                },
                "required": ["message"]
            }),
        ),
        no_args(
            "test_elicitation_sep1034_defaults",
            "Elicitation whose form fields all carry default values (SEP-1034)",
        ),
        no_args(
            "test_elicitation_sep1330_enums",
            "Elicitation with every enum schema variant (SEP-1330)",
        ),
        no_args(
            "test_reconnection",
            "Takes a moment before answering, for SSE polling tests (SEP-1699)",
        ),
        tool(
            "json_schema_2020_12_tool",
            "Tool whose input schema uses JSON Schema 2020-12 features (SEP-1613, SEP-2106)",
            json_schema_2020_12(),
        ),
        tool(
            CUSTOM_HEADER_TOOL,
            "Echoes `value`, which clients also send as the Mcp-Param-Value header (SEP-2243)",
            json!({
                "type": "object",
                "properties": {
                    "value": { "type": "string", "x-mcp-header": "Value" }
                },
                "required": ["value"]
            }),
        ),
        no_args(
            "test_trigger_tool_change",
            "Sends notifications/tools/list_changed to open subscriptions",
        ),
        no_args(
            "test_trigger_prompt_change",
            "Sends notifications/prompts/list_changed to open subscriptions",
        ),
        no_args(
            "test_missing_capability",
            "Requires the client's sampling capability",
        ),
        no_args(
            "test_streaming_elicitation",
            "Answers with an input_required result carrying an elicitation request",
        ),
        no_args(
            "test_logging_tool",
            "Logs one message, only when the request asks for a log level",
        ),
    ];
    tools.extend(
        MRTR_TOOLS
            .iter()
            .map(|&(name, description)| no_args(name, description)),
    );
    tools.extend(TASK_TOOLS.iter().map(|&name| task_tool(name)));
    tools
}

/// All fixture tools, in a fixed order.
pub(crate) fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(build_tools)
}

/// A fixture tool by name.
pub(crate) fn find_tool(name: &str) -> Option<&'static Tool> {
    tools().iter().find(|tool| tool.name == name)
}

pub(crate) fn resources() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_title("Static Text Resource")
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_title("Static Binary Resource")
            .with_description("A static binary resource (a PNG image) for testing")
            .with_mime_type("image/png"),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_title("Watched Resource")
            .with_description("A resource clients may subscribe to")
            .with_mime_type("text/plain"),
    ]
}

pub(crate) fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TEMPLATE_URI, "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
    ]
}

/// The `id` of a `test://template/{id}/data` URI.
pub(crate) fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A simple prompt without arguments"),
            None,
        )
        .with_title("Simple Test Prompt"),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                PromptArgument::new("arg1")
                    .with_description("First test argument")
                    .with_required(true),
                PromptArgument::new("arg2")
                    .with_description("Second test argument")
                    .with_required(true),
            ]),
        )
        .with_title("Prompt With Arguments"),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that includes an embedded resource"),
            Some(vec![
                PromptArgument::new("resourceUri")
                    .with_description("URI of the resource to embed")
                    .with_required(true),
            ]),
        )
        .with_title("Prompt With Embedded Resource"),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt that includes image content"),
            None,
        )
        .with_title("Prompt With Image"),
        Prompt::new(
            "test_input_required_result_prompt",
            Some("MRTR: a prompt that needs elicited context before it can render"),
            None,
        )
        .with_title("Prompt Requiring Input"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_unique_and_well_formed() {
        let mut names: Vec<&str> = tools().iter().map(|tool| tool.name.as_ref()).collect();
        for name in &names {
            assert!(
                !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)),
                "{name} violates SEP-986"
            );
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate tool names");
    }

    #[test]
    fn every_tool_has_a_description_and_an_object_schema() {
        for tool in tools() {
            assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
        }
    }

    #[test]
    fn custom_header_tool_declares_its_header() {
        let schema = &find_tool(CUSTOM_HEADER_TOOL).unwrap().input_schema;
        assert_eq!(
            Value::Object((**schema).clone()).pointer("/properties/value/x-mcp-header"),
            Some(&json!("Value"))
        );
    }

    #[test]
    fn template_ids() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/a/b/data"), None);
        assert_eq!(template_id("test://static-text"), None);
    }
}
