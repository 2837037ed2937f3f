//! Sentence vectors from token vectors: mean over the attention mask, then L2 normalization.

/// Mean of the token vectors of one sequence whose mask is 1.
///
/// `hidden` is that sequence's `[seq_len * dims]` slice of the model output.
pub(crate) fn mean_pool(hidden: &[f32], mask: &[i64], dims: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dims];
    let mut count = 0usize;
    for (token, &m) in hidden.chunks_exact(dims).zip(mask) {
        if m != 0 {
            count += 1;
            for (s, v) in sum.iter_mut().zip(token) {
                *s += v;
            }
        }
    }
    // Every sequence holds at least [CLS] and [SEP]; the guard only avoids a division by 0.
    let n = count.max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// Scales to unit length so cosine similarity is a dot product; a zero vector stays zero.
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mean_ignores_masked_tokens() {
        // three tokens of 2 dims, the last one padding
        let hidden = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        assert_eq!(mean_pool(&hidden, &[1, 1, 0], 2), vec![2.0, 3.0]);
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
    }
}
