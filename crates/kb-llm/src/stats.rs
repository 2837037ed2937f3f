//! Counters of one extraction: what was asked, what was kept and why the rest was dropped.

/// Counts for one document (summed over its requests). Also exported as `kb_llm_*` metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractionStats {
    /// Chunk groups the document was split into.
    pub groups: u64,
    /// Chat calls answered with 2xx (a re-ask after invalid output counts again).
    pub requests: u64,
    /// HTTP attempts, retries after 429/5xx/timeouts included.
    pub http_attempts: u64,
    /// Re-asks after an answer that was no valid JSON of the schema.
    pub output_retries: u64,
    /// Answers without content.
    pub empty_output: u64,
    /// Answers whose content was not JSON.
    pub malformed_json: u64,
    /// Answers cut off by `max_output_tokens` (`finish_reason` "length") and not valid JSON;
    /// not re-asked, since the same request would be cut off again.
    pub truncated_output: u64,
    /// JSON answers with missing, extra or mistyped fields.
    pub schema_mismatch: u64,
    /// Groups given up after the re-ask was invalid too (their chunks get nothing).
    pub groups_dropped: u64,
    /// Groups not sent because the token budget was spent.
    pub groups_skipped_budget: u64,
    /// Answer entries for chunk numbers that were not in the request.
    pub unknown_chunks: u64,
    pub entities_accepted: u64,
    /// Names not found in the chunk they were reported for.
    pub entities_hallucinated: u64,
    /// Empty, overlong, or nothing left after canonicalization.
    pub entities_invalid: u64,
    /// Type words outside the vocabulary, kept as TOPIC.
    pub entities_mapped_to_topic: u64,
    pub relations_accepted: u64,
    /// Unknown type, endpoint not an entity of that chunk, self-loop, or non-finite weight.
    pub relations_dropped: u64,
    /// BELONGS_TO / DISCUSSES between entity types they do not fit, kept as CO_OCCURS.
    pub relations_retyped: u64,
    /// Weights outside [0, 1], clamped.
    pub weights_clamped: u64,
    /// Tokens reserved against the budget (estimated prompt + `max_output_tokens` per call).
    pub estimated_tokens: u64,
    /// Usage the server reported.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl ExtractionStats {
    pub fn add(&mut self, o: &ExtractionStats) {
        self.groups += o.groups;
        self.requests += o.requests;
        self.http_attempts += o.http_attempts;
        self.output_retries += o.output_retries;
        self.empty_output += o.empty_output;
        self.malformed_json += o.malformed_json;
        self.truncated_output += o.truncated_output;
        self.schema_mismatch += o.schema_mismatch;
        self.groups_dropped += o.groups_dropped;
        self.groups_skipped_budget += o.groups_skipped_budget;
        self.unknown_chunks += o.unknown_chunks;
        self.entities_accepted += o.entities_accepted;
        self.entities_hallucinated += o.entities_hallucinated;
        self.entities_invalid += o.entities_invalid;
        self.entities_mapped_to_topic += o.entities_mapped_to_topic;
        self.relations_accepted += o.relations_accepted;
        self.relations_dropped += o.relations_dropped;
        self.relations_retyped += o.relations_retyped;
        self.weights_clamped += o.weights_clamped;
        self.estimated_tokens += o.estimated_tokens;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }

    /// Publishes the counters through the `metrics` facade.
    pub(crate) fn emit(&self) {
        let c = |name: &'static str, v: u64| metrics::counter!(name).increment(v);
        let dropped = |reason: &'static str, v: u64| {
            metrics::counter!("kb_llm_dropped_total", "reason" => reason).increment(v)
        };
        c("kb_llm_entities_total", self.entities_accepted);
        c("kb_llm_relations_total", self.relations_accepted);
        c("kb_llm_output_retries_total", self.output_retries);
        c("kb_llm_groups_dropped_total", self.groups_dropped);
        c(
            "kb_llm_groups_skipped_budget_total",
            self.groups_skipped_budget,
        );
        c("kb_llm_prompt_tokens_total", self.prompt_tokens);
        c("kb_llm_completion_tokens_total", self.completion_tokens);
        dropped("empty_output", self.empty_output);
        dropped("malformed_json", self.malformed_json);
        dropped("truncated_output", self.truncated_output);
        dropped("schema_mismatch", self.schema_mismatch);
        dropped("unknown_chunk", self.unknown_chunks);
        dropped("hallucinated_entity", self.entities_hallucinated);
        dropped("invalid_entity", self.entities_invalid);
        dropped("invalid_relation", self.relations_dropped);
    }
}
