//! The blocking part of the local model: tokenize, batch by length, run ONNX, pool.

use std::cmp::Reverse;
use std::path::Path;
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{Tokenizer, TruncationParams};

use super::manifest::{Manifest, Pooling};
use super::pooling::{l2_normalize, mean_pool};
use super::INSTALL_HINT;
use crate::EmbedError;

const INPUT_IDS: &str = "input_ids";
const ATTENTION_MASK: &str = "attention_mask";
const TOKEN_TYPE_IDS: &str = "token_type_ids";
const OUTPUT: &str = "last_hidden_state";

/// Only a text's head can fit in the model's window; cutting megabyte inputs first keeps
/// tokenization cheap. 64 KiB holds far more than `max_tokens` word pieces of any real text.
const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Token ids of one input, already truncated to the model window.
struct Tokens {
    ids: Vec<i64>,
    type_ids: Vec<i64>,
}

pub(crate) struct Encoder {
    // `Session::run` takes `&mut self`; one batch at a time also keeps the threads busy.
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    dims: usize,
    pooling: Pooling,
    normalize: bool,
    batch_size: usize,
}

impl Encoder {
    pub fn load(
        model_dir: &Path,
        manifest: &Manifest,
        threads: usize,
        batch_size: usize,
    ) -> Result<Self, EmbedError> {
        let tokenizer = load_tokenizer(model_dir, manifest.max_tokens)?;
        let model_path = model_dir.join("model.onnx");
        if !model_path.is_file() {
            return Err(EmbedError::config(format!(
                "local model graph {} not found; {INSTALL_HINT}",
                model_path.display()
            )));
        }
        let session_error = |e: ort::Error| {
            EmbedError::config(format!(
                "cannot open local model {}: {e}; {INSTALL_HINT}",
                model_path.display()
            ))
            .with_source(e)
        };
        let session = Session::builder()
            .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
            .and_then(|b| b.with_intra_threads(threads))
            .and_then(|b| b.with_inter_threads(1))
            // Idle pool threads would otherwise spin and steal CPU from the other services.
            .and_then(|b| b.with_intra_op_spinning(false))
            .and_then(|b| b.commit_from_file(&model_path))
            .map_err(session_error)?;
        let names: Vec<&str> = session.inputs.iter().map(|i| i.name.as_str()).collect();
        let has_inputs = [INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS]
            .iter()
            .all(|n| names.contains(n));
        let has_output = session.outputs.iter().any(|o| o.name == OUTPUT);
        if names.len() != 3 || !has_inputs || !has_output {
            return Err(EmbedError::config(format!(
                "local model {} has inputs {names:?}; expected [{INPUT_IDS}, {ATTENTION_MASK}, {TOKEN_TYPE_IDS}] and output {OUTPUT}; {INSTALL_HINT}",
                model_path.display()
            )));
        }
        Ok(Self {
            session: Mutex::new(session),
            tokenizer,
            dims: manifest.dimensions,
            pooling: manifest.pooling,
            normalize: manifest.normalize,
            batch_size,
        })
    }

    /// One vector per text, in input order.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tokens = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        // Longest first, so each sub-batch holds similar lengths and pads little.
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| Reverse(tokens[i].ids.len()));

        let mut out = vec![Vec::new(); tokens.len()];
        for group in order.chunks(self.batch_size) {
            let batch: Vec<&Tokens> = group.iter().map(|&i| &tokens[i]).collect();
            for (&i, vector) in group.iter().zip(self.run_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn tokenize(&self, text: &str) -> Result<Tokens, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(head(text, MAX_INPUT_BYTES), true)
            .map_err(|e| EmbedError::permanent(format!("cannot tokenize input: {e}")))?;
        Ok(Tokens {
            ids: encoding.get_ids().iter().map(|&v| i64::from(v)).collect(),
            type_ids: encoding
                .get_type_ids()
                .iter()
                .map(|&v| i64::from(v))
                .collect(),
        })
    }

    fn run_batch(&self, batch: &[&Tokens]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = batch.len();
        let width = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let mut ids = vec![0i64; rows * width];
        let mut mask = vec![0i64; rows * width];
        let mut types = vec![0i64; rows * width];
        for (row, t) in batch.iter().enumerate() {
            let at = row * width;
            ids[at..at + t.ids.len()].copy_from_slice(&t.ids);
            types[at..at + t.type_ids.len()].copy_from_slice(&t.type_ids);
            mask[at..at + t.ids.len()].fill(1);
        }
        let inference = |e: ort::Error| {
            EmbedError::permanent(format!("local model inference failed: {e}")).with_source(e)
        };
        let inputs = vec![
            (INPUT_IDS, tensor([rows, width], ids).map_err(inference)?),
            (
                ATTENTION_MASK,
                tensor([rows, width], mask.clone()).map_err(inference)?,
            ),
            (
                TOKEN_TYPE_IDS,
                tensor([rows, width], types).map_err(inference)?,
            ),
        ];

        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(inputs).map_err(inference)?;
        let Some(hidden) = outputs.get(OUTPUT) else {
            return Err(EmbedError::permanent(format!(
                "local model returned no {OUTPUT}"
            )));
        };
        let (shape, data) = hidden.try_extract_tensor::<f32>().map_err(inference)?;
        let expected = [rows as i64, width as i64, self.dims as i64];
        if **shape != expected {
            return Err(EmbedError::permanent(format!(
                "local model returned shape {:?}, expected {expected:?}",
                &**shape
            )));
        }
        let per_row = width * self.dims;
        Ok(data
            .chunks_exact(per_row)
            .zip(mask.chunks_exact(width))
            .map(|(hidden, mask)| {
                let mut v = match self.pooling {
                    Pooling::Mean => mean_pool(hidden, mask, self.dims),
                };
                if self.normalize {
                    l2_normalize(&mut v);
                }
                v
            })
            .collect())
    }
}

fn tensor(shape: [usize; 2], data: Vec<i64>) -> ort::Result<ort::value::DynValue> {
    Ok(Tensor::from_array((shape, data))?.into_dyn())
}

/// The first `max` bytes of `text`, cut on a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The installer's tokenizer.json, with the model window and no padding forced on it:
/// the shipped file truncates and pads to 128, which costs ~10 points of recall.
fn load_tokenizer(model_dir: &Path, max_tokens: usize) -> Result<Tokenizer, EmbedError> {
    let path = model_dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| {
        EmbedError::config(format!(
            "cannot load tokenizer {}: {e}; {INSTALL_HINT}",
            path.display()
        ))
    })?;
    let truncation = TruncationParams {
        max_length: max_tokens,
        ..TruncationParams::default()
    };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(|e| EmbedError::config(format!("tokenizer {}: {e}", path.display())))?;
    // Batches are padded here, per sub-batch, to the longest member.
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::head;

    #[test]
    fn head_cuts_on_char_boundaries() {
        assert_eq!(head("abc", 10), "abc");
        assert_eq!(head("aé", 2), "a");
        assert_eq!(head("aé", 3), "aé");
    }
}
