//! Text-side building blocks shared by the context compressors: a wrapper of a Hugging Face
//! `tokenizer.json` with the operations the LLMLingua-2 reference uses (`tokenize`,
//! `convert_tokens_to_string`, `convert_tokens_to_ids`) and its sub-word family, the target
//! LLM's token counter (OpenAI cl100k_base, shipped inside `tiktoken-rs`), and sentence
//! segmentation.

use std::sync::Arc;

use tokenizers::Tokenizer;

/// Why text could not be tokenized.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The tokenizer file is unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TextError>;

/// How a tokenizer marks words in its sub-word tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubwordFamily {
    /// BERT WordPiece: a token continues the previous word when it starts with `##`.
    WordPiece,
    /// SentencePiece (XLM-R): a token starts a new word when it starts with `▁`.
    SentencePiece,
}

/// The special tokens a classifier input is framed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Sequence start (`[CLS]` / `<s>`).
    pub cls: String,
    /// Sequence end (`[SEP]` / `</s>`).
    pub sep: String,
    /// Padding (`[PAD]` / `<pad>`).
    pub pad: String,
    /// Unknown (`[UNK]` / `<unk>`).
    pub unk: String,
    /// Mask (`[MASK]` / `<mask>`).
    pub mask: String,
}

/// A Hugging Face tokenizer with its family and special tokens.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    family: SubwordFamily,
    special: SpecialTokens,
    unk_id: u32,
}

impl TextTokenizer {
    /// Loads a `tokenizer.json`; the family and special tokens are read from it (a WordPiece
    /// decoder means BERT, a Metaspace decoder SentencePiece).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut inner =
            Tokenizer::from_bytes(bytes).map_err(|e| TextError::Tokenizer(e.to_string()))?;
        // `tokenize` never truncates or pads (a saved tokenizer.json may carry both settings).
        inner
            .with_truncation(None)
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| TextError::Tokenizer(e.to_string()))?;
        let decoder = json["decoder"]["type"].as_str().unwrap_or_default();
        let (family, names) = match decoder {
            "WordPiece" => (
                SubwordFamily::WordPiece,
                ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"],
            ),
            "Metaspace" => (
                SubwordFamily::SentencePiece,
                ["<s>", "</s>", "<pad>", "<unk>", "<mask>"],
            ),
            other => {
                return Err(TextError::Tokenizer(format!(
                    "decoder `{other}` is neither WordPiece (BERT) nor Metaspace (SentencePiece)"
                )));
            }
        };
        for name in names {
            if inner.token_to_id(name).is_none() {
                return Err(TextError::Tokenizer(format!(
                    "special token `{name}` is not in the vocabulary"
                )));
            }
        }
        let special = SpecialTokens {
            cls: names[0].into(),
            sep: names[1].into(),
            pad: names[2].into(),
            unk: names[3].into(),
            mask: names[4].into(),
        };
        let unk_id = inner.token_to_id(&special.unk).expect("checked");
        Ok(Self {
            inner: Arc::new(inner),
            family,
            special,
            unk_id,
        })
    }

    /// The sub-word family.
    pub fn family(&self) -> SubwordFamily {
        self.family
    }

    /// The special tokens.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// Whether `token` is one of the tokenizer's added special tokens or framing tokens.
    pub fn is_special(&self, token: &str) -> bool {
        let s = &self.special;
        [&s.cls, &s.sep, &s.pad, &s.unk, &s.mask]
            .iter()
            .any(|t| *t == token)
    }

    /// Sub-word tokens of `text` without special tokens (`tokenizer.tokenize`).
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_tokens().to_vec())
    }

    /// Sub-word tokens of `text` with their byte spans in `text`.
    pub fn tokenize_with_offsets(&self, text: &str) -> Result<Vec<(String, (usize, usize))>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        Ok(encoding
            .get_tokens()
            .iter()
            .cloned()
            .zip(encoding.get_offsets().iter().copied())
            .collect())
    }

    /// Token ids, unknown tokens mapped to the unknown id (`convert_tokens_to_ids`).
    pub fn ids(&self, tokens: &[String]) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| self.inner.token_to_id(t).unwrap_or(self.unk_id))
            .collect()
    }

    /// Text of tokens through the tokenizer's decoder (`convert_tokens_to_string`).
    pub fn tokens_to_string(&self, tokens: &[String]) -> Result<String> {
        match self.inner.get_decoder() {
            Some(decoder) => {
                use tokenizers::Decoder;
                decoder
                    .decode(tokens.to_vec())
                    .map_err(|e| TextError::Tokenizer(e.to_string()))
            }
            None => Ok(tokens.join(" ")),
        }
    }

    /// Size of the vocabulary with added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// Counts tokens of the target LLM: OpenAI cl100k_base (GPT-3.5/4), as the LLMLingua reference
/// does with `tiktoken.encoding_for_model("gpt-3.5-turbo")`.
#[derive(Clone, Copy)]
pub struct TokenCounter {
    bpe: &'static tiktoken_rs::CoreBPE,
}

impl Default for TokenCounter {
    fn default() -> Self {
        Self {
            bpe: tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

impl TokenCounter {
    /// Tokens of `text` (special-token text is ordinary text here).
    pub fn count(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }
}

/// Sentences of `text` by the Unicode sentence-boundary rules (UAX #29), each with its trailing
/// whitespace, so that concatenating them gives `text` back.
pub fn sentences(text: &str) -> Vec<&str> {
    use unicode_segmentation::UnicodeSegmentation;
    text.split_sentence_bounds().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl100k_counts_like_tiktoken() {
        // tiktoken 0.14: encoding_for_model("gpt-3.5-turbo").encode("hello world, Ünïcode test 123")
        assert_eq!(
            TokenCounter::default().count("hello world, Ünïcode test 123"),
            10
        );
    }

    #[test]
    fn sentences_cover_the_text() {
        let text = "Dr. Smith arrived at 5 p.m. on Monday. He left! Did he return? Yes.";
        let parts = sentences(text);
        assert_eq!(parts.concat(), text);
        assert!(parts.len() >= 4, "{parts:?}");
    }
}
