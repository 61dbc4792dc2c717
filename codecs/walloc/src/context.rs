//! Context-adaptive coding of the integer latents: each channel of an image is predicted from its causal
//! neighbours (mean of left and up, corrected by the up-row slope; audio sequences are coded
//! directly, see [`Layout`]) and the residual is
//! range-coded with adaptive models per channel, local activity and the left residual's size. Integer-only, so decoding is
//! identical everywhere. Complements the static factorized prior: the encoder keeps whichever
//! is smaller.

use std::ops::Range;

use ndarray::Array3;
use rayon::prelude::*;
use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers};

use crate::Result;

const ACTIVITY: usize = 10;
const LEFT: usize = 4;
const BUCKETS: usize = ACTIVITY * LEFT;

/// Causal neighbourhood of (y, x) in one channel plane: (left, up, up-left, up-right) with
/// edge replication.
fn neighbours(plane: &[i32], w: usize, y: usize, x: usize) -> [i32; 4] {
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
    let up_right = if y > 0 && x + 1 < w {
        at(y - 1, x + 1)
    } else {
        up
    };
    [left, up, up_left, up_right]
}

/// Prediction: the mean of left and up, corrected by a quarter of the up-row slope.
fn predict([left, up, up_left, up_right]: [i32; 4]) -> i32 {
    (2 * (left + up) + up_right - up_left).div_euclid(4)
}

/// How the causal neighbourhood of a latent is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 2-D planes (images): predicted from left and up, local activity from the gradients.
    Plane,
    /// 1-D sequences (audio latents `[L, 1, t]`): successive latents are nearly uncorrelated, so
    /// each value is coded directly (prediction 0) in the context of the magnitudes of the two
    /// previous values.
    Sequence,
}

/// Prediction and local activity of position (y, x) of a channel plane.
fn estimate(layout: Layout, plane: &[i32], w: usize, y: usize, x: usize) -> (i32, i32) {
    match layout {
        Layout::Plane => {
            let near @ [left, up, up_left, up_right] = neighbours(plane, w, y, x);
            let activity = (left - up_left).abs() + (up - up_left).abs() + (up - up_right).abs();
            (predict(near), activity)
        }
        Layout::Sequence => {
            let at = |back: usize| {
                if x >= back {
                    plane[y * w + x - back].abs()
                } else {
                    0
                }
            };
            (0, at(1) + at(2))
        }
    }
}

/// Context of a residual: local activity (log2 bucket) × size of the left neighbour's residual.
fn context(activity: i32, left_residual: i32) -> usize {
    let activity = (32 - activity.unsigned_abs().leading_zeros()).min(ACTIVITY as u32 - 1) as usize;
    let left_class =
        (32 - left_residual.unsigned_abs().leading_zeros()).min(LEFT as u32 - 1) as usize;
    activity * LEFT + left_class
}

/// Residual magnitude classes: residuals are bounded by 2·(2^15 − 1) < 2^17.
const CLASSES: i64 = 18;

/// Adaptive models of a run of latent channels (each channel's models are its own, so a
/// channel group needs only its channels'). A residual is coded as its magnitude class (bit
/// length, in the context of channel and activity bucket: a small alphabet that learns fast),
/// its sign (in the context of channel and class) and the bits below the leading one (the top
/// one adaptive per class, the rest raw).
#[derive(Clone)]
struct Models {
    /// The first channel these models serve.
    first: usize,
    class: AdaptiveIntegers,
    sign: AdaptiveIntegers,
    top: AdaptiveIntegers,
}

/// The context models of every latent channel at the start of a coding, built once per loaded
/// model (seeding them from a prior costs more than coding a small image); each coding starts
/// from a copy of its channels' part.
#[derive(Clone)]
pub struct ContextModels {
    all: Models,
    channels: usize,
}

impl ContextModels {
    /// Fresh models of `channels` latent channels, started from `prior`'s counts if given
    /// (checked for that many channels by [`ContextPrior::from_json`]).
    pub fn new(channels: usize, prior: Option<&ContextPrior>) -> Result<Self> {
        let classes = CLASSES as usize;
        let mut all = Models {
            first: 0,
            class: AdaptiveIntegers::new(0, CLASSES - 1, channels.max(1) * BUCKETS)?,
            sign: AdaptiveIntegers::new(0, 1, channels.max(1) * classes)?,
            top: AdaptiveIntegers::new(0, 1, channels.max(1) * classes)?,
        };
        if let Some(prior) = prior {
            for (i, counts) in prior.class_counts.iter().enumerate() {
                all.class.seed(i, counts)?;
            }
            for (i, counts) in prior.sign_counts.iter().enumerate() {
                all.sign.seed(i, counts)?;
            }
            for (i, counts) in prior.top_counts.iter().enumerate() {
                all.top.seed(i, counts)?;
            }
        }
        Ok(Self { all, channels })
    }

