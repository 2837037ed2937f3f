//! Request and response bodies of the two wire formats.

use serde::{Deserialize, Serialize};

use crate::EmbedError;

/// `POST /v1/embeddings` (OpenAI, Mistral and compatible servers).
#[derive(Serialize)]
pub(crate) struct OpenAiRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
}

/// `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[...]}],...}`
#[derive(Deserialize)]
pub(crate) struct OpenAiResponse {
    pub data: Vec<OpenAiItem>,
}

#[derive(Deserialize)]
pub(crate) struct OpenAiItem {
    pub embedding: Vec<f32>,
    #[serde(default)]
    pub index: Option<usize>,
}

impl OpenAiResponse {
    /// Vectors in input order: items carry their input's `index`, and servers may reorder.
    pub fn into_vectors(self, inputs: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.data.iter().all(|d| d.index.is_none()) {
            return Ok(self.data.into_iter().map(|d| d.embedding).collect());
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; inputs.max(self.data.len())];
        for item in self.data {
            let slot = item
                .index
                .and_then(|i| out.get_mut(i))
                .filter(|s| s.is_none())
                .ok_or_else(|| {
                    EmbedError::permanent(format!(
                        "response indexes are not a permutation of 0..{inputs}"
                    ))
                })?;
            *slot = Some(item.embedding);
        }
        out.into_iter()
            .map(|v| {
                v.ok_or_else(|| {
                    EmbedError::permanent(format!(
                        "response lacks vectors for some of {inputs} inputs"
                    ))
                })
            })
            .collect()
    }
}

/// `POST /api/embed` (Ollama).
#[derive(Serialize)]
pub(crate) struct OllamaRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
}

/// `{"model":"...","embeddings":[[...],...],"total_duration":...}`
#[derive(Deserialize)]
pub(crate) struct OllamaResponse {
    pub embeddings: Vec<Vec<f32>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn openai_items_are_put_back_in_input_order() {
        let r: OpenAiResponse = serde_json::from_str(
            r#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[2.0]},
                {"object":"embedding","index":0,"embedding":[1.0]}],"model":"m","usage":{"prompt_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(r.into_vectors(2).unwrap(), vec![vec![1.0], vec![2.0]]);
    }

    #[test]
    fn duplicate_or_out_of_range_indexes_are_rejected() {
        let dup: OpenAiResponse = serde_json::from_str(
            r#"{"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[2.0]}]}"#,
        )
        .unwrap();
        assert!(dup.into_vectors(2).is_err());
        let far: OpenAiResponse =
            serde_json::from_str(r#"{"data":[{"index":5,"embedding":[1.0]}]}"#).unwrap();
        assert!(far.into_vectors(1).is_err());
    }

    #[test]
    fn request_bodies_match_the_wire_formats() {
        let input = vec!["a".to_owned()];
        let o = OpenAiRequest {
            model: "m",
            input: &input,
            encoding_format: Some("float"),
            dimensions: None,
        };
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"model":"m","input":["a"],"encoding_format":"float"}"#
        );
        let l = OllamaRequest {
            model: "m",
            input: &input,
            dimensions: Some(8),
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"model":"m","input":["a"],"dimensions":8}"#
        );
    }
}
