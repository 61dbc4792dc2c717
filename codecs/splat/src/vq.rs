//! k-means vector quantization (encoder side only: the decoder just looks entries up, so the
//! floating-point work here never affects what a bitstream decodes to).

use crate::synth::Rng;

/// Points used to train a codebook (a deterministic, evenly strided sample).
pub const TRAINING_SAMPLE: usize = 16_384;
/// Lloyd iterations.
pub const ITERATIONS: usize = 8;

fn distance(a: &[f32], b: &[f32], limit: f32) -> f32 {
    let mut sum = 0.0;
    for (chunk_a, chunk_b) in a.chunks(8).zip(b.chunks(8)) {
        for (x, y) in chunk_a.iter().zip(chunk_b) {
            sum += (x - y) * (x - y);
        }
        if sum >= limit {
            break;
        }
    }
    sum
}

/// Codebooks up to this size are searched exhaustively.
const EXHAUSTIVE: usize = 256;
/// Groups of centroids an approximate search scans per point.
const PROBES: usize = 2;

/// The nearest of `centroids` (`dim` floats each) among `candidates` to `point`.
fn closest(point: &[f32], dim: usize, centroids: &[f32], candidates: &[u32]) -> u32 {
    let mut best = (f32::INFINITY, 0u32);
    for &j in candidates {
        let c = &centroids[j as usize * dim..(j as usize + 1) * dim];
        let d = distance(point, c, best.0);
        if d < best.0 {
            best = (d, j);
        }
    }
    best.1
}

/// Centroids grouped by a coarse k-means of their own, so that a point scans the members of
/// its [`PROBES`] nearest groups instead of every centroid: about `3·√k` distances instead of
/// `k`, at the price of now and then missing the exact nearest (the encoder's loss only: a
/// decoder looks indices up).
struct Groups {
    coarse: Vec<f32>,
    members: Vec<Vec<u32>>,
}

impl Groups {
    fn new(dim: usize, centroids: &[f32]) -> Self {
        let k = centroids.len() / dim;
        let groups = k.isqrt().max(1);
        let coarse = train(centroids, dim, groups);
        let all: Vec<u32> = (0..(coarse.len() / dim) as u32).collect();
        let mut members = vec![Vec::new(); all.len()];
        for (j, c) in centroids.chunks_exact(dim).enumerate() {
            members[closest(c, dim, &coarse, &all) as usize].push(j as u32);
        }
        Self { coarse, members }
    }

    fn nearest(&self, point: &[f32], dim: usize, centroids: &[f32]) -> u32 {
        let mut ranked: Vec<(f32, usize)> = self
            .coarse
            .chunks_exact(dim)
            .enumerate()
            .map(|(g, c)| (distance(point, c, f32::INFINITY), g))
            .collect();
        let probes = PROBES.min(ranked.len());
        ranked.select_nth_unstable_by(probes - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let candidates: Vec<u32> = ranked[..probes]
            .iter()
            .flat_map(|&(_, g)| self.members[g].iter().copied())
            .collect();
        closest(point, dim, centroids, &candidates)
    }
}

/// Index of the centroid nearest to each point (`dim` floats per point), using every core:
/// exhaustive up to [`EXHAUSTIVE`] centroids, approximate (see [`Groups`]) above.
pub fn nearest(points: &[f32], dim: usize, centroids: &[f32]) -> Vec<u32> {
    let n = points.len() / dim;
    let k = centroids.len() / dim;
    let groups = (k > EXHAUSTIVE).then(|| Groups::new(dim, centroids));
    let all: Vec<u32> = (0..k as u32).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let per = n.div_ceil(threads.max(1)).max(1);
    let mut out = vec![0u32; n];
    std::thread::scope(|scope| {
        for (chunk, slots) in points.chunks(per * dim).zip(out.chunks_mut(per)) {
            let (groups, all) = (&groups, &all);
            scope.spawn(move || {
                for (point, slot) in chunk.chunks_exact(dim).zip(slots.iter_mut()) {
                    *slot = match groups {
                        Some(g) => g.nearest(point, dim, centroids),
                        None => closest(point, dim, centroids, all),
                    };
                }
            });
        }
    });
    out
}

/// Trains `k` centroids on `points` (`dim` floats each): evenly strided sample, distinct
/// random initial points from a fixed seed, Lloyd iterations; empty clusters are re-seeded
/// with the point farthest from its centroid.
pub fn train(points: &[f32], dim: usize, k: usize) -> Vec<f32> {
    let n = points.len() / dim;
    let stride = n.div_ceil(TRAINING_SAMPLE).max(1);
    let sample: Vec<&[f32]> = points.chunks_exact(dim).step_by(stride).collect();
    let k = k.min(sample.len()).max(1);
    let mut rng = Rng::new(0x5eed);
    let mut picks: Vec<usize> = (0..sample.len()).collect();
    for i in 0..k {
        let j = i + (rng.next_u64() as usize) % (picks.len() - i);
        picks.swap(i, j);
    }
    let mut centroids: Vec<f32> = picks[..k]
        .iter()
        .flat_map(|&i| sample[i].iter().copied())
        .collect();
    let flat: Vec<f32> = sample.iter().flat_map(|p| p.iter().copied()).collect();
    for _ in 0..ITERATIONS {
        let assignment = nearest(&flat, dim, &centroids);
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (point, &a) in sample.iter().zip(&assignment) {
            counts[a as usize] += 1;
            for (s, &v) in sums[a as usize * dim..(a as usize + 1) * dim]
                .iter_mut()
                .zip(*point)
            {
                *s += f64::from(v);
            }
        }
        let mut farthest: Vec<(f32, usize)> = sample
            .iter()
            .zip(&assignment)
            .enumerate()
            .map(|(i, (p, &a))| {
                (
                    distance(
                        p,
                        &centroids[a as usize * dim..(a as usize + 1) * dim],
                        f32::INFINITY,
                    ),
                    i,
                )
            })
            .collect();
        farthest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut reseed = farthest.into_iter().map(|(_, i)| i);
        for j in 0..k {
            let slot = &mut centroids[j * dim..(j + 1) * dim];
            if counts[j] == 0 {
                if let Some(i) = reseed.next() {
                    slot.copy_from_slice(sample[i]);
                }
            } else {
                for (c, s) in slot.iter_mut().zip(&sums[j * dim..(j + 1) * dim]) {
                    *c = (s / counts[j] as f64) as f32;
                }
            }
        }
    }
    centroids
}
