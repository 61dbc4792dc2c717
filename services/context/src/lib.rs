//! gRPC transport of `compress.context.v1.ContextService`: LLMLingua-2 prompt compression
//! (`terse-lingua`) with the keep/drop classifiers of the model repository (task
//! `keep-classifier`), one request or a batch of requests per call; and
//! RECOMP sentence selection (`terse-recomp`) with its sentence encoders (task
//! `sentence-encoder`), optionally followed by LLMLingua-2 in the same call. Every network runs
//! through the model runtime.

mod classifier;
mod encoder;

use std::sync::Arc;

pub use classifier::KeepClassifier;
pub use encoder::SentenceEncoder;

use terse_lingua::{Compressed, LinguaError, Options, OutputText, Plan, TokenToWord};
use terse_proto::{common::v1 as common, context::v1 as api};
use terse_runtime::{ModelRegistry, ModelState};
use terse_service_common::{echo, run_blocking, status_of};
use tonic::{Request, Response, Status};

pub use api::context_service_server::ContextServiceServer;

/// Task name of keep/drop classifiers in model manifests.
pub const KEEP_CLASSIFIER_TASK: &str = "keep-classifier";
/// Task name of sentence encoders in model manifests.
pub const SENTENCE_ENCODER_TASK: &str = "sentence-encoder";

/// Model tasks this service hosts (a failed model of one of them makes the service NOT_SERVING).
pub const MODEL_TASKS: &[&str] = &[KEEP_CLASSIFIER_TASK, SENTENCE_ENCODER_TASK];

/// Limits of the context service.
#[derive(Debug, Clone, Copy)]
pub struct ContextLimits {
    /// Most target-LLM tokens in one request (all its contexts together).
    pub max_input_tokens: usize,
    /// Most requests in one batch call.
    pub max_batch_requests: usize,
}

/// A hosted network with its manifest facts.
struct Hosted<M> {
    network: Arc<M>,
    name: String,
    version: String,
    description: String,
}

impl<M> Hosted<M> {
    fn model_ref(&self) -> common::ModelRef {
        common::ModelRef {
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }
}

/// Every ready model of `task` in the registry, built by `make`, sorted by name.
fn host<M>(
    registry: &ModelRegistry,
    task: &str,
    make: impl Fn(&terse_runtime::ManifestEntry, Arc<terse_runtime::LoadedModel>) -> Result<M, String>,
) -> Result<Vec<Hosted<M>>, String> {
    let mut hosted = Vec::new();
    for entry in registry.entries() {
        let manifest = &entry.entry.manifest;
        if manifest.task != task {
            continue;
        }
        let ModelState::Ready(model) = &entry.state else {
            continue;
        };
        let built = make(&entry.entry, Arc::clone(model))
            .map_err(|e| format!("model {}: {e}", entry.entry.id()))?;
        hosted.push(Hosted {
            network: Arc::new(built),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
        });
    }
    hosted.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosted)
}

