//! Every reducer against the NumPy reference (`reference/reference.py`) on the same inputs:
//! identical kept indices and slots, output tokens within 1e-5.

use ndarray::Array2;
use serde::Deserialize;
use terse_vision::{
    PruMergeBudget, Reduction, StreamParams, avg_pool, divprune, fastervlm, idpruner, prumerge,
    query_importance, stream_reduce, tome, uniform, visionzip,
};

#[derive(Deserialize)]
struct Fixture {
    format: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    seed: u64,
    tokens: Vec<Vec<f32>>,
    keys: Vec<Vec<f32>>,
    attention: Vec<Vec<f32>>,
    k: usize,
    uniform: Vec<usize>,
    avg_pool: Pooled,
    fastervlm: Vec<usize>,
    visionzip: VisionZip,
    divprune: Vec<usize>,
    tome: Tome,
    prumerge: Merged,
    prumerge_plus: Merged,
    prumerge_fixed: FixedMerged,
    idpruner_attention: Vec<usize>,
    idpruner_query: Query,
    stc: Stream,
}

#[derive(Deserialize)]
struct Merged {
    kept: Vec<usize>,
    tokens: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct FixedMerged {
    ratio: f64,
    neighbours: usize,
    kept: Vec<usize>,
    tokens: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Query {
    query: Vec<Vec<f32>>,
    kept: Vec<usize>,
}

#[derive(Deserialize)]
struct Stream {
    frames: Vec<Vec<Vec<f32>>>,
    k: usize,
    result: Vec<StreamFrame>,
}

#[derive(Deserialize)]
struct StreamFrame {
    kept: Vec<usize>,
    #[serde(rename = "static")]
    static_tokens: usize,
}

#[derive(Deserialize)]
struct Pooled {
    side: usize,
    tokens: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct VisionZip {
    dominant: usize,
    contextual: usize,
    kept: Vec<usize>,
    targets: Vec<usize>,
    tokens: Vec<Vec<f32>>,
    slot: Vec<i64>,
}

#[derive(Deserialize)]
struct Tome {
    r: usize,
    protected: usize,
    kept: Vec<usize>,
    tokens: Vec<Vec<f32>>,
    sizes: Vec<f32>,
    slot: Vec<i64>,
}

fn matrix(rows: &[Vec<f32>]) -> Array2<f32> {
    let cols = rows[0].len();
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).unwrap()
}

fn assert_tokens(name: &str, got: &Reduction, expected: &[Vec<f32>]) {
    let expected = matrix(expected);
    assert_eq!(got.tokens.shape(), expected.shape(), "{name}");
    let worst = got
        .tokens
        .iter()
        .zip(expected.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-5, "{name}: tokens differ by {worst}");
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/reference.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    assert_eq!(fixture.format, "terse-vision-reference/1");
    fixture
}

#[test]
fn every_method_matches_the_numpy_reference() {
    for case in fixture().cases {
        let (tokens, keys, attention) = (
            matrix(&case.tokens),
            matrix(&case.keys),
            matrix(&case.attention),
        );
        let seed = case.seed;

        assert_eq!(
            uniform(tokens.view(), case.k).unwrap().kept,
            case.uniform,
            "uniform seed {seed}"
        );
        assert_eq!(
            fastervlm(tokens.view(), attention.view(), case.k)
                .unwrap()
                .kept,
            case.fastervlm,
            "fastervlm seed {seed}"
        );
        assert_eq!(
            divprune(tokens.view(), case.k).unwrap().kept,
            case.divprune,
            "divprune seed {seed}"
        );
        assert_tokens(
            "avg_pool",
            &avg_pool(tokens.view(), case.avg_pool.side).unwrap(),
            &case.avg_pool.tokens,
        );

        let vz = &case.visionzip;
        let got = visionzip(
            tokens.view(),
            attention.view(),
            keys.view(),
            vz.dominant,
            vz.contextual,
        )
        .unwrap();
        assert_eq!(
            got.kept[..vz.dominant],
            vz.kept[..],
            "visionzip dominant seed {seed}"
        );
        assert_eq!(
            got.kept[vz.dominant..],
            vz.targets[..],
            "visionzip targets seed {seed}"
        );
        assert_eq!(got.slot, vz.slot, "visionzip slots seed {seed}");
        assert_tokens("visionzip", &got, &vz.tokens);

        let head0 = attention.slice(ndarray::s![0..1, ..]);
        for (name, expected, budget, plus, neighbours) in [
            (
                "prumerge",
                &case.prumerge.kept,
                PruMergeBudget::Adaptive,
                false,
                32,
            ),
            (
                "prumerge+",
                &case.prumerge_plus.kept,
                PruMergeBudget::Adaptive,
                true,
                32,
            ),
            (
                "prumerge fixed",
                &case.prumerge_fixed.kept,
                PruMergeBudget::Ratio(case.prumerge_fixed.ratio),
                false,
                case.prumerge_fixed.neighbours,
            ),
        ] {
            let (got, _) =
                prumerge(tokens.view(), head0, keys.view(), budget, plus, neighbours).unwrap();
            assert_eq!(&got.kept, expected, "{name} seed {seed}");
            let tokens_expected = match name {
                "prumerge" => &case.prumerge.tokens,
                "prumerge+" => &case.prumerge_plus.tokens,
                _ => &case.prumerge_fixed.tokens,
            };
            assert_tokens(name, &got, tokens_expected);
        }

        let importance: Vec<f64> = (0..tokens.nrows())
            .map(|i| {
                attention
                    .column(i)
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>()
                    / attention.nrows() as f64
            })
            .collect();
        assert_eq!(
            idpruner(tokens.view(), &importance, case.k, 0.5)
                .unwrap()
                .kept,
            case.idpruner_attention,
            "idpruner seed {seed}"
        );
        let query = matrix(&case.idpruner_query.query);
        let importance = query_importance(tokens.view(), query.view()).unwrap();
        assert_eq!(
            idpruner(tokens.view(), &importance, case.k, 0.7)
                .unwrap()
                .kept,
            case.idpruner_query.kept,
            "idpruner query seed {seed}"
        );

        let later: Vec<Array2<f32>> = case.stc.frames.iter().map(|f| matrix(f)).collect();
        let mut frames = vec![tokens.view()];
        frames.extend(later.iter().map(|f| f.view()));
        let params = StreamParams {
            keep: case.stc.k,
            ..StreamParams::default()
        };
        let got = stream_reduce(&frames, params).unwrap();
        assert_eq!(got.len(), case.stc.result.len());
        for (t, (g, e)) in got.iter().zip(&case.stc.result).enumerate() {
            assert_eq!(
                (&g.reduction.kept, g.static_tokens),
                (&e.kept, e.static_tokens),
                "stc frame {t} seed {seed}"
            );
        }

        let tm = &case.tome;
        let got = tome(tokens.view(), keys.view(), tm.r, tm.protected, None).unwrap();
        assert_eq!(got.kept, tm.kept, "tome kept seed {seed}");
        assert_eq!(got.slot, tm.slot, "tome slots seed {seed}");
        assert_eq!(
            got.sizes.as_deref().unwrap(),
            &tm.sizes[..],
            "tome sizes seed {seed}"
        );
        assert_tokens("tome", &got, &tm.tokens);
    }
}

#[test]
fn bad_inputs_are_refused_with_reasons() {
    let case = &fixture().cases[0];
    let (tokens, keys, attention) = (
        matrix(&case.tokens),
        matrix(&case.keys),
        matrix(&case.attention),
    );
    let n = tokens.nrows();
    let msg = |r: terse_vision::Result<Reduction>| r.unwrap_err().to_string();
    assert!(msg(fastervlm(tokens.view(), attention.view(), 0)).contains("cannot keep 0"));
    assert!(
        msg(fastervlm(tokens.view(), attention.view(), n + 1))
            .contains(&format!("cannot keep {}", n + 1))
    );
    assert!(
        msg(fastervlm(
            tokens.view(),
            attention.slice(ndarray::s![.., 1..]),
            4
        ))
        .contains("cls_attention must be")
    );
    let mut nan = tokens.clone();
    nan[[3, 2]] = f32::NAN;
    assert!(msg(divprune(nan.view(), 4)).contains("tokens[3, 2] is NaN"));
    assert!(
        msg(visionzip(
            tokens.view(),
            attention.view(),
            keys.slice(ndarray::s![1.., ..]),
            4,
            2
        ))
        .contains("keys must be")
    );
    assert!(
        msg(visionzip(
            tokens.view(),
            attention.view(),
            keys.view(),
            n - 1,
            2
        ))
        .contains("dominant + contextual")
    );
    assert!(msg(tome(tokens.view(), keys.view(), n, 1, None)).contains("at most"));
    assert!(msg(avg_pool(tokens.slice(ndarray::s![1.., ..]), 2)).contains("square"));
}
