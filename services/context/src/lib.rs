//! gRPC transport of `compress.context.v1.ContextService` over the context compressors of
//! `terse-context`: LLMLingua-2 prompt compression with the keep/drop classifiers of the model
//! repository (task `keep-classifier`), one request or a batch of requests per call; and
//! RECOMP sentence selection with its sentence encoders (task `sentence-encoder`), optionally
//! followed by LLMLingua-2 in the same call (a `Sequence`); and LLMLingua-1, LongLLMLingua
//! and LongCodeZip on the repository's causal LM (task `causal-lm`). Only conversion, limits
//! and status mapping live here.

use std::sync::Arc;

use terse_causal_lm::CausalLm;
use terse_context::{
    CodeZip, Compression, ContextCompressor, ContextInput, KeepClassifier, Lingua2, Perplexity,
    Recomp, SentenceEncoder, Sequence, Stage,
};
use terse_hosting::{CAUSAL_LM_TASK, Catalog, Hosted};
use terse_lingua::{Compressed, Options, OutputText, TokenToWord};
use terse_proto::{common::v1 as common, context::v1 as api};
use terse_runtime::ModelRegistry;
use terse_service_common::{CallWorker, Host, HostedService, float_option, rpcs, status_of};
use tonic::{Status, service::RoutesBuilder};

pub use api::context_service_server::ContextServiceServer;
pub use terse_hosting::{KEEP_CLASSIFIER_TASK, SENTENCE_ENCODER_TASK};

/// `[context]`: limits and batching of the context compression service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextLimits {
    /// Most target-LLM (cl100k) tokens in one request (all its contexts together); more gets
    /// INVALID_ARGUMENT.
    pub max_input_tokens: usize,
    /// Most requests in one CompressPromptBatch call.
    pub max_batch_requests: usize,
}

impl Default for ContextLimits {
    fn default() -> Self {
        Self {
            max_input_tokens: 100_000,
            max_batch_requests: 64,
        }
    }
}

fn model_ref<T>(hosted: &Hosted<T>) -> common::ModelRef {
    common::ModelRef {
        name: hosted.name.clone(),
        version: hosted.version.clone(),
    }
}

/// The hosted model a request names (none: the default).
fn pick<'a, T>(
    catalog: &'a Catalog<T>,
    model: Option<&common::ModelRef>,
) -> Result<&'a Hosted<T>, Status> {
    let (name, version) = model.map_or(("", ""), |m| (m.name.as_str(), m.version.as_str()));
    catalog.pick(name, version).map_err(|e| status_of(&e))
}

/// The service.
pub struct ContextService {
    classifiers: Catalog<KeepClassifier>,
    encoders: Catalog<SentenceEncoder>,
    lms: Catalog<CausalLm>,
    limits: ContextLimits,
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

/// What `PerplexityOptions` ask for, in the library's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum PerplexityRequest {
    /// LLMLingua-1 or LongLLMLingua over the contexts.
    Prompt(terse_perplexity::Options),
    /// LongCodeZip over one source file, read as `language` (empty: detected).
    Code {
        /// The method's knobs.
        options: terse_perplexity::codezip::CodeOptions,
        /// The language hint.
        language: String,
    },
}