    /// A copy of the models of `channels`, to code them with.
    fn start(&self, channels: Range<usize>) -> Result<Models> {
        if channels.end > self.channels {
            return Err(crate::WallocError::Invalid(format!(
                "latents of {} channels for context models of {}",
                channels.end, self.channels
            )));
        }
        let classes = CLASSES as usize;
        let rows = |per: usize| channels.start * per..channels.end * per;
        Ok(Models {
            first: channels.start,
            class: self.all.class.subset(rows(BUCKETS))?,
            sign: self.all.sign.subset(rows(classes))?,
            top: self.all.top.subset(rows(classes))?,
        })
    }
}

impl Models {
    fn encode(
        &mut self,
        enc: &mut AdaptiveEncoder,
        channel: usize,
        bucket: usize,
        residual: i32,
    ) -> Result<()> {
        let channel = channel - self.first;
        let magnitude = residual.unsigned_abs();
        let class = i64::from(32 - magnitude.leading_zeros());
        self.class.encode(enc, channel * BUCKETS + bucket, class)?;
        if class == 0 {
            return Ok(());
        }
        let slot = channel * CLASSES as usize + class as usize;
        self.sign.encode(enc, slot, i64::from(residual < 0))?;
        if class >= 2 {
            let below = class as u32 - 1;
            self.top
                .encode(enc, slot, i64::from((magnitude >> (below - 1)) & 1))?;
            enc.encode_bits(u64::from(magnitude), below - 1)?;
        }
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder, channel: usize, bucket: usize) -> Result<i64> {
        let channel = channel - self.first;
        let class = self.class.decode(dec, channel * BUCKETS + bucket)?;
        if !(0..CLASSES).contains(&class) {
            return Err(crate::WallocError::Invalid(
                "latent residual class out of range".into(),
            ));
        }
        if class == 0 {
            return Ok(0);
        }
        let slot = channel * CLASSES as usize + class as usize;
        let negative = self.sign.decode(dec, slot)? != 0;
        let mut magnitude = 1u64 << (class - 1);
        if class >= 2 {
            let below = class as u32 - 1;
            magnitude |= ((self.top.decode(dec, slot)? as u64) & 1) << (below - 1);
            magnitude |= dec.decode_bits(below - 1)? & ((1 << (below - 1)) - 1);
        }
        let value = magnitude as i64;
        Ok(if negative { -value } else { value })
    }
}

/// Learned starting counts of the context models (`context.json`, fitted on training latents by
/// `models/scripts/walloc/fit_context_prior.py`): flattened `[channel][context][class]`,
/// `[channel][class][sign]` and `[channel][class][top bit]`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ContextPrior {
    format: String,
    activity: usize,
    left: usize,
    classes: i64,
    class_counts: Vec<Vec<u32>>,
    sign_counts: Vec<Vec<u32>>,
    top_counts: Vec<Vec<u32>>,
}

impl ContextPrior {
    /// Parses and checks a prior for `channels` latent channels.
    pub fn from_json(bytes: &[u8], channels: usize) -> Result<Self> {
        let bad = |m: String| crate::WallocError::Model(format!("context.json: {m}"));
        let prior: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if prior.format != "terse-walloc-context/1"
            || prior.activity != ACTIVITY
            || prior.left != LEFT
            || prior.classes != CLASSES
        {
            return Err(bad(
                "format or context layout differs from this build".into()
            ));
        }
        let shapes = [
            (&prior.class_counts, channels * BUCKETS, CLASSES as usize),
            (&prior.sign_counts, channels * CLASSES as usize, 2),
            (&prior.top_counts, channels * CLASSES as usize, 2),
        ];
        for (table, rows, cols) in shapes {
            if table.len() != rows || table.iter().any(|r| r.len() != cols) {
                return Err(bad(format!("a table is not [{rows}, {cols}]")));
            }
        }
        Ok(prior)
    }
}

/// Most channel groups a bitstream may split its context coding into.
pub const MAX_GROUPS: usize = 4;

