//! Fixed-point integer networks: the entropy-model path of the codec. Activations are Q`A`
//! (`A` = `activation_bits`), weights Q`W`; convolutions accumulate in i64 and round with
//! `(acc + 2^(W-1)) >> W` (arithmetic shift), exactly as `train_mlic.py`'s `int_conv`.

use ndarray::Array3;
use serde::Deserialize;

use crate::{MlicError, Result};

/// One layer as described in `entropy.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum LayerSpec {
    /// Same-padded, stride-1 convolution; `weight`/`bias` are offsets into `entropy.bin`.
    Conv {
        /// Output channels.
        cout: usize,
        /// Input channels.
        cin: usize,
        /// Square kernel size (odd).
        kernel: usize,
        /// Offset of `cout * cin * kernel²` weights.
        weight: usize,
        /// Offset of `cout` biases (Q`A+W`).
        bias: usize,
    },
    /// max(x, 0).
    Relu,
    /// Nearest-neighbour ×2 upsampling.
    Up,
}

#[derive(Debug, Clone)]
enum Layer {
    Conv {
        cout: usize,
        cin: usize,
        kernel: usize,
        weight: Vec<i64>,
        bias: Vec<i64>,
    },
    Relu,
    Up,
}

/// A sequence of integer layers.
#[derive(Debug, Clone)]
pub struct IntNetwork {
    layers: Vec<Layer>,
    weight_bits: u32,
}

