//! Fixed-point integer networks: the entropy-model path of the codec. Activations are Q`A`
//! (`A` = `activation_bits`), weights Q`W`; convolutions accumulate in i64 and round with
//! `(acc + 2^(W-1)) >> W` (arithmetic shift), exactly as `train_mlic.py`'s `int_conv`.
//!
//! Speed without leaving the integers: when a layer's input is small enough that no sum can
//! reach 2^53 (checked per call from the input's largest magnitude and the layer's largest
//! row of |weights|, which holds for every input a real encoder produces), every product and
//! partial sum is an integer that `f64` holds exactly, so the convolution runs as an `f64`
//! matrix product (im2col, ndarray's threaded GEMM) whose result is the exact integer sum
//! whatever the summation order, fused or not: the same on every machine. Larger inputs (only
//! hostile bitstreams make them) take the direct i64 loop with wrapping arithmetic, which is
//! what the exact sum gives whenever it fits in i64.

use ndarray::{Array2, Array3, ArrayViewMut2, s};
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
    Conv(Conv),
    Relu,
    Up,
}

/// Largest magnitude every sum of the exact `f64` path stays below: integers up to 2^53 are
/// exact in `f64`.
const EXACT_F64: u128 = 1 << 53;

/// Output positions per im2col block of the `f64` path (bounds its scratch memory).
const BLOCK_POSITIONS: usize = 2048;

/// A same-padded, stride-1 integer convolution.
#[derive(Debug, Clone)]
struct Conv {
    cout: usize,
    cin: usize,
    kernel: usize,
    /// `[cout][cin][ky][kx]`.
    weight: Vec<i64>,
    bias: Vec<i64>,
    /// The weights as the `f64` matrix `[cout, cin·kernel²]` (exact: they are 32-bit).
    matrix: Array2<f64>,
    /// The largest Σ|w| over output channels.
    row_l1: u128,
    /// The largest |bias|.
    bias_max: u128,
}

impl Conv {
    fn new(cout: usize, cin: usize, kernel: usize, weight: Vec<i64>, bias: Vec<i64>) -> Self {
        let taps = cin * kernel * kernel;
        let matrix = Array2::from_shape_fn((cout, taps), |(o, t)| weight[o * taps + t] as f64);
        let row_l1 = weight
            .chunks_exact(taps)
            .map(|row| row.iter().map(|w| u128::from(w.unsigned_abs())).sum())
            .max()
            .unwrap_or(0);
        let bias_max = bias
            .iter()
            .map(|b| u128::from(b.unsigned_abs()))
            .max()
            .unwrap_or(0);
        Self {
            cout,
            cin,
            kernel,
            weight,
            bias,
            matrix,
            row_l1,
            bias_max,
        }
    }

    /// Whether every sum `bias + Σ w·x + 2^(W−1)` over these `inputs` stays below 2^53, so the
    /// `f64` path gives the exact integers.
    fn exact_in_f64<'a>(
        &self,
        inputs: impl IntoIterator<Item = &'a i64>,
        weight_bits: u32,
    ) -> bool {
        let largest = inputs
            .into_iter()
            .map(|v| v.unsigned_abs())
            .max()
            .unwrap_or(0);
        self.bias_max + self.row_l1 * u128::from(largest) + (1u128 << (weight_bits - 1)) < EXACT_F64
    }
}

