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
        let huge = KvShape {
            layers: usize::MAX,
            ..shape
        };
        assert_eq!(huge.elements(), None);
    }
}
