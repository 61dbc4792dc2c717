//! RECOMP extractive compression (Xu et al. 2024, carriex/recomp): retrieved documents are
//! split into sentences, the query and every sentence are embedded by a sentence encoder (mean
//! pooling, unit length; it runs outside this crate), sentences are scored by cosine similarity
//! to the query, and the best ones are kept in their original order. With a score threshold
//! and no sentence above it the result is empty: RECOMP's *selective augmentation* (prepend
//! nothing rather than noise).

use terse_text::TokenCounter;

/// A retrieved document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Caller's id.
    pub id: String,
    /// The text.
    pub text: String,
}

/// A sentence of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// Index of its document.
    pub document: usize,
    /// Index among its document's sentences.
    pub index: usize,
    /// The sentence, surrounding whitespace trimmed.
    pub text: String,
}

/// The sentences of every document, in order (blank ones dropped).
pub fn split(documents: &[Document]) -> Vec<Sentence> {
    let mut out = Vec::new();
    for (d, document) in documents.iter().enumerate() {
        let mut index = 0;
        for piece in terse_text::sentences(&document.text) {
            let text = piece.trim();
            if text.is_empty() {
                continue;
            }
            out.push(Sentence {
                document: d,
                index,
                text: text.to_string(),
            });
            index += 1;
        }
    }
    out
}

/// What to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Selection {
    /// At most this many sentences.
    pub top_k: Option<usize>,
    /// Only sentences scoring at least this.
    pub min_score: Option<f32>,
    /// At most this many target-LLM tokens of kept sentences in all.
    pub target_tokens: Option<usize>,
}

/// Each sentence with up to `window` neighbours on each side from the same document, joined by
/// spaces: the context an EXIT-style (context-aware) score reads.
pub fn windows(sentences: &[Sentence], window: usize) -> Vec<String> {
    (0..sentences.len())
        .map(|i| {
            let document = sentences[i].document;
            let first = (i.saturating_sub(window)..=i)
                .find(|&j| sentences[j].document == document)
                .unwrap_or(i);
            let last = (i..=(i + window).min(sentences.len() - 1))
                .rev()
                .find(|&j| sentences[j].document == document)
                .unwrap_or(i);
            sentences[first..=last]
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Cosine similarity of unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Indexes of the kept sentences, in original order: best score first until `top_k`, the
/// threshold or the token budget stops it (a sentence that would overflow the budget is
/// skipped and smaller ones may still fit). Ties keep the earlier sentence first.
pub fn select(
    sentences: &[Sentence],
    scores: &[f32],
    selection: Selection,
    counter: &TokenCounter,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sentences.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept = Vec::new();
    let mut tokens = 0usize;
    for i in order {
        if selection.top_k.is_some_and(|k| kept.len() >= k) {
            break;
        }
        if selection.min_score.is_some_and(|m| scores[i] < m) {
            break;
        }
        if let Some(budget) = selection.target_tokens {
            let cost = counter.count(&sentences[i].text);
            if tokens + cost > budget {
                continue;
            }
            tokens += cost;
        }
        kept.push(i);
    }
    kept.sort_unstable();
    kept
}

/// The kept sentences as prompt text: a document's sentences joined by spaces, documents by
/// blank lines.
pub fn render(sentences: &[Sentence], kept: &[usize]) -> String {
    let mut out = String::new();
    let mut previous: Option<usize> = None;
    for &i in kept {
        let s = &sentences[i];
        match previous {
            Some(d) if d == s.document => out.push(' '),
            Some(_) => out.push_str("\n\n"),
            None => {}
        }
        out.push_str(&s.text);
        previous = Some(s.document);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn docs() -> Vec<Document> {
        vec![
            Document {
                id: "a".into(),
                text: "Super Bowl 50 was played in 2016. The Broncos won it. Tickets sold out."
                    .into(),
            },
            Document {
                id: "b".into(),
                text: "Photosynthesis makes sugar.  \n\n It needs light.".into(),
            },
        ]
    }

    #[test]
    fn windows_stay_inside_their_document() {
        let sentences = split(&docs());
        let w = windows(&sentences, 1);
        assert_eq!(
            w[0],
            "Super Bowl 50 was played in 2016. The Broncos won it."
        );
        assert_eq!(w[2], "The Broncos won it. Tickets sold out.");
        assert_eq!(w[3], "Photosynthesis makes sugar. It needs light.");
    }

    #[test]
    fn splits_keeps_order_and_renders() {
        let sentences = split(&docs());
        assert_eq!(sentences.len(), 5);
        assert_eq!(sentences[3].text, "Photosynthesis makes sugar.");
        assert_eq!((sentences[4].document, sentences[4].index), (1, 1));
        let scores = [0.2, 0.9, 0.1, 0.05, 0.5];
        let counter = TokenCounter::default();
        let kept = select(
            &sentences,
            &scores,
            Selection {
                top_k: Some(2),
                ..Default::default()
            },
            &counter,
        );
        assert_eq!(kept, vec![1, 4]);
        assert_eq!(
            render(&sentences, &kept),
            "The Broncos won it.\n\nIt needs light."
        );
        // Selective augmentation: nothing above the threshold keeps nothing.
        let none = select(
            &sentences,
            &scores,
            Selection {
                min_score: Some(0.95),
                ..Default::default()
            },
            &counter,
        );
        assert!(none.is_empty() && render(&sentences, &none).is_empty());
    }

    proptest! {
        #[test]
        fn selection_respects_every_limit(
            scores in proptest::collection::vec(-1.0f32..1.0, 5),
            k in 0usize..6,
            budget in 0usize..40,
            min in -1.0f32..1.0,
        ) {
            let sentences = split(&docs());
            let counter = TokenCounter::default();
            let selection = Selection { top_k: Some(k), min_score: Some(min), target_tokens: Some(budget) };
            let kept = select(&sentences, &scores, selection, &counter);
            prop_assert!(kept.len() <= k);
            prop_assert!(kept.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(kept.iter().all(|&i| scores[i] >= min));
            let tokens: usize = kept.iter().map(|&i| counter.count(&sentences[i].text)).sum();
            prop_assert!(tokens <= budget);
        }
    }
}
