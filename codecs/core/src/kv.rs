//! A transformer's key/value cache as it travels between the model runtime and the KV codec.

use crate::Error;

/// Dimensions of a KV cache of one sequence, stored `[layer][key, value][kv head][token][channel]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KvShape {
    /// Transformer blocks.
    pub layers: usize,
    /// Key/value heads per block (fewer than query heads under grouped-query attention).
    pub kv_heads: usize,
    /// Cached tokens.
    pub tokens: usize,
    /// Channels per head.
    pub head_dim: usize,
}

impl KvShape {
    /// Number of values (keys and values of every layer), or `None` on overflow.
    pub fn elements(&self) -> Option<usize> {
        self.layers
            .checked_mul(2)?
            .checked_mul(self.kv_heads)?
            .checked_mul(self.tokens)?
            .checked_mul(self.head_dim)
    }

    /// Values per (layer, key or value) plane.
    pub fn plane(&self) -> usize {
        self.kv_heads * self.tokens * self.head_dim
    }
}

/// A KV cache of one sequence: `values` in [`KvShape`]'s order.
#[derive(Debug, Clone, PartialEq)]
pub struct KvCache {
    shape: KvShape,
    values: Vec<f32>,
}

impl KvCache {
    /// A cache of `values` laid out as `shape` says; their count must match it.
    pub fn new(shape: KvShape, values: Vec<f32>) -> Result<Self, Error> {
        match shape.elements() {
            Some(n) if n == values.len() => Ok(Self { shape, values }),
            _ => Err(Error::invalid(format!(
                "a KV cache of shape {shape:?} holds {:?} values, got {}",
                shape.elements(),
                values.len()
            ))),
        }
    }

    /// An empty cache (no tokens yet) of a model's dimensions.
    pub fn empty(layers: usize, kv_heads: usize, head_dim: usize) -> Self {
        Self {
            shape: KvShape {
                layers,
                kv_heads,
                tokens: 0,
                head_dim,
            },
            values: Vec::new(),
        }
    }

    /// Its dimensions.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// All values in layout order.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The values, consumed.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// The cache of the first `tokens` tokens.
    pub fn truncated(&self, tokens: usize) -> Result<Self, Error> {
        self.keep_tokens(|t| t < tokens, tokens.min(self.shape.tokens))
    }

    /// The cache without tokens `start..start + count` (the ones after close up).
    pub fn without_tokens(&self, start: usize, count: usize) -> Result<Self, Error> {
        let end = start.saturating_add(count).min(self.shape.tokens);
        let start = start.min(end);
        self.keep_tokens(|t| t < start || t >= end, self.shape.tokens - (end - start))
    }

    /// The tokens for which `keep` holds (`kept` of them), in order.
    fn keep_tokens(&self, keep: impl Fn(usize) -> bool, kept: usize) -> Result<Self, Error> {
        let shape = KvShape {
            tokens: kept,
            ..self.shape
        };
        let dim = self.shape.head_dim;
        let mut values = Vec::with_capacity(shape.elements().unwrap_or(0));
        for block in self.values.chunks(self.shape.tokens * dim) {
            for (t, row) in block.chunks(dim).enumerate() {
                if keep(t) {
                    values.extend_from_slice(row);
                }
            }
        }
        Self::new(shape, values)
    }

    /// The keys (`kv` 0) or values (`kv` 1) of one layer: `[kv head][token][channel]`.
    pub fn plane(&self, layer: usize, kv: usize) -> &[f32] {
        let size = self.shape.plane();
        let start = (layer * 2 + kv) * size;
        &self.values[start..start + size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_must_hold_exactly_the_values_its_shape_names() {
        let shape = KvShape {
            layers: 2,
            kv_heads: 3,
            tokens: 4,
            head_dim: 5,
        };
        assert_eq!(shape.elements(), Some(240));
        let cache = KvCache::new(shape, (0..240).map(|v| v as f32).collect()).unwrap();
        assert_eq!(cache.plane(1, 1)[0], 180.0);
        assert!(KvCache::new(shape, vec![0.0; 239]).is_err());
        let short = cache.truncated(3).unwrap();
        assert_eq!(short.shape().tokens, 3);
        assert_eq!(short.plane(1, 1)[0], 180.0);
        assert_eq!(short.plane(1, 1)[3 * 5], 180.0 + 20.0);
        let cut = cache.without_tokens(1, 2).unwrap();
        assert_eq!(cut.shape().tokens, 2);
        // Token 0, then token 3 of each head.
        assert_eq!(
            &cut.plane(0, 0)[..10],
            &[0., 1., 2., 3., 4., 15., 16., 17., 18., 19.]
        );
        let huge = KvShape {
            layers: usize::MAX,
            ..shape
        };
        assert_eq!(huge.elements(), None);
    }
}
