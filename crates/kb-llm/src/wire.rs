//! The chat-completions wire format shared by Mistral and OpenAI-compatible servers.
//! Responses are read leniently (providers add fields); only the model's content is strict.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<Message<'a>>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub response_format: ResponseFormat<'a>,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub json_schema: JsonSchema<'a>,
}

#[derive(Debug, Serialize)]
pub struct JsonSchema<'a> {
    pub name: &'static str,
    pub schema: &'a Value,
    pub strict: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    pub message: AssistantMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AssistantMessage {
    #[serde(default)]
    pub content: Option<Content>,
}

/// Plain text, or (Mistral's newer models) a list of typed parts of which the text ones count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    pub fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The human-readable message of an error body: OpenAI's `{"error":{"message":..}}`,
/// Mistral's `{"message":..}` or `{"detail":..}`, else the start of the raw text.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        let s = |x: Option<&Value>| x.and_then(Value::as_str).map(str::to_owned);
        s(v.pointer("/error/message"))
            .or_else(|| s(v.get("error")))
            .or_else(|| s(v.get("message")))
            .or_else(|| s(v.get("detail")))
            .or_else(|| v.get("detail").map(Value::to_string))
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    truncate(text.trim(), 300)
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_providers() {
        assert_eq!(
            error_message(
                br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#
            ),
            "Incorrect API key"
        );
        assert_eq!(
            error_message(
                br#"{"object":"error","message":"Unauthorized","type":"invalid_request_error"}"#
            ),
            "Unauthorized"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(
            error_message("é".repeat(400).as_bytes()).chars().count(),
            301
        );
    }

    #[test]
    fn content_as_text_or_parts() {
        let r: ChatResponse = serde_json::from_str(
            r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"thinking","thinking":[]},{"type":"text","text":"{\"a\":"},{"type":"text","text":"1}"}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        )
        .unwrap();
        let c = r.choices[0].message.content.as_ref().unwrap();
        assert_eq!(c.text(), "{\"a\":1}");
        assert_eq!(r.usage.unwrap().completion_tokens, 2);
    }
}