/// The hosted model `model` names (empty: the first), or why there is none.
fn pick<'a, M>(
    hosted: &'a [Hosted<M>],
    model: Option<&common::ModelRef>,
    task: &str,
) -> Result<&'a Hosted<M>, Status> {
    let Some(first) = hosted.first() else {
        return Err(Status::failed_precondition(format!(
            "no {task} model is loaded"
        )));
    };
    let version = model.map_or("", |m| m.version.as_str());
    let found = match model.map(|m| m.name.as_str()).filter(|n| !n.is_empty()) {
        None => first,
        Some(name) => hosted.iter().find(|h| h.name == name).ok_or_else(|| {
            Status::not_found(format!(
                "{task} `{}` is not hosted (available: {})",
                echo(name),
                hosted
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
    };
    // A version that is asked for must be the one served (issue 18, finding 9).
    if !version.is_empty() && version != found.version {
        return Err(Status::not_found(format!(
            "{task} `{}` has no version `{}` (this server has version {})",
            found.name,
            echo(version),
            found.version
        )));
    }
    Ok(found)
}

/// The service.
pub struct ContextService {
    classifiers: Vec<Hosted<KeepClassifier>>,
    encoders: Vec<Hosted<SentenceEncoder>>,
    limits: ContextLimits,
}

fn lingua_status(e: LinguaError) -> Status {
    match e {
        LinguaError::Invalid(m) => Status::invalid_argument(m),
        LinguaError::Text(e) => Status::invalid_argument(e.to_string()),
        LinguaError::Classifier(m) => Status::internal(m),
    }
}

/// Request options in the library's terms, checked (INVALID_ARGUMENT for values out of range).
pub fn prompt_options(request: Option<api::PromptOptions>) -> Result<Options, Status> {
    let o = request.unwrap_or_default();
    let defaults = Options::default();
    let non_negative = |v: Option<i64>, what: &str| -> Result<i64, Status> {
        match v {
            None => Ok(-1),
            Some(x) if x >= 0 => Ok(x),
            Some(x) => Err(Status::invalid_argument(format!("{what} {x} is negative"))),
        }
    };
    let rate = o.rate.unwrap_or(defaults.rate);
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(Status::invalid_argument(format!(
            "rate {rate} is outside (0, 1]"
        )));
    }
    let tolerance = o.budget_tolerance.unwrap_or(0.05);
    if !(tolerance.is_finite() && tolerance > 0.0 && tolerance < 1.0) {
        return Err(Status::invalid_argument(format!(
            "budget_tolerance {tolerance} is outside (0, 1)"
        )));
    }
    let context_level_rate = o.context_level_rate.unwrap_or(1.0);
    if !(context_level_rate > 0.0 && context_level_rate <= 1.0) {
        return Err(Status::invalid_argument(format!(
            "context_level_rate {context_level_rate} is outside (0, 1]"
        )));
    }
    Ok(Options {
        rate,
        target_token: non_negative(o.target_token, "target_token")?,
        use_context_level_filter: o.use_context_level_filter,
        use_token_level_filter: o.use_token_level_filter.unwrap_or(true),
        target_context: non_negative(o.target_context, "target_context")?,
        context_level_rate,
        context_level_target_token: non_negative(
            o.context_level_target_token,
            "context_level_target_token",
        )?,
        force_context_ids: o.force_context_ids.iter().map(|&i| i as usize).collect(),
        return_word_label: o.return_word_label,
        word_sep: defaults.word_sep,
        label_sep: defaults.label_sep,
        token_to_word: match api::TokenToWord::try_from(o.token_to_word) {
            Ok(api::TokenToWord::First) => TokenToWord::First,
            Ok(api::TokenToWord::MeanUnspecified) => TokenToWord::Mean,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown token_to_word {}",
                    o.token_to_word
                )));
            }
        },
        force_tokens: o.force_tokens,
        force_reserve_digit: o.force_reserve_digit,
        drop_consecutive: o.drop_consecutive,
        chunk_end_tokens: if o.chunk_end_tokens.is_empty() {
            defaults.chunk_end_tokens
        } else {
            o.chunk_end_tokens
        },
        output: match api::OutputText::try_from(o.output) {
            Ok(api::OutputText::Reference) => OutputText::Reference,
            Ok(api::OutputText::OriginalUnspecified) => OutputText::Original,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown output {}",
                    o.output
                )));
            }
        },
        budget_tolerance: (!o.reference_budget).then_some(tolerance),
    })
}

fn response(result: Compressed, hosted: &Hosted<KeepClassifier>) -> api::CompressPromptResponse {
    api::CompressPromptResponse {
        compressed_prompt: result.compressed_prompt,
        compressed_prompt_list: result.compressed_prompt_list,
        origin_tokens: result.origin_tokens as u32,
        compressed_tokens: result.compressed_tokens as u32,
        ratio: result.ratio,
        rate: 1.0 / result.ratio,
        word_labels: result
            .word_labels
            .unwrap_or_default()
            .into_iter()
            .map(|(word, label)| api::WordLabel {
                word,
                kept: label == 1,
            })
            .collect(),
        kept_contexts: result.kept_contexts.iter().map(|&i| i as u32).collect(),
        model: Some(hosted.model_ref()),
    }
}

impl ContextService {
    /// Hosts every ready keep-classifier and sentence encoder of the registry.
    pub fn from_registry(registry: &ModelRegistry, limits: ContextLimits) -> Result<Self, String> {
        Ok(Self {
            classifiers: host(registry, KEEP_CLASSIFIER_TASK, KeepClassifier::new)?,
            encoders: host(registry, SENTENCE_ENCODER_TASK, SentenceEncoder::new)?,
            limits,
        })
    }

    /// Names of the hosted classifiers and encoders.
    pub fn model_names(&self) -> Vec<String> {
        self.classifiers
            .iter()
            .map(|h| h.name.clone())
            .chain(self.encoders.iter().map(|h| h.name.clone()))
            .collect()
    }

    fn pick(&self, model: Option<&common::ModelRef>) -> Result<&Hosted<KeepClassifier>, Status> {
        pick(&self.classifiers, model, KEEP_CLASSIFIER_TASK)
    }