/// Latents per channel group the encoder aims at: fewer than twice this many latents stay in
/// one stream (each extra stream costs its seal and flush, about 12 bytes).
const LATENTS_PER_GROUP: usize = 1 << 16;

/// How many channel groups `[L, h, w]` latents are coded in: one per 2^16 latents, at most
/// [`MAX_GROUPS`] and at most one per channel. A function of the shape alone, so every machine
/// writes the same bitstream.
pub fn group_count((l, h, w): (usize, usize, usize)) -> usize {
    (l * h * w / LATENTS_PER_GROUP).clamp(1, MAX_GROUPS.min(l.max(1)))
}

/// The channels of group `g` of `groups` over `l` channels: consecutive, as even as can be.
fn group_channels(l: usize, groups: usize, g: usize) -> Range<usize> {
    g * l / groups..(g + 1) * l / groups
}

/// Codes `[L, h, w]` latents in `groups` streams of consecutive channels, each on a thread of
/// the rayon pool under the calling thread's interrupt flag. The models of a channel learn
/// from that channel alone, so each latent is coded with the same probabilities as in one
/// stream.
pub fn encode_context_groups(
    values: &Array3<i32>,
    models: &ContextModels,
    layout: Layout,
    groups: usize,
) -> Result<Vec<Vec<u8>>> {
    let (l, h, w) = values.dim();
    let flat = values.as_standard_layout();
    let data = flat.as_slice().expect("standard layout");
    let interrupt = terse_entropy::interrupt::handle();
    (0..groups)
        .into_par_iter()
        .map(|g| {
            let channels = group_channels(l, groups, g);
            interrupt.run(|| encode_channels(data, (l, h, w), channels, models, layout))
        })
        .collect()
}

/// Codes the planes of `channels` of `[L, h, w]` latents (`data` in standard layout).
fn encode_channels(
    data: &[i32],
    (_, h, w): (usize, usize, usize),
    channels: Range<usize>,
    models: &ContextModels,
    layout: Layout,
) -> Result<Vec<u8>> {
    let mut models = models.start(channels.clone())?;
    let mut enc = AdaptiveEncoder::new();
    for c in channels {
        terse_entropy::interrupt::check()?;
        let plane = &data[c * h * w..(c + 1) * h * w];
        let mut left_residual = 0i32;
        for y in 0..h {
            for x in 0..w {
                let (prediction, activity) = estimate(layout, plane, w, y, x);
                let residual = plane[y * w + x] - prediction;
                models.encode(&mut enc, c, context(activity, left_residual), residual)?;
                left_residual = if x + 1 < w { residual } else { 0 };
            }
        }
    }
    Ok(enc.seal()?)
}

/// Inverse of [`encode_context_groups`]: one stream per group, decoded in parallel on the
/// rayon pool under the calling thread's interrupt flag.
pub fn decode_context_groups(
    streams: &[&[u8]],
    (l, h, w): (usize, usize, usize),
    max: i32,
    models: &ContextModels,
    layout: Layout,
) -> Result<Array3<i32>> {
    let groups = streams.len();
    if groups == 0 || groups > MAX_GROUPS.min(l.max(1)) {
        return Err(crate::WallocError::Invalid(format!(
            "{groups} context groups for {l} channels"
        )));
    }
    let mut data = vec![0i32; l * h * w];
    let mut parts = Vec::with_capacity(groups);
    let mut rest = data.as_mut_slice();
    for (g, &stream) in streams.iter().enumerate() {
        let channels = group_channels(l, groups, g);
        let (part, tail) = rest.split_at_mut(channels.len() * h * w);
        parts.push((stream, channels, part));
        rest = tail;
    }
    let interrupt = terse_entropy::interrupt::handle();
    parts
        .into_par_iter()
        .map(|(bytes, channels, planes)| {
            interrupt
                .run(|| decode_channels(bytes, planes, (l, h, w), channels, max, models, layout))
        })
        .collect::<Result<Vec<()>>>()?;
    Ok(Array3::from_shape_vec((l, h, w), data).expect("sized"))
}

