//! RECOMP extractive selection: sentences scored by cosine similarity to the query under a
//! sentence encoder, the best kept in their original order.

use std::sync::Arc;

use terse_core::{Error, Worker, on_worker};
use terse_recomp::{Document, Selection, Sentence};
use terse_text::TokenCounter;

use crate::{
    CompressFuture, Compression, ContextCompressor, ContextInput, SentenceEncoder, Stage,
    count_within,
};

/// What RECOMP scored and kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceSelection {
    /// Every sentence of the documents (`document` indexes the input contexts).
    pub sentences: Vec<Sentence>,
    /// The score of each sentence.
    pub scores: Vec<f32>,
    /// Indexes of the kept sentences, ascending.
    pub kept: Vec<usize>,
    /// Target-LLM tokens of the kept sentences as rendered (what a later stage receives).
    pub tokens: usize,
}

/// RECOMP with one encoder and one selection rule.
pub struct Recomp {
    encoder: Arc<SentenceEncoder>,
    selection: Selection,
    window: Option<usize>,
}

impl Recomp {
    /// Selects with `encoder` as `selection` says. With a `window`, a sentence's score is the
    /// mean of its own and that of the sentence with `window` neighbours on each side
    /// (EXIT-style context-aware scoring).
    pub fn new(
        encoder: Arc<SentenceEncoder>,
        selection: Selection,
        window: Option<usize>,
    ) -> Result<Self, Error> {
        if selection.min_score.is_some_and(|s| !s.is_finite()) {
            return Err(Error::invalid("min_score is not a number"));
        }
        Ok(Self {
            encoder,
            selection,
            window,
        })
    }

    /// The sentences and the encoder rows: the query, every sentence, then every window.
    async fn rows(
        &self,
        input: ContextInput,
        worker: &dyn Worker,
    ) -> Result<(Vec<Sentence>, Vec<Vec<u32>>, usize), Error> {
        if input.query.trim().is_empty() {
            return Err(Error::invalid("the query is empty"));
        }
        if input.contexts.iter().all(|d| d.trim().is_empty()) {
            return Err(Error::invalid("no document has text"));
        }
        let encoder = Arc::clone(&self.encoder);
        let window = self.window;
        on_worker(worker, move || {
            let origin = count_within(
                &TokenCounter::default(),
                &input.contexts,
                input.max_tokens,
                "documents",
            )?;
            let documents: Vec<Document> = input
                .contexts
                .into_iter()
                .enumerate()
                .map(|(i, text)| Document {
                    id: i.to_string(),
                    text,
                })
                .collect();
            let sentences = terse_recomp::split(&documents);
            let windows = window.map(|w| terse_recomp::windows(&sentences, w));
            let texts = std::iter::once(&input.query)
                .chain(sentences.iter().map(|s| &s.text))
                .chain(windows.iter().flatten());
            let rows = texts
                .map(|t| encoder.ids(t).map_err(Error::invalid))
                .collect::<Result<_, _>>()?;
            Ok((sentences, rows, origin))
        })
        .await?
    }
}

impl ContextCompressor for Recomp {
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a> {
        Box::pin(async move {
            let (sentences, rows, origin_tokens) = self.rows(input, worker).await?;
            let embeddings = self.encoder.embed(&rows).await?;
            let similarity = |e: &Vec<f32>| terse_recomp::cosine(&embeddings[0], e);
            let own = &embeddings[1..=sentences.len()];
            let scores: Vec<f32> = match self.window {
                None => own.iter().map(similarity).collect(),
                Some(_) => own
                    .iter()
                    .zip(&embeddings[1 + sentences.len()..])
                    .map(|(s, w)| 0.5 * (similarity(s) + similarity(w)))
                    .collect(),
            };
            let counter = TokenCounter::default();
            let kept = terse_recomp::select(&sentences, &scores, self.selection, &counter);
            let text = terse_recomp::render(&sentences, &kept);
            let compressed_tokens = counter.count(&text);
            Ok(Compression {
                text,
                origin_tokens,
                compressed_tokens,
                stages: vec![Stage::Selection(SentenceSelection {
                    sentences,
                    scores,
                    kept,
                    tokens: compressed_tokens,
                })],
            })
        })
    }
}