/// The method `o` asks for with its options in the library's terms, the instruction and the
/// question; INVALID_ARGUMENT for a missing method, values out of range, or options the
/// method does not take.
pub fn perplexity_options(
    o: api::PerplexityOptions,
) -> Result<(PerplexityRequest, String, String), Status> {
    use api::PerplexityMethod;
    use terse_perplexity::Options;
    let rate = float_option("perplexity.rate", o.rate, 0.5, 0.0..=1.0)?;
    if rate <= 0.0 {
        return Err(Status::invalid_argument("perplexity.rate must be over 0"));
    }
    let target_token = match o.target_token {
        Some(target) if target <= 0 => {
            return Err(Status::invalid_argument(format!(
                "perplexity.target_token {target} must be positive"
            )));
        }
        target => target.map(|t| t as f64),
    };
    let options = match PerplexityMethod::try_from(o.method) {
        Ok(PerplexityMethod::Llmlingua) => Options {
            rate,
            ..Options::default()
        },
        Ok(PerplexityMethod::Longllmlingua) => Options::longllmlingua(rate),
        Ok(PerplexityMethod::Longcodezip) => {
            let options = code_options(&o, rate, target_token)?;
            let language = o.language;
            return Ok((
                PerplexityRequest::Code { options, language },
                o.instruction,
                o.question,
            ));
        }
        Ok(PerplexityMethod::Unspecified) => {
            return Err(Status::invalid_argument(
                "perplexity.method is required: LLMLINGUA, LONGLLMLINGUA or LONGCODEZIP",
            ));
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown perplexity.method {}",
                o.method
            )));
        }
    };
    refuse_set(
        &[
            (!o.language.is_empty(), "language"),
            (o.fine_ratio.is_some(), "fine_ratio"),
            (o.rank_only.is_some(), "rank_only"),
        ],
        "applies to LONGCODEZIP only",
    )?;
    let options = lingua_options(
        &o,
        Options {
            target_token,
            ..options
        },
    )?;
    Ok((
        PerplexityRequest::Prompt(options),
        o.instruction,
        o.question,
    ))
}

/// INVALID_ARGUMENT naming the first of `fields` that is set: `perplexity.{name} {why}`.
fn refuse_set(fields: &[(bool, &str)], why: &str) -> Result<(), Status> {
    match fields.iter().find(|(set, _)| *set) {
        Some((_, name)) => Err(Status::invalid_argument(format!("perplexity.{name} {why}"))),
        None => Ok(()),
    }
}

/// LongCodeZip's knobs from `o`, refusing the LLMLingua options it does not take.
fn code_options(
    o: &api::PerplexityOptions,
    rate: f64,
    target_token: Option<f64>,
) -> Result<terse_perplexity::codezip::CodeOptions, Status> {
    use terse_perplexity::codezip::CodeOptions;
    refuse_set(
        &[
            (o.iterative_size.is_some(), "iterative_size"),
            (
                o.use_context_level_filter.is_some(),
                "use_context_level_filter",
            ),
            (o.use_token_level_filter.is_some(), "use_token_level_filter"),
            (o.concate_question.is_some(), "concate_question"),
            (o.condition_in_question != 0, "condition_in_question"),
            (o.condition_compare.is_some(), "condition_compare"),
            (o.reorder_context != 0, "reorder_context"),
            (
                o.dynamic_context_compression_ratio.is_some(),
                "dynamic_context_compression_ratio",
            ),
        ],
        "does not apply to LONGCODEZIP",
    )?;
    let defaults = CodeOptions::default();
    let fine_ratio = match o.fine_ratio {
        Some(ratio) => {
            let ratio = float_option("perplexity.fine_ratio", Some(ratio), 1.0, 0.0..=1.0)?;
            if ratio <= 0.0 {
                return Err(Status::invalid_argument(
                    "perplexity.fine_ratio must be over 0",
                ));
            }
            Some(ratio)
        }
        None => None,
    };
    Ok(CodeOptions {
        rate,
        target_token: target_token.unwrap_or(defaults.target_token),
        fine_ratio,
        budget_extra: float_option(
            "perplexity.context_budget",
            o.context_budget,
            defaults.budget_extra,
            -1e9..=1e9,
        )?,
        rank_only: o.rank_only.unwrap_or(defaults.rank_only),
        ..defaults
    })
}

