//! Compressors run one after another.

use terse_core::{Error, Worker};

use crate::{CompressFuture, ContextCompressor, ContextInput};

/// Runs compressors in order, each on the text the one before produced (one context, the
/// same query). An empty text ends the sequence: there is nothing left to compress (RECOMP's
/// selective augmentation prepends nothing rather than noise).
pub struct Sequence {
    stages: Vec<Box<dyn ContextCompressor>>,
}

impl Sequence {
    /// A sequence of `stages` (at least one).
    pub fn new(stages: Vec<Box<dyn ContextCompressor>>) -> Self {
        Self { stages }
    }
}

impl ContextCompressor for Sequence {
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a> {
        Box::pin(async move {
            let mut stages = self.stages.iter();
            let first = stages
                .next()
                .ok_or_else(|| Error::internal("a sequence of no compressor"))?;
            let query = input.query.clone();
            let mut done = first.compress(input, worker).await?;
            for stage in stages {
                if done.text.trim().is_empty() {
                    break;
                }
                let next = ContextInput {
                    contexts: vec![std::mem::take(&mut done.text)],
                    query: query.clone(),
                    max_tokens: usize::MAX,
                };
                let out = stage.compress(next, worker).await?;
                done.text = out.text;
                done.compressed_tokens = out.compressed_tokens;
                done.stages.extend(out.stages);
            }
            Ok(done)
        })
    }
}