/// Decodes the planes of `channels` into `planes` (theirs, in order).
fn decode_channels(
    bytes: &[u8],
    planes: &mut [i32],
    (_, h, w): (usize, usize, usize),
    channels: Range<usize>,
    max: i32,
    models: &ContextModels,
    layout: Layout,
) -> Result<()> {
    let mut models = models.start(channels.clone())?;
    let mut dec = AdaptiveDecoder::new(bytes)?;
    for (c, plane) in channels.zip(planes.chunks_exact_mut(h * w)) {
        terse_entropy::interrupt::check()?;
        let mut left_residual = 0i32;
        for y in 0..h {
            for x in 0..w {
                let (prediction, activity) = estimate(layout, plane, w, y, x);
                let residual = models.decode(&mut dec, c, context(activity, left_residual))?;
                let value = i64::from(prediction) + residual;
                if value.abs() > i64::from(max) {
                    return Err(crate::WallocError::Invalid(format!(
                        "a latent lies outside ±{max}"
                    )));
                }
                plane[y * w + x] = value as i32;
                left_residual = if x + 1 < w { residual as i32 } else { 0 };
            }
        }
    }
    dec.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_smooth_and_noisy_planes() {
        let values = Array3::from_shape_fn((3, 17, 23), |(c, y, x)| {
            (((x * 7 + y * 3 + c * 11) % 41) as i32 - 20) + if (x + y) % 5 == 0 { 60 } else { 0 }
        });
        let models = ContextModels::new(3, None).unwrap();
        for layout in [Layout::Plane, Layout::Sequence] {
            let streams = encode_context_groups(&values, &models, layout, 1).unwrap();
            let back = decode_context_groups(&[&streams[0]], values.dim(), 127, &models, layout);
            assert_eq!(back.unwrap(), values);
        }
    }

    #[test]
    fn channel_groups_code_each_latent_as_one_stream_does() {
        let values = Array3::from_shape_fn((5, 40, 30), |(c, y, x)| {
            ((x * 13 + y * 7 + c * 5) % 23) as i32 - 11 + if (x * y) % 9 == 0 { 40 } else { 0 }
        });
        let models = ContextModels::new(5, None).unwrap();
        let one = encode_context_groups(&values, &models, Layout::Plane, 1)
            .unwrap()
            .remove(0);
        for groups in 1..=4 {
            let streams = encode_context_groups(&values, &models, Layout::Plane, groups).unwrap();
            assert_eq!(streams.len(), groups);
            let refs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
            let back = decode_context_groups(&refs, values.dim(), 127, &models, Layout::Plane);
            assert_eq!(back.unwrap(), values);
            // Only the seals and flushes of the extra streams are added.
            let total: usize = streams.iter().map(Vec::len).sum();
            assert!(
                total <= one.len() + 16 * (groups - 1),
                "{total} vs {}",
                one.len()
            );
        }
        // Streams swapped, missing or too many are errors, not wrong latents.
        let streams = encode_context_groups(&values, &models, Layout::Plane, 2).unwrap();
        let swapped = [streams[1].as_slice(), streams[0].as_slice()];
        assert!(
            decode_context_groups(&swapped, values.dim(), 127, &models, Layout::Plane).is_err()
        );
        let one_of_two = [streams[0].as_slice()];
        assert!(
            decode_context_groups(&one_of_two, values.dim(), 127, &models, Layout::Plane).is_err()
        );
        let six = [streams[0].as_slice(); 6];
        assert!(decode_context_groups(&six, values.dim(), 127, &models, Layout::Plane).is_err());
    }

    #[test]
    fn codings_start_from_the_same_models_and_check_their_channels() {
        let values = Array3::from_shape_fn((4, 20, 20), |(c, y, x)| {
            ((x * 5 + y * 3 + c) % 13) as i32 - 6
        });
        let models = ContextModels::new(4, None).unwrap();
        let first = encode_context_groups(&values, &models, Layout::Plane, 2).unwrap();
        // Coding does not change the shared starting state.
        assert_eq!(
            encode_context_groups(&values, &models, Layout::Plane, 2).unwrap(),
            first
        );
        // Latents with more channels than the models serve are refused, not mis-coded.
        let fewer = ContextModels::new(3, None).unwrap();
        assert!(encode_context_groups(&values, &fewer, Layout::Plane, 1).is_err());
        let refs: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
        assert!(decode_context_groups(&refs, values.dim(), 127, &fewer, Layout::Plane).is_err());
    }

    #[test]
    fn the_group_count_follows_the_shape_alone() {
        assert_eq!(group_count((12, 16, 16)), 1);
        assert_eq!(group_count((12, 125, 125)), 2);
        assert_eq!(group_count((12, 256, 256)), 4);
        assert_eq!(group_count((2, 1024, 1024)), 2);
        assert_eq!(group_count((0, 0, 0)), 1);
    }
}
