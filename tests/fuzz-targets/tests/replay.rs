//! Every fuzz target, in every CI run: the committed corpora and crash regressions replay
//! without a panic, and random and mutated inputs return (Ok or a typed error) without one.

use proptest::prelude::*;
use terse_entropy::Container;
use terse_fuzz_targets::{
    EXTREME_WORDS, StructuredEdit, TARGETS, Target, committed_inputs, restructure, workspace,
};

#[test]
fn committed_corpora_and_regressions_replay_without_a_panic() {
    for target in TARGETS {
        let corpus = committed_inputs("corpus", target.name);
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{} is empty: run scripts/fuzz",
            target.name
        );
        let regressions = committed_inputs("regressions", target.name);
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).expect("corpus file");
            (target.run)(&data);
        }
    }
}

#[test]
fn every_seed_is_a_valid_input() {
    for target in TARGETS {
        for (i, seed) in (target.seeds)().iter().enumerate() {
            assert!((target.run)(seed), "{} seed {i} is refused", target.name);
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(workspace().join("fuzz/Cargo.toml")).unwrap();
    for target in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml lacks [[bin]] {}",
            target.name
        );
        let source = workspace()
            .join("fuzz/fuzz_targets")
            .join(format!("{}.rs", target.name));
        let text = std::fs::read_to_string(&source).unwrap_or_default();
        assert!(
            text.contains(&format!("terse_fuzz_targets::{}(", target.name)),
            "{} does not call terse_fuzz_targets::{}",
            source.display(),
            target.name
        );
    }
}

/// One edit of a seed: flip bits, cut, overwrite with an extreme value, or duplicate a slice.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Extreme(usize, u32),
    Duplicate(usize, usize),
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match *edit {
            Edit::Flip(at, mask) => data[at % len] ^= mask.max(1),
            Edit::Truncate(at) => data.truncate(at % len),
            Edit::Extreme(at, value) => {
                let at = at % len;
                let bytes = value.to_le_bytes();
                let end = (at + 4).min(len);
                data[at..end].copy_from_slice(&bytes[..end - at]);
            }
            Edit::Duplicate(at, size) => {
                let at = at % len;
                let end = (at + size % 64).min(len);
                let slice = data[at..end].to_vec();
                data.splice(at..at, slice);
            }
        }
    }
    data
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, m)| Edit::Flip(a, m)),
        any::<usize>().prop_map(Edit::Truncate),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(u32::MAX),
                Just(1 << 31),
                Just(0xFFFF),
                any::<u32>()
            ]
        )
            .prop_map(|(a, v)| Edit::Extreme(a, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, s)| Edit::Duplicate(a, s)),
    ]
}

fn check_target(
    target: &Target,
    seeds: &[Vec<u8>],
    runner: &mut proptest::test_runner::TestRunner,
) {
    let strategy = (
        0..seeds.len(),
        proptest::collection::vec(edit(), 1..6),
        proptest::collection::vec(any::<u8>(), 0..512),
    );
    runner
        .run(&strategy, |(seed, edits, noise)| {
            (target.run)(&apply(seeds[seed].clone(), &edits));
            (target.run)(&noise);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", target.name));
}

/// Cases per target: `TERSE_FUZZ_CASES` (default 48) times `scale`.
fn fuzz_cases(scale: u32) -> u32 {
    std::env::var("TERSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48u32)
        * scale
}

/// A runner of `cases` random cases that keeps no failure file.
fn runner(cases: u32) -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    for target in TARGETS {
        let seeds = (target.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", target.name);
        check_target(target, &seeds, &mut runner(fuzz_cases(1)));
    }
}

/// A word from [`EXTREME_WORDS`], any word, or a small one.
fn extreme_word() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(EXTREME_WORDS),
        any::<u64>(),
        (0u64..4096),
    ]
}

fn structured_edit() -> impl Strategy<Value = StructuredEdit> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), extreme_word())
            .prop_map(|(field, word, value)| StructuredEdit::Word { field, word, value }),
        1 => (any::<usize>(), any::<usize>())
            .prop_map(|(field, len)| StructuredEdit::Cut { field, len }),
        1 => any::<usize>().prop_map(|field| StructuredEdit::Drop { field }),
        2 => (any::<usize>(), any::<usize>(), 1u8..)
            .prop_map(|(section, at, mask)| StructuredEdit::Flip { section, at, mask }),
        1 => (any::<usize>(), any::<usize>())
            .prop_map(|(section, len)| StructuredEdit::CutSection { section, len }),
    ]
}

/// Every target whose seeds are containers: header fields set to extreme values, cut or
/// dropped, and section payloads flipped or cut, all under valid checksums, must give Ok or a
/// typed error, never a panic (a division by zero in the splat decoder's context buckets got
/// through the byte-level edits, which stop at a checksum).
#[test]
fn containers_with_hostile_fields_under_valid_checksums_never_panic() {
    let cases = fuzz_cases(24);
    let mut covered = 0;
    for target in TARGETS {
        let seeds: Vec<Container> = (target.seeds)()
            .iter()
            .filter_map(|seed| Container::parse(seed).ok())
            .collect();
        if seeds.is_empty() {
            continue;
        }
        covered += 1;
        let strategy = (
            0..seeds.len(),
            proptest::collection::vec(structured_edit(), 1..4),
        );
        runner(cases)
            .run(&strategy, |(seed, edits)| {
                if let Some(bytes) = restructure(&seeds[seed], &edits) {
                    (target.run)(&bytes);
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", target.name));
    }
    assert!(covered >= 5, "only {covered} targets have container seeds");
}