/// LLMLingua-1's and LongLLMLingua's remaining knobs from `o` over the method's `options`.
fn lingua_options(
    o: &api::PerplexityOptions,
    mut options: terse_perplexity::Options,
) -> Result<terse_perplexity::Options, Status> {
    use api::{ContextOrder, QuestionPosition};
    use terse_perplexity::{Condition, Reorder};
    if let Some(size) = o.iterative_size {
        if !(2..=8192).contains(&size) {
            return Err(Status::invalid_argument(format!(
                "perplexity.iterative_size {size} is outside 2..=8192"
            )));
        }
        options.iterative_size = size as usize;
    }
    let flag = |value: Option<bool>, default: bool| value.unwrap_or(default);
    options.use_context_level_filter =
        flag(o.use_context_level_filter, options.use_context_level_filter);
    options.use_token_level_filter = flag(o.use_token_level_filter, options.use_token_level_filter);
    options.concate_question = flag(o.concate_question, options.concate_question);
    options.condition_compare = flag(o.condition_compare, options.condition_compare);
    options.condition_in_question = match QuestionPosition::try_from(o.condition_in_question) {
        Ok(QuestionPosition::Unspecified) => options.condition_in_question,
        Ok(QuestionPosition::None) => Condition::None,
        Ok(QuestionPosition::Before) => Condition::Before,
        Ok(QuestionPosition::After) => Condition::After,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown perplexity.condition_in_question {}",
                o.condition_in_question
            )));
        }
    };
    options.reorder_context = match ContextOrder::try_from(o.reorder_context) {
        Ok(ContextOrder::Unspecified) => options.reorder_context,
        Ok(ContextOrder::Original) => Reorder::Original,
        Ok(ContextOrder::Sort) => Reorder::Sort,
        Ok(ContextOrder::TwoStage) => Reorder::TwoStage,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown perplexity.reorder_context {}",
                o.reorder_context
            )));
        }
    };
    options.dynamic_context_compression_ratio = float_option(
        "perplexity.dynamic_context_compression_ratio",
        o.dynamic_context_compression_ratio,
        options.dynamic_context_compression_ratio,
        0.0..=1.0,
    )?;
    options.context_budget_extra = float_option(
        "perplexity.context_budget",
        o.context_budget,
        options.context_budget_extra,
        -1e9..=1e9,
    )?;
    Ok(options)
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
        model: Some(model_ref(hosted)),
    }
}

/// The CompressContext answer for a RECOMP selection (and what followed it).
fn context_response(
    request: &api::CompressContextRequest,
    compression: Compression,
    hosted: &Hosted<SentenceEncoder>,
) -> Result<api::CompressContextResponse, Status> {
    let ratio = compression.ratio();
    let Some(Stage::Selection(selection)) = compression.stages.first() else {
        return Err(Status::internal("RECOMP reported no selection"));
    };
    Ok(api::CompressContextResponse {
        sentences: selection
            .kept
            .iter()
            .map(|&i| {
                let sentence = &selection.sentences[i];
                api::SelectedSentence {
                    document_id: request.documents[sentence.document].id.clone(),
                    sentence_index: sentence.index as u32,
                    text: sentence.text.clone(),
                    score: selection.scores[i],
                }
            })
            .collect(),
        original_tokens: compression.origin_tokens as u32,
        compressed_tokens: compression.compressed_tokens as u32,
        compression_ratio: ratio,
        model: Some(model_ref(hosted)),
        selected_tokens: selection.tokens as u32,
        sentences_scored: selection.sentences.len() as u32,
        compressed_context: compression.text,
    })
}

impl ContextService {
    /// Hosts every ready keep-classifier, sentence encoder and causal LM of the registry.
    pub fn from_registry(registry: &ModelRegistry, limits: ContextLimits) -> Result<Self, String> {
        Ok(Self::new(
            terse_hosting::keep_classifiers(registry)?,
            terse_hosting::sentence_encoders(registry)?,
            limits,
        )
        .with_causal_lms(terse_hosting::causal_lms(registry)?))
    }

    /// Serves `classifiers` and `encoders` (tests host networks that are fakes), no causal LM.
    pub fn new(
        classifiers: Catalog<KeepClassifier>,
        encoders: Catalog<SentenceEncoder>,
        limits: ContextLimits,
    ) -> Self {
        Self {
            classifiers,
            encoders,
            lms: Catalog::new(CAUSAL_LM_TASK, Vec::new()),
            limits,
        }
    }

    /// Also serves LLMLingua-1 and LongLLMLingua on `lms`.
    pub fn with_causal_lms(mut self, lms: Catalog<CausalLm>) -> Self {
        self.lms = lms;
        self
    }

    /// Names of the hosted classifiers, encoders and causal LMs.
    pub fn model_names(&self) -> Vec<String> {
        self.classifiers
            .iter()
            .map(|h| h.name.clone())
            .chain(self.encoders.iter().map(|h| h.name.clone()))
            .chain(self.lms.iter().map(|h| h.name.clone()))
            .collect()
    }