    /// RECOMP selection, then LLMLingua-2 when asked for.
    async fn select_sentences(
        &self,
        request: api::CompressContextRequest,
    ) -> Result<api::CompressContextResponse, Status> {
        let hosted = pick(
            &self.encoders,
            request.model.as_ref(),
            SENTENCE_ENCODER_TASK,
        )?;
        if request.query.trim().is_empty() {
            return Err(Status::invalid_argument("the query is empty"));
        }
        if request.documents.iter().all(|d| d.text.trim().is_empty()) {
            return Err(Status::invalid_argument("no document has text"));
        }
        if let Some(score) = request.min_score
            && !score.is_finite()
        {
            return Err(Status::invalid_argument("min_score is not a number"));
        }
        let documents: Vec<terse_recomp::Document> = request
            .documents
            .iter()
            .map(|d| terse_recomp::Document {
                id: d.id.clone(),
                text: d.text.clone(),
            })
            .collect();
        let encoder = Arc::clone(&hosted.network);
        let max_tokens = self.limits.max_input_tokens;
        let query = request.query.clone();
        let window = match api::SelectionMode::try_from(request.mode) {
            Ok(api::SelectionMode::SentenceUnspecified) => None,
            Ok(api::SelectionMode::ContextWindow) => Some(request.window.max(1) as usize),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown selection mode {}",
                    request.mode
                )));
            }
        };
        let (sentences, rows, origin_tokens) = run_blocking(move || {
            let counter = terse_text::TokenCounter::default();
            let origin_tokens: usize = documents.iter().map(|d| counter.count(&d.text)).sum();
            if origin_tokens > max_tokens {
                return Err(Status::invalid_argument(format!(
                    "the documents have {origin_tokens} tokens, over the limit of {max_tokens}"
                )));
            }
            let sentences = terse_recomp::split(&documents);
            let mut rows = vec![encoder.ids(&query).map_err(Status::invalid_argument)?];
            for s in &sentences {
                rows.push(encoder.ids(&s.text).map_err(Status::invalid_argument)?);
            }
            if let Some(window) = window {
                for text in terse_recomp::windows(&sentences, window) {
                    rows.push(encoder.ids(&text).map_err(Status::invalid_argument)?);
                }
            }
            Ok((sentences, rows, origin_tokens))
        })
        .await?;
        let embeddings = hosted
            .network
            .embed(&rows)
            .await
            .map_err(|e| status_of(&e))?;
        let similarity = |e: &Vec<f32>| terse_recomp::cosine(&embeddings[0], e);
        let own = &embeddings[1..=sentences.len()];
        let scores: Vec<f32> = match window {
            None => own.iter().map(similarity).collect(),
            Some(_) => own
                .iter()
                .zip(&embeddings[1 + sentences.len()..])
                .map(|(s, w)| 0.5 * (similarity(s) + similarity(w)))
                .collect(),
        };
        let counter = terse_text::TokenCounter::default();
        let selection = terse_recomp::Selection {
            top_k: request.top_k_sentences.map(|k| k as usize),
            min_score: request.min_score,
            target_tokens: request.target_tokens.map(|t| t as usize),
        };
        let kept = terse_recomp::select(&sentences, &scores, selection, &counter);
        let selected = terse_recomp::render(&sentences, &kept);
        let selected_tokens = counter.count(&selected);
        let compressed = match request.then_compress {
            Some(options) if !selected.trim().is_empty() => {
                let stage = self.pick(request.compress_model.as_ref())?;
                let prompt = api::CompressPromptRequest {
                    context: vec![selected.clone()],
                    options: Some(options),
                    model: None,
                };
                self.compress_all(stage, vec![prompt])
                    .await?
                    .remove(0)
                    .compressed_prompt
            }
            _ => selected,
        };
        let compressed_tokens = counter.count(&compressed);
        Ok(api::CompressContextResponse {
            sentences: kept
                .iter()
                .map(|&i| api::SelectedSentence {
                    document_id: request.documents[sentences[i].document].id.clone(),
                    sentence_index: sentences[i].index as u32,
                    text: sentences[i].text.clone(),
                    score: scores[i],
                })
                .collect(),
            compressed_context: compressed,
            original_tokens: origin_tokens as u32,
            compressed_tokens: compressed_tokens as u32,
            compression_ratio: if compressed_tokens == 0 {
                1.0
            } else {
                origin_tokens as f64 / compressed_tokens as f64
            },
            model: Some(hosted.model_ref()),
            selected_tokens: selected_tokens as u32,
            sentences_scored: sentences.len() as u32,
        })
    }

    /// Plans one request on a blocking thread (tokenization, chunking, limits).
    async fn plan(
        &self,
        hosted: &Hosted<KeepClassifier>,
        request: api::CompressPromptRequest,
    ) -> Result<(Plan, Options), Status> {
        if request.context.iter().all(|c| c.trim().is_empty()) {
            return Err(Status::invalid_argument(
                "the prompt is empty: give at least one non-blank context",
            ));
        }
        let options = prompt_options(request.options)?;
        let classifier = Arc::clone(&hosted.network);
        let max_tokens = self.limits.max_input_tokens;
        run_blocking(move || {
            let counter = classifier.lingua.counter();
            let tokens: usize = request.context.iter().map(|c| counter.count(c)).sum();
            if tokens > max_tokens {
                return Err(Status::invalid_argument(format!(
                    "the prompt has {tokens} tokens, over the limit of {max_tokens}"
                )));
            }
            let plan = classifier
                .lingua
                .plan(&request.context, &options)
                .map_err(lingua_status)?;
            Ok((plan, options))
        })
        .await
    }

    /// Compresses requests that use the same classifier.
    async fn compress_all(
        &self,
        hosted: &Hosted<KeepClassifier>,
        requests: Vec<api::CompressPromptRequest>,
    ) -> Result<Vec<api::CompressPromptResponse>, Status> {
        let mut plans = Vec::with_capacity(requests.len());
        for request in requests {
            plans.push(self.plan(hosted, request).await?.0);
        }
        // The chunks of every request share classifier calls: a chunk's keep-probabilities do
        // not depend on its batch-mates (static activation scales).
        let inputs: Vec<&[u32]> = plans.iter().flat_map(|plan| plan.inputs()).collect();
        let probs = hosted
            .network
            .keep_probabilities(&inputs)
            .await
            .map_err(|e| status_of(&e))?;
        let classifier = Arc::clone(&hosted.network);
        let results = run_blocking(move || {
            let mut rows = probs.as_slice();
            let mut results = Vec::with_capacity(plans.len());
            for plan in &plans {
                let (mine, rest) = rows.split_at(plan.inputs().len());
                rows = rest;
                results.push(
                    classifier
                        .lingua
                        .finish(plan, mine)
                        .map_err(lingua_status)?,
                );
            }
            Ok(results)
        })
        .await?;
        Ok(results.into_iter().map(|r| response(r, hosted)).collect())
    }
}

