//! The repository service's conversion and status mapping over the shipped repository's
//! manifests, with model states decided by the test (no ONNX Runtime library involved).

use std::path::Path;

use terse_runtime::manifest::scan_repository;
use tonic::Code;

use super::*;
use tonic::Request;

/// Every shipped model, MLIC's synthesis marked failed and the rest unloaded.
fn service() -> ModelRepository {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/repository");
    let entries = scan_repository(&root)
        .expect("the shipped repository scans")
        .into_iter()
        .map(|entry| RegistryEntry {
            state: match entry.manifest.name.as_str() {
                "mlic" => ModelState::Failed("no execution provider could run it".into()),
                _ => ModelState::Unloaded,
            },
            file_bytes: 7,
            entry,
        })
        .collect();
    ModelRepository::new(
        Arc::new(ModelRegistry::from_entries(entries)),
        RuntimeFacts {
            version: "1.0.0-test".into(),
            providers: vec!["CPU".into()],
        },
    )
}

fn named(name: &str) -> Option<common::ModelRef> {
    Some(common::ModelRef {
        name: name.into(),
        version: String::new(),
    })
}

#[tokio::test]
async fn lists_every_model_with_its_state_and_the_runtime() {
    let svc = service();
    let all = svc
        .list_models(Request::new(api::ListModelsRequest { ready_only: false }))
        .await
        .unwrap()
        .into_inner();
    assert!(all.models.len() >= 5, "{} models", all.models.len());
    assert_eq!(all.runtime_version, "1.0.0-test");
    assert_eq!(all.available_providers, ["CPU"]);
    let mlic = all.models.iter().find(|m| m.name == "mlic").unwrap();
    let status = mlic.status.as_ref().unwrap();
    assert_eq!(status.state, api::ModelState::Failed as i32);
    assert!(status.reason.contains("no execution provider"));
    assert_eq!(mlic.sha256.len(), 64);
    assert!(!mlic.inputs.is_empty() && !mlic.outputs.is_empty());
    let unloaded = all.models.iter().find(|m| m.name != "mlic").unwrap();
    let status = unloaded.status.as_ref().unwrap();
    assert_eq!(status.state, api::ModelState::Unloaded as i32);
    assert!(status.reason.contains("not selected"));

    let ready = svc
        .list_models(Request::new(api::ListModelsRequest { ready_only: true }))
        .await
        .unwrap()
        .into_inner();
    assert!(ready.models.is_empty(), "no model here is ready");
}

#[tokio::test]
async fn lookups_answer_precise_statuses() {
    let svc = service();
    let found = svc
        .get_model(Request::new(api::GetModelRequest {
            model: named("mlic"),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.model.unwrap().name, "mlic");

    let missing = svc
        .get_model(Request::new(api::GetModelRequest {
            model: named("gpt-7"),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    let unnamed = svc
        .get_model(Request::new(api::GetModelRequest { model: None }))
        .await
        .unwrap_err();
    assert_eq!(unnamed.code(), Code::InvalidArgument);

    let failed = svc
        .infer(Request::new(api::InferRequest {
            model: named("mlic"),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::FailedPrecondition, "{failed:?}");
    assert!(failed.message().contains("failed to load"));

    let unloaded = svc
        .infer(Request::new(api::InferRequest {
            model: named("minilm-sentence"),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(unloaded.code(), Code::FailedPrecondition);
    assert!(unloaded.message().contains("not loaded"));
}

#[tokio::test]
async fn statistics_cover_one_or_every_model() {
    let svc = service();
    let every = svc
        .get_model_statistics(Request::new(api::GetModelStatisticsRequest { model: None }))
        .await
        .unwrap()
        .into_inner();
    let listed = svc.registry.entries().len();
    assert_eq!(every.statistics.len(), listed);
    assert!(every.statistics.iter().all(|s| s.inference_count == 0));
    let one = svc
        .get_model_statistics(Request::new(api::GetModelStatisticsRequest {
            model: named("mlic"),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.statistics.len(), 1);
    let missing = svc
        .get_model_statistics(Request::new(api::GetModelStatisticsRequest {
            model: named("nope"),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}