    /// LLMLingua-1, LongLLMLingua or LongCodeZip on a causal LM.
    async fn compress_by_perplexity(
        &self,
        request: api::CompressPromptRequest,
        options: api::PerplexityOptions,
    ) -> Result<api::CompressPromptResponse, Status> {
        if request.options.is_some() {
            return Err(Status::invalid_argument(
                "`options` are LLMLingua-2's: with `perplexity` set, give every option there",
            ));
        }
        let hosted = pick(&self.lms, request.model.as_ref())?;
        let (method, instruction, question) = perplexity_options(options)?;
        let lm = Arc::clone(&hosted.item);
        let compressor: Box<dyn ContextCompressor> = match method {
            PerplexityRequest::Prompt(options) => {
                Box::new(Perplexity::new(lm, options, instruction))
            }
            PerplexityRequest::Code { options, language } => {
                Box::new(CodeZip::new(lm, options, instruction, language))
            }
        };
        let input = ContextInput {
            contexts: request.context,
            query: question,
            max_tokens: self.limits.max_input_tokens,
        };
        let compression = compressor
            .compress(input, &CallWorker::current())
            .await
            .map_err(|e| status_of(&e))?;
        let kept_contexts = compression
            .stages
            .iter()
            .find_map(|stage| match stage {
                Stage::Perplexity(result) => Some(result.kept_contexts.clone()),
                Stage::Code(result) => Some(result.kept_chunks.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let ratio = compression.ratio();
        Ok(api::CompressPromptResponse {
            compressed_prompt: compression.text,
            compressed_prompt_list: Vec::new(),
            origin_tokens: compression.origin_tokens as u32,
            compressed_tokens: compression.compressed_tokens as u32,
            ratio,
            rate: 1.0 / ratio,
            word_labels: Vec::new(),
            kept_contexts: kept_contexts.iter().map(|&i| i as u32).collect(),
            model: Some(model_ref(hosted)),
        })
    }

    /// RECOMP selection, then LLMLingua-2 when asked for.
    async fn select_sentences(
        &self,
        request: api::CompressContextRequest,
    ) -> Result<api::CompressContextResponse, Status> {
        let hosted = pick(&self.encoders, request.model.as_ref())?;
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
        let selection = terse_recomp::Selection {
            top_k: request.top_k_sentences.map(|k| k as usize),
            min_score: request.min_score,
            target_tokens: request.target_tokens.map(|t| t as usize),
        };
        let recomp =
            Recomp::new(Arc::clone(&hosted.item), selection, window).map_err(|e| status_of(&e))?;
        let compressor: Box<dyn ContextCompressor> = match &request.then_compress {
            None => Box::new(recomp),
            Some(options) => {
                let stage = pick(&self.classifiers, request.compress_model.as_ref())?;
                let lingua = Lingua2::new(
                    Arc::clone(&stage.item),
                    prompt_options(Some(options.clone()))?,
                );
                Box::new(Sequence::new(vec![Box::new(recomp), Box::new(lingua)]))
            }
        };
        let input = ContextInput {
            contexts: request.documents.iter().map(|d| d.text.clone()).collect(),
            query: request.query.clone(),
            max_tokens: self.limits.max_input_tokens,
        };
        let compression = compressor
            .compress(input, &CallWorker::current())
            .await
            .map_err(|e| status_of(&e))?;
        context_response(&request, compression, hosted)
    }

    /// Compresses requests that use the same classifier (their chunks share classifier calls).
    async fn compress_all(
        &self,
        hosted: &Hosted<KeepClassifier>,
        requests: Vec<api::CompressPromptRequest>,
    ) -> Result<Vec<api::CompressPromptResponse>, Status> {
        let requests = requests
            .into_iter()
            .map(|r| Ok((r.context, prompt_options(r.options)?)))
            .collect::<Result<Vec<_>, Status>>()?;
        let results = Lingua2::compress_all(
            &hosted.item,
            requests,
            self.limits.max_input_tokens,
            &CallWorker::current(),
        )
        .await
        .map_err(|e| status_of(&e))?;
        Ok(results.into_iter().map(|r| response(r, hosted)).collect())
    }

    /// Every hosted model, with its kind.
    fn models(&self) -> api::ListModelsResponse {
        api::ListModelsResponse {
            models: self
                .classifiers
                .iter()
                .map(|h| api::ContextModel {
                    model: Some(model_ref(h)),
                    kind: KEEP_CLASSIFIER_TASK.into(),
                    description: h.description.clone(),
                    max_seq_len: h.item.max_seq_len as u32,
                })
                .chain(self.encoders.iter().map(|h| api::ContextModel {
                    model: Some(model_ref(h)),
                    kind: SENTENCE_ENCODER_TASK.into(),
                    description: h.description.clone(),
                    max_seq_len: h.item.max_seq_len() as u32,
                }))
                .chain(self.lms.iter().map(|h| api::ContextModel {
                    model: Some(model_ref(h)),
                    kind: CAUSAL_LM_TASK.into(),
                    description: h.description.clone(),
                    max_seq_len: h.item.config().context_length as u32,
                }))
                .collect(),
        }
    }

    /// One CompressPrompt call: LLMLingua-1, LongLLMLingua or LongCodeZip when `perplexity` is
    /// set, else LLMLingua-2.
    async fn compress_one(
        &self,
        mut request: api::CompressPromptRequest,
    ) -> Result<api::CompressPromptResponse, Status> {
        if let Some(options) = request.perplexity.take() {
            return self.compress_by_perplexity(request, options).await;
        }
        let hosted = pick(&self.classifiers, request.model.as_ref())?;
        let mut responses = self.compress_all(hosted, vec![request]).await?;
        Ok(responses.remove(0))
    }

    /// One CompressPromptBatch call: LLMLingua-2 requests grouped by classifier, answered in
    /// order.
    async fn compress_batch(
        &self,
        requests: Vec<api::CompressPromptRequest>,
    ) -> Result<api::CompressPromptBatchResponse, Status> {
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
        type Group<'a> = (
            &'a Hosted<KeepClassifier>,
            Vec<(usize, api::CompressPromptRequest)>,
        );
        let mut groups: Vec<Group> = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            if request.perplexity.is_some() {
                return Err(Status::invalid_argument(format!(
                    "request {i}: LLMLingua-1 and LongLLMLingua are not batched: call CompressPrompt"
                )));
            }
            let hosted = pick(&self.classifiers, request.model.as_ref())?;
            match groups.iter_mut().find(|(h, _)| std::ptr::eq(*h, hosted)) {
                Some((_, members)) => members.push((i, request)),
                None => groups.push((hosted, vec![(i, request)])),
            }
        }
        for (hosted, members) in groups {
            let (indexes, group): (Vec<usize>, Vec<_>) = members.into_iter().unzip();
            let results = self.compress_all(hosted, group).await?;
            for (i, r) in indexes.into_iter().zip(results) {
                responses[i] = Some(r);
            }
        }
        Ok(api::CompressPromptBatchResponse {
            responses: responses
                .into_iter()
                .map(|r| r.expect("answered"))
                .collect(),
        })
    }
}
rpcs! {
    impl api::context_service_server::ContextService for ContextService {
        fn list_models(self, _request: api::ListModelsRequest) -> api::ListModelsResponse {
            self.models()
        }

        fn compress_prompt(
            self,
            request: api::CompressPromptRequest,
        ) -> api::CompressPromptResponse {
            self.compress_one(request).await?
        }

        fn compress_prompt_batch(
            self,
            request: api::CompressPromptBatchRequest,
        ) -> api::CompressPromptBatchResponse {
            self.compress_batch(request.requests).await?
        }

        fn compress_context(
            self,
            request: api::CompressContextRequest,
        ) -> api::CompressContextResponse {
            self.select_sentences(request).await?
        }
    }
}

impl HostedService for ContextLimits {
    fn model_tasks(&self) -> &'static [&'static str] {
        terse_hosting::CONTEXT_TASKS
    }

    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service = ContextService::from_registry(host.registry, *self)?;
        let hosted = format!("context models {:?}", service.model_names());
        terse_service_common::add_service!(routes, host, ContextServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