#[tonic::async_trait]
impl api::context_service_server::ContextService for ContextService {
    async fn list_models(
        &self,
        _request: Request<api::ListModelsRequest>,
    ) -> Result<Response<api::ListModelsResponse>, Status> {
        Ok(Response::new(api::ListModelsResponse {
            models: self
                .classifiers
                .iter()
                .map(|h| api::ContextModel {
                    model: Some(h.model_ref()),
                    kind: KEEP_CLASSIFIER_TASK.into(),
                    description: h.description.clone(),
                    max_seq_len: h.network.max_seq_len as u32,
                })
                .chain(self.encoders.iter().map(|h| api::ContextModel {
                    model: Some(h.model_ref()),
                    kind: SENTENCE_ENCODER_TASK.into(),
                    description: h.description.clone(),
                    max_seq_len: h.network.max_seq_len() as u32,
                }))
                .collect(),
        }))
    }

    async fn compress_prompt(
        &self,
        request: Request<api::CompressPromptRequest>,
    ) -> Result<Response<api::CompressPromptResponse>, Status> {
        let request = request.into_inner();
        let hosted = self.pick(request.model.as_ref())?;
        let mut responses = self.compress_all(hosted, vec![request]).await?;
        Ok(Response::new(responses.remove(0)))
    }

    async fn compress_prompt_batch(
        &self,
        request: Request<api::CompressPromptBatchRequest>,
    ) -> Result<Response<api::CompressPromptBatchResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.is_empty() {
            return Err(Status::invalid_argument("the batch holds no request"));
        }
        if requests.len() > self.limits.max_batch_requests {
            return Err(Status::invalid_argument(format!(
                "{} requests exceed the batch limit of {}",
                requests.len(),
                self.limits.max_batch_requests
            )));
        }
        // Group by classifier so that each group shares classifier calls; answer in order.
        let mut responses: Vec<Option<api::CompressPromptResponse>> = vec![None; requests.len()];
        let mut groups: Vec<(usize, Vec<(usize, api::CompressPromptRequest)>)> = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            let hosted = self.pick(request.model.as_ref())?;
            let key = self
                .classifiers
                .iter()
                .position(|h| std::ptr::eq(h, hosted))
                .expect("picked from the list");
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push((i, request)),
                None => groups.push((key, vec![(i, request)])),
            }
        }
        for (key, members) in groups {
            let (indexes, group): (Vec<usize>, Vec<_>) = members.into_iter().unzip();
            let results = self.compress_all(&self.classifiers[key], group).await?;
            for (i, r) in indexes.into_iter().zip(results) {
                responses[i] = Some(r);
            }
        }
        Ok(Response::new(api::CompressPromptBatchResponse {
            responses: responses
                .into_iter()
                .map(|r| r.expect("answered"))
                .collect(),
        }))
    }

    async fn compress_context(
        &self,
        request: Request<api::CompressContextRequest>,
    ) -> Result<Response<api::CompressContextResponse>, Status> {
        Ok(Response::new(
            self.select_sentences(request.into_inner()).await?,
        ))
    }
}
