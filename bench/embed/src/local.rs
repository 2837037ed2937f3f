//! The local model on the corpus chunks: throughput and per-call latency.

use std::path::Path;
use std::time::Instant;

use kb_embed::{Embedder, LocalModel, LocalModelConfig};

/// Chunks per call, as the embedder's requests to the local model are split.
pub const BATCH: usize = 8;

pub struct LocalRun {
    pub chunks_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub threads: usize,
    pub vectors: Vec<Vec<f32>>,
    /// The variant measured (`KB_EMBEDDER__MODEL_DIR`, else the default fp32 folder).
    pub model: String,
}

pub async fn measure(stack: &Path, texts: &[String]) -> anyhow::Result<LocalRun> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cfg = LocalModelConfig {
        threads,
        batch_size: BATCH,
        ..LocalModelConfig::from_stack_dir_and_env(stack)
    };
    let model = LocalModel::load(&cfg)?;
    // Warm-up: thread pool and allocator start-up are not the model's speed.
    model.embed(&texts[..BATCH.min(texts.len())]).await?;
    let mut latencies = Vec::new();
    let mut vectors = Vec::with_capacity(texts.len());
    let started = Instant::now();
    for call in texts.chunks(BATCH) {
        let t = Instant::now();
        vectors.extend(model.embed(call).await?);
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(LocalRun {
        chunks_per_s: texts.len() as f64 / secs,
        p50_ms: percentile(&mut latencies, 0.50),
        p99_ms: percentile(&mut latencies, 0.99),
        threads,
        vectors,
        model: model.model().to_owned(),
    })
}

/// Nearest-rank percentile.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Minimum and mean cosine between paired vectors.
pub fn cosines(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f64) {
    let all: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let dot: f64 = x
                .iter()
                .zip(y)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum();
            let nx: f64 = x.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| f64::from(*q).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny).max(f64::MIN_POSITIVE)
        })
        .collect();
    if all.is_empty() || a.len() != b.len() {
        return (0.0, 0.0);
    }
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    (min, all.iter().sum::<f64>() / all.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_cosines() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 0.5), 3.0);
        assert_eq!(percentile(&mut v, 0.99), 5.0);
        let (min, mean) = cosines(
            &[vec![1.0, 0.0], vec![0.0, 2.0]],
            &[vec![2.0, 0.0], vec![1.0, 1.0]],
        );
        assert!((min - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        assert!((mean - (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0).abs() < 1e-9);
    }
}
