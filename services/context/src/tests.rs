//! The context service over the shipped tokenizers with [`FakeNetwork`]s for the classifier
//! and the sentence encoder: conversion, limits, model picking and status mapping without ONNX
//! Runtime.

use api::context_service_server::ContextService as _;
use terse_core::{Error, FakeNetwork, TensorData};
use tonic::Code;

use super::*;
use tonic::{Request, Response};

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/repository");

fn asset(model: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{MODELS}/{model}/{name}.json")).unwrap()
}

fn int64s(tensor: &TensorData) -> Vec<i64> {
    tensor
        .bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Keep logits that vary with the token id (`id mod 11`), so words rank by their ids.
fn id_keeper() -> FakeNetwork {
    FakeNetwork::new("fake-keep", |inputs| {
        let ids = int64s(&inputs[0]);
        let logits: Vec<f32> = ids
            .iter()
            .flat_map(|id| [0.0, (id % 11) as f32 - 5.0])
            .collect();
        let mut shape = inputs[0].shape.clone();
        shape.push(2);
        Ok(vec![TensorData::from_f32("logits", shape, &logits)])
    })
}

/// Embeds a row as the unit vector of its token ids hashed into 16 buckets.
fn bag_of_ids() -> FakeNetwork {
    FakeNetwork::new("fake-encoder", |inputs| {
        let ids = int64s(&inputs[0]);
        let mask = int64s(&inputs[1]);
        let width = inputs[0].shape[1] as usize;
        let mut out = Vec::new();
        for (row, row_mask) in ids.chunks(width).zip(mask.chunks(width)) {
            let mut v = [0f32; 16];
            for (&id, &m) in row.iter().zip(row_mask).skip(1) {
                if m == 1 && id > 103 {
                    v[(id % 16) as usize] += 1.0;
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            out.extend(v.iter().map(|x| x / norm));
        }
        Ok(vec![TensorData::from_f32(
            "embedding",
            vec![inputs[0].shape[0], 16],
            &out,
        )])
    })
}

fn failing() -> FakeNetwork {
    FakeNetwork::new("broken", |_| Err(Error::internal("the network broke")))
}

fn hosted<T>(item: Arc<T>, name: &str) -> Hosted<T> {
    Hosted {
        item,
        name: name.into(),
        version: "1".into(),
        description: String::new(),
    }
}

fn service(keeper: FakeNetwork, encoder: FakeNetwork) -> ContextService {
    let config =
        br#"{"format": "terse-keep-classifier/1", "max_seq_len": 64, "max_batch_size": 4}"#;
    let classifier = KeepClassifier::new(
        config,
        &asset("lingua-minilm-keep/4", "tokenizer"),
        Arc::new(keeper),
    )
    .unwrap();
    let config = br#"{"format": "terse-sentence-encoder/1", "max_seq_len": 64, "max_batch_size": 8, "dimension": 16}"#;
    let encoder = SentenceEncoder::new(
        config,
        &asset("minilm-sentence/1", "tokenizer"),
        Arc::new(encoder),
    )
    .unwrap();
    ContextService::new(
        Catalog::new(
            KEEP_CLASSIFIER_TASK,
            vec![hosted(Arc::new(classifier), "keep")],
        ),
        Catalog::new(
            SENTENCE_ENCODER_TASK,
            vec![hosted(Arc::new(encoder), "enc")],
        ),
        ContextLimits {
            max_input_tokens: 400,
            max_batch_requests: 4,
        },
    )
}

const TEXT: &str = "The committee met on Tuesday to review the budget. Members agreed that the \
                    new library should open in March, after the roof repairs are finished.";

fn prompt(text: &str) -> api::CompressPromptRequest {
    api::CompressPromptRequest {
        context: vec![text.into()],
        options: Some(api::PromptOptions {
            rate: Some(0.5),
            ..Default::default()
        }),
        model: None,
        perplexity: None,
    }
}

#[tokio::test]
async fn prompts_compress_through_the_classifier() {
    let service = service(id_keeper(), bag_of_ids());
    let response = service
        .compress_prompt(Request::new(prompt(TEXT)))
        .await
        .unwrap()
        .into_inner();
    assert!(response.compressed_tokens > 0, "{response:?}");
    assert!(response.compressed_tokens < response.origin_tokens);
    assert_eq!(response.model.unwrap().name, "keep");

    let batch = api::CompressPromptBatchRequest {
        requests: vec![
            prompt(TEXT),
            prompt("A second, shorter prompt about trains."),
        ],
    };
    let answers = service
        .compress_prompt_batch(Request::new(batch))
        .await
        .unwrap()
        .into_inner()
        .responses;
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].compressed_prompt, response.compressed_prompt);
}

#[tokio::test]
async fn bad_prompts_get_precise_statuses() {
    let service = service(id_keeper(), bag_of_ids());
    let status = |r: Result<Response<api::CompressPromptResponse>, Status>| r.unwrap_err();
    let empty = status(service.compress_prompt(Request::new(prompt("  "))).await);
    assert_eq!(empty.code(), Code::InvalidArgument);
    let long = TEXT.repeat(20);
    let over = status(service.compress_prompt(Request::new(prompt(&long))).await);
    assert_eq!(over.code(), Code::InvalidArgument);
    assert!(
        over.message().contains("over the limit of 400"),
        "{}",
        over.message()
    );
    let mut unknown = prompt(TEXT);
    unknown.model = Some(common::ModelRef {
        name: "nope".into(),
        version: String::new(),
    });
    let missing = status(service.compress_prompt(Request::new(unknown)).await);
    assert_eq!(missing.code(), Code::NotFound);
    let mut bad_rate = prompt(TEXT);
    bad_rate.options = Some(api::PromptOptions {
        rate: Some(1.5),
        ..Default::default()
    });
    let rate = status(service.compress_prompt(Request::new(bad_rate)).await);
    assert_eq!(rate.code(), Code::InvalidArgument);

    let broken = self::service(failing(), bag_of_ids());
    let internal = status(broken.compress_prompt(Request::new(prompt(TEXT))).await);
    assert_eq!(internal.code(), Code::Internal);
}

fn context_request(then_compress: bool) -> api::CompressContextRequest {
    api::CompressContextRequest {
        query: "When does the new library open?".into(),
        documents: vec![
            api::Document {
                id: "a".into(),
                text: "Trains run every hour. The station has two platforms.".into(),
                ..Default::default()
            },
            api::Document {
                id: "b".into(),
                text: TEXT.into(),
                ..Default::default()
            },
        ],
        top_k_sentences: Some(1),
        then_compress: then_compress.then(|| api::PromptOptions {
            rate: Some(0.5),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn recomp_selects_and_the_sequence_compresses_further() {
    let service = service(id_keeper(), bag_of_ids());
    let selected = service
        .compress_context(Request::new(context_request(false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(selected.sentences.len(), 1);
    assert_eq!(selected.sentences_scored, 4);
    assert_eq!(selected.compressed_context, selected.sentences[0].text);
    assert_eq!(selected.selected_tokens, selected.compressed_tokens);

    let piped = service
        .compress_context(Request::new(context_request(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(piped.sentences, selected.sentences);
    assert_eq!(piped.selected_tokens, selected.selected_tokens);
    assert!(piped.compressed_tokens < piped.selected_tokens);

    let mut no_query = context_request(false);
    no_query.query = " ".into();
    let status = service
        .compress_context(Request::new(no_query))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[test]
fn longcodezip_options_reach_the_library_and_other_methods_options_are_refused() {
    use crate::{PerplexityRequest, perplexity_options};
    let longcodezip = api::PerplexityOptions {
        method: api::PerplexityMethod::Longcodezip as i32,
        rate: Some(0.4),
        fine_ratio: Some(0.5),
        rank_only: Some(true),
        language: "rust".into(),
        question: "let x = parse(".into(),
        ..Default::default()
    };
    let (method, _, question) = perplexity_options(longcodezip.clone()).unwrap();
    assert_eq!(question, "let x = parse(");
    let PerplexityRequest::Code { options, language } = method else {
        panic!("LONGCODEZIP is not LongCodeZip: {method:?}");
    };
    assert_eq!(language, "rust");
    assert_eq!((options.rate, options.fine_ratio), (0.4, Some(0.5)));
    assert!(options.rank_only);
    assert_eq!(
        options.budget_extra, 100.0,
        "the reference's +100 by default"
    );

    let refused = |options: api::PerplexityOptions| perplexity_options(options).unwrap_err();
    let status = refused(api::PerplexityOptions {
        condition_compare: Some(true),
        ..longcodezip.clone()
    });
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("condition_compare does not apply")
    );
    let status = refused(api::PerplexityOptions {
        method: api::PerplexityMethod::Longllmlingua as i32,
        ..longcodezip
    });
    assert!(
        status
            .message()
            .contains("language applies to LONGCODEZIP only")
    );
}
