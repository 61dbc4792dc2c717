//! LLMLingua-2: a keep/drop classifier labels every token, the planner turns the labels into
//! kept words (`terse-lingua` matches the Python package).

use std::sync::Arc;

use terse_core::{Error, Worker, on_worker, on_worker_classified};
use terse_lingua::{Compressed, Options, Plan};

use crate::{
    CompressFuture, Compression, ContextCompressor, ContextInput, KeepClassifier, Stage,
    count_within,
};

/// LLMLingua-2 with one classifier and one set of options.
pub struct Lingua2 {
    classifier: Arc<KeepClassifier>,
    options: Options,
}

impl Lingua2 {
    /// Compresses with `classifier` as `options` say.
    pub fn new(classifier: Arc<KeepClassifier>, options: Options) -> Self {
        Self {
            classifier,
            options,
        }
    }

    /// Plans one request on the worker: checks it, counts its tokens against `max_tokens`,
    /// chunks it.
    async fn plan(
        classifier: &Arc<KeepClassifier>,
        contexts: Vec<String>,
        options: Options,
        max_tokens: usize,
        worker: &dyn Worker,
    ) -> Result<Plan, Error> {
        if contexts.iter().all(|c| c.trim().is_empty()) {
            return Err(Error::invalid(
                "the prompt is empty: give at least one non-blank context",
            ));
        }
        let classifier = Arc::clone(classifier);
        on_worker(worker, move || {
            count_within(classifier.lingua.counter(), &contexts, max_tokens, "prompt")?;
            classifier
                .lingua
                .plan(&contexts, &options)
                .map_err(|e| Error::from_classified(&e))
        })
        .await?
    }

    /// Compresses several requests (contexts, options) with one classifier: their chunks share
    /// classifier calls (a chunk's keep probabilities do not depend on its batch-mates, the
    /// model's activation scales are static). Results in request order.
    pub async fn compress_all(
        classifier: &Arc<KeepClassifier>,
        requests: Vec<(Vec<String>, Options)>,
        max_tokens: usize,
        worker: &dyn Worker,
    ) -> Result<Vec<Compressed>, Error> {
        let mut plans = Vec::with_capacity(requests.len());
        for (contexts, options) in requests {
            plans.push(Self::plan(classifier, contexts, options, max_tokens, worker).await?);
        }
        let inputs: Vec<&[u32]> = plans.iter().flat_map(|plan| plan.inputs()).collect();
        let probs = classifier.keep_probabilities(&inputs).await?;
        let classifier = Arc::clone(classifier);
        on_worker_classified(worker, move || {
            let mut rows = probs.as_slice();
            let mut results = Vec::with_capacity(plans.len());
            for plan in &plans {
                let (mine, rest) = rows.split_at(plan.inputs().len());
                rows = rest;
                results.push(classifier.lingua.finish(plan, mine)?);
            }
            Ok::<_, terse_lingua::LinguaError>(results)
        })
        .await
    }
}

impl ContextCompressor for Lingua2 {
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a> {
        Box::pin(async move {
            let request = vec![(input.contexts, self.options.clone())];
            let compressed =
                Self::compress_all(&self.classifier, request, input.max_tokens, worker)
                    .await?
                    .remove(0);
            Ok(Compression {
                text: compressed.compressed_prompt.clone(),
                origin_tokens: compressed.origin_tokens,
                compressed_tokens: compressed.compressed_tokens,
                stages: vec![Stage::Lingua2(compressed)],
            })
        })
    }
}
