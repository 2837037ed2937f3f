//! Packs queued inputs, whichever document they came from, into one request that respects the
//! provider's input count and token budget.

use std::collections::VecDeque;

/// What packing needs to know of a queued input.
pub(crate) trait Weighed {
    fn tokens(&self) -> usize;
}

/// Takes inputs from the front of `queue` (first come, first served) while the request stays
/// within `max_inputs` and `max_tokens`. Always takes at least one input: one that alone
/// exceeds the budget goes by itself, and the provider's answer decides.
pub(crate) fn take<T: Weighed>(
    queue: &mut VecDeque<T>,
    max_inputs: usize,
    max_tokens: Option<usize>,
) -> Vec<T> {
    let mut batch = Vec::new();
    let mut tokens = 0usize;
    while let Some(next) = queue.front() {
        let t = next.tokens();
        let full_count = batch.len() >= max_inputs.max(1);
        let over_budget = max_tokens.is_some_and(|m| tokens + t > m);
        if !batch.is_empty() && (full_count || over_budget) {
            break;
        }
        tokens += t;
        if let Some(item) = queue.pop_front() {
            batch.push(item);
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weighed for usize {
        fn tokens(&self) -> usize {
            *self
        }
    }

    #[test]
    fn respects_count_and_token_limits_in_order() {
        let mut q: VecDeque<usize> = [5, 5, 5, 5, 5].into();
        assert_eq!(take(&mut q, 3, None), vec![5, 5, 5]);
        assert_eq!(take(&mut q, 3, None), vec![5, 5]);
        assert!(take(&mut q, 3, None).is_empty());

        let mut q: VecDeque<usize> = [4, 4, 4, 1].into();
        assert_eq!(take(&mut q, 100, Some(9)), vec![4, 4]);
        assert_eq!(take(&mut q, 100, Some(9)), vec![4, 1]);
    }

    #[test]
    fn an_oversized_input_goes_alone() {
        let mut q: VecDeque<usize> = [50, 1].into();
        assert_eq!(take(&mut q, 10, Some(10)), vec![50]);
        assert_eq!(take(&mut q, 10, Some(10)), vec![1]);
    }
}