impl IntNetwork {
    /// Builds a network from its layer list and the parameter blob.
    pub fn new(specs: &[LayerSpec], blob: &[i32], weight_bits: u32) -> Result<Self> {
        if !(1..=30).contains(&weight_bits) {
            return Err(MlicError::Model(format!(
                "weight_bits {weight_bits} out of range"
            )));
        }
        let slice = |offset: usize, len: usize| -> Result<Vec<i64>> {
            blob.get(offset..offset.saturating_add(len))
                .map(|s| s.iter().map(|&v| i64::from(v)).collect())
                .ok_or_else(|| {
                    MlicError::Model(format!("parameters {offset}+{len} beyond entropy.bin"))
                })
        };
        let layers = specs
            .iter()
            .map(|spec| {
                Ok(match *spec {
                    LayerSpec::Conv {
                        cout,
                        cin,
                        kernel,
                        weight,
                        bias,
                    } => {
                        if kernel % 2 == 0 || kernel > 15 || cout == 0 || cin == 0 {
                            return Err(MlicError::Model(format!(
                                "bad conv {cout}x{cin}x{kernel}"
                            )));
                        }
                        Layer::Conv {
                            cout,
                            cin,
                            kernel,
                            weight: slice(weight, cout * cin * kernel * kernel)?,
                            bias: slice(bias, cout)?,
                        }
                    }
                    LayerSpec::Relu => Layer::Relu,
                    LayerSpec::Up => Layer::Up,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            weight_bits,
        })
    }

    /// Input channels the first convolution expects.
    pub fn input_channels(&self) -> Option<usize> {
        self.layers.iter().find_map(|l| match l {
            Layer::Conv { cin, .. } => Some(*cin),
            _ => None,
        })
    }

    /// Runs the network on `[C, H, W]` Q`A` activations.
    pub fn forward(&self, input: Array3<i64>) -> Result<Array3<i64>> {
        let mut x = input;
        for layer in &self.layers {
            x = match layer {
                Layer::Conv {
                    cout,
                    cin,
                    kernel,
                    weight,
                    bias,
                } => conv(&x, *cout, *cin, *kernel, weight, bias, self.weight_bits)?,
                Layer::Relu => x.mapv_into(|v| v.max(0)),
                Layer::Up => {
                    let (c, h, w) = x.dim();
                    Array3::from_shape_fn((c, 2 * h, 2 * w), |(k, i, j)| x[[k, i / 2, j / 2]])
                }
            };
        }
        Ok(x)
    }
}

/// Same-padded stride-1 convolution in integers.
fn conv(
    x: &Array3<i64>,
    cout: usize,
    cin: usize,
    kernel: usize,
    weight: &[i64],
    bias: &[i64],
    weight_bits: u32,
) -> Result<Array3<i64>> {
    let (c, h, w) = x.dim();
    if c != cin {
        return Err(MlicError::Model(format!(
            "conv expects {cin} channels, got {c}"
        )));
    }
    let x = x.as_standard_layout();
    let input = x.as_slice().expect("standard layout");
    let pad = kernel / 2;
    let plane = h * w;
    let mut out = vec![0i64; cout * plane];
    for (o, acc) in out.chunks_exact_mut(plane).enumerate() {
        acc.fill(bias[o]);
        for ci in 0..cin {
            let src = &input[ci * plane..(ci + 1) * plane];
            for ky in 0..kernel {
                for kx in 0..kernel {
                    let wv = weight[((o * cin + ci) * kernel + ky) * kernel + kx];
                    if wv == 0 {
                        continue;
                    }
                    // Output rows/cols whose input row/col (i + ky - pad) lies inside the image.
                    let dy = ky as isize - pad as isize;
                    let dx = kx as isize - pad as isize;
                    let i0 = (-dy).max(0) as usize;
                    let i1 = (h as isize - dy).min(h as isize).max(0) as usize;
                    let j0 = (-dx).max(0) as usize;
                    let j1 = (w as isize - dx).min(w as isize).max(0) as usize;
                    if j0 >= j1 {
                        continue;
                    }
                    for i in i0..i1 {
                        let si = (i as isize + dy) as usize;
                        let row_out = &mut acc[i * w + j0..i * w + j1];
                        let start = (si * w) as isize + j0 as isize + dx;
                        let row_in = &src[start as usize..start as usize + (j1 - j0)];
                        // Wrapping: a hostile bitstream can drive activations anywhere; the
                        // result must still be the same on every machine, never a panic.
                        for (a, &v) in row_out.iter_mut().zip(row_in) {
                            *a = a.wrapping_add(wv.wrapping_mul(v));
                        }
                    }
                }
            }
        }
        let half = 1i64 << (weight_bits - 1);
        for a in acc.iter_mut() {
            *a = a.wrapping_add(half) >> weight_bits;
        }
    }
    Ok(Array3::from_shape_vec((cout, h, w), out).expect("sized"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x3 convolution against a direct evaluation of the formula.
    #[test]
    fn conv_matches_the_direct_formula_with_zero_padding() {
        let (cin, cout, k, h, w) = (2, 3, 3, 4, 5);
        let weight: Vec<i32> = (0..cout * cin * k * k)
            .map(|i| (i as i32 * 37 % 23) - 11)
            .collect();
        let bias: Vec<i32> = vec![100, -2048, 7];
        let mut blob = weight.clone();
        blob.extend(&bias);
        let specs = [LayerSpec::Conv {
            cout,
            cin,
            kernel: k,
            weight: 0,
            bias: weight.len(),
        }];
        let net = IntNetwork::new(&specs, &blob, 4).unwrap();
        let x = Array3::from_shape_fn((cin, h, w), |(c, i, j)| (c * 100 + i * 10 + j) as i64 - 50);
        let y = net.forward(x.clone()).unwrap();
        for o in 0..cout {
            for i in 0..h {
                for j in 0..w {
                    let mut acc = i64::from(bias[o]);
                    for c in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (si, sj) =
                                    (i as isize + ky as isize - 1, j as isize + kx as isize - 1);
                                if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                                    acc += i64::from(weight[((o * cin + c) * k + ky) * k + kx])
                                        * x[[c, si as usize, sj as usize]];
                                }
                            }
                        }
                    }
                    assert_eq!(y[[o, i, j]], (acc + 8) >> 4, "({o},{i},{j})");
                }
            }
        }
    }

    #[test]
    fn parameters_beyond_the_blob_are_refused() {
        let specs = [LayerSpec::Conv {
            cout: 2,
            cin: 2,
            kernel: 3,
            weight: 0,
            bias: 100,
        }];
        assert!(IntNetwork::new(&specs, &[0; 50], 12).is_err());
    }
}