/// `(sum + 2^(W−1)) >> W`: a convolution's sum rounded to Q`A` (wrapping, as the i64 loop).
fn round_shift(sum: i64, weight_bits: u32) -> i64 {
    sum.wrapping_add(1 << (weight_bits - 1)) >> weight_bits
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
                        Layer::Conv(Conv::new(
                            cout,
                            cin,
                            kernel,
                            slice(weight, cout * cin * kernel * kernel)?,
                            slice(bias, cout)?,
                        ))
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
            Layer::Conv(conv) => Some(conv.cin),
            _ => None,
        })
    }

    /// Whether every layer works on each position alone (1×1 convolutions and ReLUs).
    pub fn is_pointwise(&self) -> bool {
        pointwise(&self.layers)
    }

    /// The network's output at positions `at` of `[C, H, W]` activations, as `[C', at.len()]`:
    /// what [`Self::forward`] gives there. A network of 1×1 convolutions and ReLUs works on
    /// each position alone, so it runs on those positions only.
    pub fn forward_at(&self, input: &Array3<i64>, at: &[(usize, usize)]) -> Result<Array2<i64>> {
        check_positions(input, at)?;
        if !self.is_pointwise() {
            return Ok(gather(&self.forward(input.clone())?, at));
        }
        self.forward_columns(gather(input, at))
    }

    /// A pointwise network (see [`Self::is_pointwise`]) on `[C, n]` columns of activations.
    pub fn forward_columns(&self, columns: Array2<i64>) -> Result<Array2<i64>> {
        if !self.is_pointwise() {
            return Err(MlicError::Model(
                "a network with spatial layers cannot run on columns".into(),
            ));
        }
        self.columns_through(&self.layers, columns)
    }

    /// `columns` `[C, n]` through pointwise `layers`.
    fn columns_through(&self, layers: &[Layer], columns: Array2<i64>) -> Result<Array2<i64>> {
        let n = columns.dim().1;
        let out = self.through(layers, columns.insert_axis(ndarray::Axis(1)))?;
        let channels = out.dim().0;
        Ok(out
            .into_shape_with_order((channels, n))
            .expect("one row of positions"))
    }

    /// [`Self::forward_at`] for an input that is zero wherever `support` is false (the
    /// checkerboard's anchors, before the non-anchors are coded). When the first layer is a
    /// convolution and the rest are pointwise, that convolution runs at `at` only and sums
    /// only the taps that reach the support from some position of `at`: the same integers,
    /// since the skipped inputs are zeros. Otherwise, or when the input is not zero outside
    /// `support`, this is [`Self::forward_at`].
    pub fn forward_at_sparse(
        &self,
        input: &Array3<i64>,
        at: &[(usize, usize)],
        support: impl Fn(usize, usize) -> bool,
    ) -> Result<Array2<i64>> {
        check_positions(input, at)?;
        let (c, h, w) = input.dim();
        let Some((Layer::Conv(first), rest)) = self.layers.split_first() else {
            return self.forward_at(input, at);
        };
        let zero_outside = (0..c).all(|ch| {
            input
                .index_axis(ndarray::Axis(0), ch)
                .indexed_iter()
                .all(|((i, j), &v)| v == 0 || support(i, j))
        });
        if !pointwise(rest) || !zero_outside || first.cin != c {
            return self.forward_at(input, at);
        }
        if !first.exact_in_f64(input, self.weight_bits) {
            return self.forward_at(input, at);
        }
        let (k, pad) = (first.kernel, (first.kernel / 2) as isize);
        // The input position tap (ky, kx) of output (i, j) reads, if inside the plane.
        let source = |(i, j): (usize, usize), (ky, kx): (usize, usize)| {
            let (si, sj) = (
                i as isize + ky as isize - pad,
                j as isize + kx as isize - pad,
            );
            (si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w)
                .then_some((si as usize, sj as usize))
        };
        let live: Vec<(usize, usize)> = (0..k)
            .flat_map(|ky| (0..k).map(move |kx| (ky, kx)))
            .filter(|&tap| {
                at.iter()
                    .any(|&p| source(p, tap).is_some_and(|(si, sj)| support(si, sj)))
            })
            .collect();
        let taps: Vec<usize> = (0..c)
            .flat_map(|ci| live.iter().map(move |&(ky, kx)| (ci * k + ky) * k + kx))
            .collect();
        let matrix = first.matrix.select(ndarray::Axis(1), &taps);
        let mut sums = Array2::<i64>::zeros((first.cout, at.len()));
        for (block, positions) in at.chunks(BLOCK_POSITIONS).enumerate() {
            terse_entropy::interrupt::check()?;
            let columns = Array2::from_shape_fn((taps.len(), positions.len()), |(t, p)| {
                let ci = t / live.len();
                source(positions[p], live[t % live.len()])
                    .map_or(0.0, |(si, sj)| input[[ci, si, sj]] as f64)
            });
            let block_sums = matrix.dot(&columns);
            let first_column = block * BLOCK_POSITIONS;
            for (o, row) in block_sums.outer_iter().enumerate() {
                for (p, &v) in row.iter().enumerate() {
                    sums[[o, first_column + p]] =
                        round_shift(first.bias[o] + v as i64, self.weight_bits);
                }
            }
        }
        self.columns_through(rest, sums)
    }

    /// Runs the network on `[C, H, W]` Q`A` activations.
    pub fn forward(&self, input: Array3<i64>) -> Result<Array3<i64>> {
        self.through(&self.layers, input)
    }

    /// `input` through `layers` (of this network).
    fn through(&self, layers: &[Layer], input: Array3<i64>) -> Result<Array3<i64>> {
        let mut x = input;
        for layer in layers {
            x = match layer {
                Layer::Conv(layer) => conv(&x, layer, self.weight_bits)?,
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

/// Whether `layers` work on each position alone (1×1 convolutions and ReLUs).
fn pointwise(layers: &[Layer]) -> bool {
    layers.iter().all(|layer| match layer {
        Layer::Conv(conv) => conv.kernel == 1,
        Layer::Relu => true,
        Layer::Up => false,
    })
}

/// `Err` when a position lies outside the `[C, H, W]` plane.
fn check_positions(input: &Array3<i64>, at: &[(usize, usize)]) -> Result<()> {
    let (h, w) = (input.dim().1, input.dim().2);
    match at.iter().find(|&&(i, j)| i >= h || j >= w) {
        Some(&(i, j)) => Err(MlicError::Model(format!(
            "position ({i}, {j}) outside a {h}x{w} plane"
        ))),
        None => Ok(()),
    }
}

/// The `[C, n]` activations of `x` `[C, H, W]` at positions `at` (each inside the plane).
pub(crate) fn gather(x: &Array3<i64>, at: &[(usize, usize)]) -> Array2<i64> {
    Array2::from_shape_fn((x.dim().0, at.len()), |(c, k)| x[[c, at[k].0, at[k].1]])
}

/// Same-padded stride-1 convolution in integers: `(bias + Σ w·x + 2^(W−1)) >> W`.
fn conv(x: &Array3<i64>, layer: &Conv, weight_bits: u32) -> Result<Array3<i64>> {
    let (c, h, w) = x.dim();
    if c != layer.cin {
        return Err(MlicError::Model(format!(
            "conv expects {} channels, got {c}",
            layer.cin
        )));
    }
    let x = x.as_standard_layout();
    let input = x.as_slice().expect("standard layout");
    let mut out = if layer.exact_in_f64(input, weight_bits) {
        exact_f64_sums(input, (h, w), layer)?
    } else {
        wrapping_sums(input, (h, w), layer)?
    };
    for a in out.iter_mut() {
        *a = round_shift(*a, weight_bits);
    }
    Ok(Array3::from_shape_vec((layer.cout, h, w), out).expect("sized"))
}

/// `bias + Σ w·x` of every output, as an `f64` matrix product: exact, because the caller
/// checked that every sum stays below 2^53. Stops between blocks once the call is interrupted.
fn exact_f64_sums(input: &[i64], (h, w): (usize, usize), layer: &Conv) -> Result<Vec<i64>> {
    let (cin, kernel) = (layer.cin, layer.kernel);
    let pad = kernel / 2;
    let plane = h * w;
    let taps = cin * kernel * kernel;
    let mut out = vec![0i64; layer.cout * plane];
    // Blocks of whole output rows, about BLOCK_POSITIONS positions each.
    let rows = (BLOCK_POSITIONS / w.max(1)).clamp(1, h.max(1));
    let mut columns = Array2::<f64>::zeros((taps, rows * w));
    for first in (0..h).step_by(rows) {
        terse_entropy::interrupt::check()?;
        let last = (first + rows).min(h);
        let n = (last - first) * w;
        let mut block = columns.slice_mut(s![.., ..n]);
        im2col(input, (h, w), cin, kernel, pad, first..last, &mut block);
        let sums = layer.matrix.dot(&block);
        for (o, row) in sums.outer_iter().enumerate() {
            let dst = &mut out[o * plane + first * w..][..n];
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = layer.bias[o] + v as i64;
            }
        }
    }
    Ok(out)
}

/// The im2col block of output rows `rows`: row `(ci·k + ky)·k + kx` holds, for each output
/// position, input `(ci, i + ky − pad, j + kx − pad)` or 0 outside the plane.
fn im2col(
    input: &[i64],
    (h, w): (usize, usize),
    cin: usize,
    kernel: usize,
    pad: usize,
    rows: std::ops::Range<usize>,
    block: &mut ArrayViewMut2<f64>,
) {
    let plane = h * w;
    for ci in 0..cin {
        let src = &input[ci * plane..(ci + 1) * plane];
        for ky in 0..kernel {
            for kx in 0..kernel {
                let mut dst = block.row_mut((ci * kernel + ky) * kernel + kx);
                let dst = dst.as_slice_mut().expect("rows of a standard-layout block");
                for (r, i) in rows.clone().enumerate() {
                    let line = &mut dst[r * w..(r + 1) * w];
                    let si = i as isize + ky as isize - pad as isize;
                    if si < 0 || si >= h as isize {
                        line.fill(0.0);
                        continue;
                    }
                    let src_row = &src[si as usize * w..(si as usize + 1) * w];
                    for (j, d) in line.iter_mut().enumerate() {
                        let sj = j as isize + kx as isize - pad as isize;
                        *d = if sj < 0 || sj >= w as isize {
                            0.0
                        } else {
                            src_row[sj as usize] as f64
                        };
                    }
                }
            }
        }
    }
}

/// `bias + Σ w·x` of every output in wrapping i64 arithmetic: the exact sum whenever it fits,
/// and the same bits on every machine when it does not. Stops between output channels once
/// the call is interrupted.
fn wrapping_sums(input: &[i64], (h, w): (usize, usize), layer: &Conv) -> Result<Vec<i64>> {
    let (cin, kernel, weight) = (layer.cin, layer.kernel, &layer.weight);
    let pad = kernel / 2;
    let plane = h * w;
    let mut out = vec![0i64; layer.cout * plane];
    for (o, acc) in out.chunks_exact_mut(plane).enumerate() {
        terse_entropy::interrupt::check()?;
        acc.fill(layer.bias[o]);
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
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network of one convolution (`cout` = `bias.len()`) with `weight_bits` `bits`.
    fn single_conv(
        weight: &[i32],
        bias: &[i32],
        cin: usize,
        kernel: usize,
        bits: u32,
    ) -> IntNetwork {
        let mut blob = weight.to_vec();
        blob.extend(bias);
        let specs = [LayerSpec::Conv {
            cout: bias.len(),
            cin,
            kernel,
            weight: 0,
            bias: weight.len(),
        }];
        IntNetwork::new(&specs, &blob, bits).unwrap()
    }

    /// A 3x3 convolution against a direct evaluation of the formula.
    #[test]
    fn conv_matches_the_direct_formula_with_zero_padding() {
        let (cin, cout, k, h, w) = (2, 3, 3, 4, 5);
        let weight: Vec<i32> = (0..cout * cin * k * k)
            .map(|i| (i as i32 * 37 % 23) - 11)
            .collect();
        let bias: Vec<i32> = vec![100, -2048, 7];
        let net = single_conv(&weight, &bias, cin, k, 4);
        let x = Array3::from_shape_fn((cin, h, w), |(c, i, j)| (c * 100 + i * 10 + j) as i64 - 50);
        let y = net.forward(x.clone()).unwrap();
        assert_eq!(y.dim(), (cout, h, w));
        for ((o, i, j), &v) in y.indexed_iter() {
            assert_eq!(v, direct((&weight, &bias, cin, k, 4), &x, (o, i, j)));
        }
    }

    /// `(bias + Σ w·x + 2^(W−1)) >> W` of one output, the sum exact (i128) then wrapped to
    /// i64 as the direct loop wraps it.
    fn direct(
        net: (&[i32], &[i32], usize, usize, u32),
        x: &Array3<i64>,
        (o, i, j): (usize, usize, usize),
    ) -> i64 {
        let (weight, bias, cin, k, bits) = net;
        let (_, h, w) = x.dim();
        let pad = (k / 2) as isize;
        let mut acc = i128::from(bias[o]);
        for c in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    let (si, sj) = (
                        i as isize + ky as isize - pad,
                        j as isize + kx as isize - pad,
                    );
                    if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                        acc += i128::from(weight[((o * cin + c) * k + ky) * k + kx])
                            * i128::from(x[[c, si as usize, sj as usize]]);
                    }
                }
            }
        }
        (acc as i64).wrapping_add(1 << (bits - 1)) >> bits
    }

    /// Both paths (the exact `f64` product for ordinary inputs, the wrapping loop for huge
    /// ones) against the direct formula, over kernel sizes and a plane larger than one im2col
    /// block.
    #[test]
    fn both_paths_give_the_formulas_integers() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |span: i64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % (2 * span as u64 + 1)) as i64 - span
        };
        for (cin, cout, k, h, w) in [(5, 4, 1, 9, 7), (3, 6, 3, 70, 61), (2, 3, 5, 8, 3)] {
            let weight: Vec<i32> = (0..cout * cin * k * k).map(|_| next(4000) as i32).collect();
            let bias: Vec<i32> = (0..cout).map(|_| next(1 << 20) as i32).collect();
            let net = single_conv(&weight, &bias, cin, k, 12);
            // Q10 activations as the codec has them, then magnitudes only a hostile stream
            // gives (sums past 2^53 and past i64).
            for span in [1i64 << 14, 1 << 45, i64::MAX / 2] {
                let x = Array3::from_shape_fn((cin, h, w), |_| next(span));
                let y = net.forward(x.clone()).unwrap();
                for ((o, i, j), &v) in y.indexed_iter() {
                    let expected = direct((&weight, &bias, cin, k, 12), &x, (o, i, j));
                    assert_eq!(v, expected, "k {k}, span {span}, ({o},{i},{j})");
                }
            }
        }
    }

    /// A call that has been interrupted stops in its convolutions, on both paths, instead of
    /// finishing work nobody will read.
    #[test]
    fn interrupted_calls_stop_in_the_convolutions() {
        use std::sync::{Arc, atomic::AtomicBool};
        let net = single_conv(&[3, -1, 2, 5], &[7, 9], 2, 1, 4);
        for magnitude in [1i64 << 10, i64::MAX / 4] {
            let x = Array3::from_elem((2, 3, 3), magnitude);
            assert!(net.forward(x.clone()).is_ok());
            let stopped =
                terse_entropy::interrupt::run_with_flag(Arc::new(AtomicBool::new(true)), || {
                    net.forward(x)
                });
            assert!(
                matches!(
                    stopped,
                    Err(MlicError::Entropy(terse_entropy::EntropyError::Interrupted))
                ),
                "{magnitude}: {stopped:?}"
            );
        }
    }

    /// `forward_at` gives `forward`'s outputs at the positions asked for, whether the network
    /// runs on those positions alone (1×1 convolutions) or on the whole plane.
    #[test]
    fn outputs_at_positions_equal_the_whole_planes() {
        let blob: Vec<i32> = (0..400).map(|i| (i * 73 % 61) - 30).collect();
        let pointwise = [
            LayerSpec::Conv {
                cout: 4,
                cin: 3,
                kernel: 1,
                weight: 0,
                bias: 12,
            },
            LayerSpec::Relu,
            LayerSpec::Conv {
                cout: 2,
                cin: 4,
                kernel: 1,
                weight: 20,
                bias: 28,
            },
        ];
        let spatial = [LayerSpec::Conv {
            cout: 2,
            cin: 3,
            kernel: 3,
            weight: 100,
            bias: 160,
        }];
        let x = Array3::from_shape_fn((3, 5, 6), |(c, i, j)| (c * 31 + i * 7 + j) as i64 - 40);
        let at: Vec<(usize, usize)> = (0..5)
            .flat_map(|i| (0..6).map(move |j| (i, j)))
            .filter(|&(i, j)| (i + j) % 2 == 1)
            .collect();
        for specs in [&pointwise[..], &spatial[..]] {
            let net = IntNetwork::new(specs, &blob, 4).unwrap();
            let whole = net.forward(x.clone()).unwrap();
            let some = net.forward_at(&x, &at).unwrap();
            assert_eq!(some.dim(), (2, at.len()));
            for (k, &(i, j)) in at.iter().enumerate() {
                for c in 0..2 {
                    assert_eq!(some[[c, k]], whole[[c, i, j]]);
                }
            }
            assert!(net.forward_at(&x, &[(5, 0)]).is_err());
            assert_eq!(net.forward_at(&x, &[]).unwrap().dim(), (2, 0));
        }
    }

    /// `forward_at_sparse` gives `forward_at`'s outputs: on checkerboard inputs (the taps
    /// that only read zeros skipped), and through the fallbacks (an input that is not zero
    /// outside the support, sums too large for the `f64` path, a network that is not one
    /// convolution followed by pointwise layers).
    #[test]
    fn sparse_outputs_equal_the_dense_ones() {
        let blob: Vec<i32> = (0..9000).map(|i| (i * 89 % 127) - 63).collect();
        let conv = |cout, cin, kernel, weight| LayerSpec::Conv {
            cout,
            cin,
            kernel,
            weight,
            bias: 8800,
        };
        let networks = [
            vec![conv(4, 3, 5, 0)],
            vec![conv(5, 3, 3, 100), LayerSpec::Relu, conv(2, 5, 1, 500)],
            vec![conv(4, 3, 3, 0), LayerSpec::Up, conv(2, 4, 1, 700)],
        ];
        let anchor = |i: usize, j: usize| (i + j).is_multiple_of(2);
        let (h, w) = (7, 9);
        let at: Vec<(usize, usize)> = (0..h)
            .flat_map(|i| (0..w).map(move |j| (i, j)))
            .filter(|&(i, j)| !anchor(i, j))
            .collect();
        for specs in &networks {
            let net = IntNetwork::new(specs, &blob, 6).unwrap();
            let inputs = [
                Array3::from_shape_fn((3, h, w), |(c, i, j)| {
                    if anchor(i, j) {
                        (c * 31 + i * 7 + j) as i64 % 23 - 11
                    } else {
                        0
                    }
                }),
                Array3::from_shape_fn((3, h, w), |(c, i, j)| (c + i * j) as i64 % 5 - 2),
                Array3::from_shape_fn(
                    (3, h, w),
                    |(_, i, j)| {
                        if anchor(i, j) { i64::MAX / 8 } else { 0 }
                    },
                ),
            ];
            for x in inputs {
                assert_eq!(
                    net.forward_at_sparse(&x, &at, anchor).unwrap(),
                    net.forward_at(&x, &at).unwrap(),
                    "{specs:?}"
                );
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
