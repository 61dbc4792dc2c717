//! Context-adaptive coding of the integer latents: each channel is predicted from its causal
//! neighbours (the median edge detector of LOCO-I / JPEG-LS) and the residual is range-coded
//! with adaptive models per channel and local-activity bucket. Integer-only, so decoding is
//! identical everywhere. Complements the static factorized prior: the encoder keeps whichever
//! is smaller.

use ndarray::Array3;
use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers};

use crate::Result;

const BUCKETS: usize = 8;

fn med(left: i32, up: i32, up_left: i32) -> i32 {
    if up_left >= left.max(up) {
        left.min(up)
    } else if up_left <= left.min(up) {
        left.max(up)
    } else {
        left + up - up_left
    }
}

fn bucket(activity: i32) -> usize {
    (32 - (activity.unsigned_abs()).leading_zeros()).min(BUCKETS as u32 - 1) as usize
}

/// Neighbours of (y, x) in one channel plane (zero outside), as (left, up, up-left, activity).
fn neighbours(plane: &[i32], w: usize, y: usize, x: usize) -> (i32, i32, i32, i32) {
    let at = |yy: usize, xx: usize| plane[yy * w + xx];
    let left = if x > 0 {
        at(y, x - 1)
    } else if y > 0 {
        at(y - 1, x)
    } else {
        0
    };
    let up = if y > 0 { at(y - 1, x) } else { left };
    let up_left = if x > 0 && y > 0 { at(y - 1, x - 1) } else { up };
    let activity = (left - up_left).abs() + (up - up_left).abs();
    (left, up, up_left, activity)
}

fn model(channels: usize, max: i32) -> Result<AdaptiveIntegers> {
    Ok(AdaptiveIntegers::new(
        -2 * i64::from(max),
        2 * i64::from(max),
        channels * BUCKETS,
    )?)
}

/// Codes `[L, h, w]` latents bounded by ±`max`.
pub fn encode_context(values: &Array3<i32>, max: i32) -> Result<Vec<u8>> {
    let (l, h, w) = values.dim();
    let mut coder = model(l, max)?;
    let mut enc = AdaptiveEncoder::new();
    let flat = values.as_standard_layout();
    let data = flat.as_slice().expect("standard layout");
    for c in 0..l {
        let plane = &data[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let (left, up, up_left, activity) = neighbours(plane, w, y, x);
                let residual = plane[y * w + x] - med(left, up, up_left);
                coder.encode(
                    &mut enc,
                    c * BUCKETS + bucket(activity),
                    i64::from(residual),
                )?;
            }
        }
    }
    Ok(enc.finish())
}

/// Inverse of [`encode_context`].
pub fn decode_context(bytes: &[u8], shape: (usize, usize, usize), max: i32) -> Result<Array3<i32>> {
    let (l, h, w) = shape;
    let mut coder = model(l, max)?;
    let mut dec = AdaptiveDecoder::new(bytes)?;
    let mut data = vec![0i32; l * h * w];
    for c in 0..l {
        let plane = &mut data[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let (left, up, up_left, activity) = neighbours(plane, w, y, x);
                let residual = coder.decode(&mut dec, c * BUCKETS + bucket(activity))?;
                let value = i64::from(med(left, up, up_left)) + residual;
                plane[y * w + x] = value.clamp(i64::from(-max), i64::from(max)) as i32;
                if value.abs() > i64::from(max) {
                    return Err(crate::WallocError::Invalid(format!(
                        "a latent lies outside ±{max}"
                    )));
                }
            }
        }
    }
    Ok(Array3::from_shape_vec((l, h, w), data).expect("sized"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_smooth_and_noisy_planes() {
        let values = Array3::from_shape_fn((3, 17, 23), |(c, y, x)| {
            (((x * 7 + y * 3 + c * 11) % 41) as i32 - 20) + if (x + y) % 5 == 0 { 60 } else { 0 }
        });
        let bytes = encode_context(&values, 127).unwrap();
        assert_eq!(decode_context(&bytes, values.dim(), 127).unwrap(), values);
    }
}
