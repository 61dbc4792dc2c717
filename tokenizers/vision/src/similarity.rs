//! Dot products between the rows of two row-major matrices (`A · Bᵀ`), the cost that dominates
//! every pairwise reducer.
//!
//! On x86-64 with AVX-512 the products come from our own kernel: tiles of 6 rows of `A` by 4 rows
//! of `B`, each dot product accumulated in 16 lanes over the shared dimension and summed by a
//! fixed tree, tiles spread over the rayon pool, `B` walked in blocks that stay in L2. Elsewhere
//! (no AVX-512, columns that are not contiguous, fewer than 64 rows of `B`) ndarray's matrix
//! product does the work. The two differ only in rounding (a few ulps); each is deterministic
//! on its own, whatever the thread count.

use ndarray::{Array2, ArrayView2};

/// `a · bᵀ`: entry `(i, j)` is the dot product of row `i` of `a` and row `j` of `b`.
///
/// # Panics
/// When the two have different column counts.
pub fn similarities(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    assert_eq!(a.ncols(), b.ncols(), "rows of different widths");
    #[cfg(target_arch = "x86_64")]
    if let Some(product) = avx512::product(a, b, false) {
        return product;
    }
    a.dot(&b.t())
}

/// `a · aᵀ`, computing each pair once (half the work of [`similarities`]) and mirroring it.
pub fn self_similarities(a: ArrayView2<f32>) -> Array2<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(product) = avx512::product(a, a, true) {
        return product;
    }
    a.dot(&a.t())
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_storeu_ps,
    };

    use ndarray::{Array2, ArrayView2};
    use rayon::prelude::*;

    /// Rows of `a` per tile.
    const ROWS_A: usize = 6;
    /// Rows of `b` per tile.
    const ROWS_B: usize = 4;
    /// Rows of `b` walked by every tile row of `a` before moving on (256 KiB at 1024 columns,
    /// so the block stays in L2 while all of `a` passes over it).
    const BLOCK_B: usize = 64;
    /// Fewer rows of `b` than this go to the plain product (each tile of `a` would be loaded
    /// for a handful of dot products).
    const MIN_ROWS_B: usize = 64;
    /// Most bytes of `a` rows one run of tiles walks over a block of `b`.
    const RUN_BYTES: usize = 1 << 20;
    /// Below this many multiply-adds one thread does the whole product.
    const PARALLEL_WORK: usize = 1 << 20;

    /// `a · bᵀ` through the AVX-512 kernel, or `None` where it does not apply (no AVX-512,
    /// columns that are not contiguous, fewer than [`MIN_ROWS_B`] rows of `b`, nothing to
    /// compute). With `symmetric` (`a` and `b` the same matrix) only tiles on or above the
    /// diagonal are computed and mirrored.
    pub fn product(a: ArrayView2<f32>, b: ArrayView2<f32>, symmetric: bool) -> Option<Array2<f32>> {
        let (m, n, k) = (a.nrows(), b.nrows(), a.ncols());
        let usable = std::arch::is_x86_feature_detected!("avx512f")
            && m > 0
            && n >= MIN_ROWS_B
            && k > 0
            && (a.strides()[1] == 1 || k == 1)
            && (b.strides()[1] == 1 || k == 1)
            && (a.strides()[0] > 0 || m == 1)
            && b.strides()[0] > 0;
        if !usable {
            return None;
        }
        let (a, b) = (Rows::of(a), Rows::of(b));
        let mut out = Array2::<f32>::zeros((m, n));
        let target = Output(out.as_mut_ptr(), n);
        let tiles_a = m.div_ceil(ROWS_A);
        let tiles_b = n.div_ceil(ROWS_B);
        let first_b = |tile_a: usize| {
            if symmetric {
                tile_a * ROWS_A / ROWS_B
            } else {
                0
            }
        };
        // Tiles of `a` in blocks of `b`: each block of `b` rows is walked by a run of `a`
        // tiles while it sits in L2.
        let blocked = |tiles: std::ops::Range<usize>| {
            let blocks = tiles_b.div_ceil(BLOCK_B / ROWS_B);
            for block in 0..blocks {
                let span = block * BLOCK_B / ROWS_B..((block + 1) * BLOCK_B / ROWS_B).min(tiles_b);
                for tile_a in tiles.clone() {
                    let rows_a: [*const f32; ROWS_A] =
                        std::array::from_fn(|r| a.row(tile_a * ROWS_A + r));
                    for tile_b in span.start.max(first_b(tile_a))..span.end {
                        let rows_b: [*const f32; ROWS_B] =
                            std::array::from_fn(|c| b.row(tile_b * ROWS_B + c));
                        // SAFETY: AVX-512F was detected above; every pointer starts a row of `k`
                        // readable floats (rows past the end repeat the last row).
                        let dots = unsafe { tile(rows_a, rows_b, k) };
                        store(&target, &dots, tile_a, tile_b, m, n, symmetric);
                    }
                }
            }
        };
        let work = m * n * k / if symmetric { 2 } else { 1 };
        if work < PARALLEL_WORK {
            blocked(0..tiles_a);
        } else {
            let runs = runs_of_tiles(tiles_a, k, |tile_a| tiles_b - first_b(tile_a));
            runs.into_par_iter().for_each(blocked);
        }
        Some(out)
    }

    /// Splits the tiles of `a` into runs of about equal work (`work(tile)` tiles of `b` each):
    /// a multiple of the thread count, and enough runs that one run's rows of `a` take at most
    /// [`RUN_BYTES`] (so they stay in L2 next to the block of `b`).
    fn runs_of_tiles(
        tiles_a: usize,
        k: usize,
        work: impl Fn(usize) -> usize,
    ) -> Vec<std::ops::Range<usize>> {
        let threads = rayon::current_num_threads().max(1);
        let bytes = tiles_a * ROWS_A * k * 4;
        let runs = bytes
            .div_ceil(RUN_BYTES)
            .next_multiple_of(threads)
            .min(tiles_a);
        let total: usize = (0..tiles_a).map(&work).sum();
        let mut out = Vec::with_capacity(runs);
        let (mut start, mut done) = (0, 0);
        for tile_a in 0..tiles_a {
            done += work(tile_a);
            if done * runs >= total * (out.len() + 1) {
                out.push(start..tile_a + 1);
                start = tile_a + 1;
            }
        }
        if start < tiles_a {
            out.push(start..tiles_a);
        }
        out
    }

    /// Writes one tile's dot products (inside the matrix; in a symmetric product the pairs on
    /// or above the diagonal, and their mirror).
    fn store(
        target: &Output,
        dots: &[[f32; ROWS_B]; ROWS_A],
        tile_a: usize,
        tile_b: usize,
        m: usize,
        n: usize,
        symmetric: bool,
    ) {
        for (r, row) in dots.iter().enumerate() {
            for (c, &dot) in row.iter().enumerate() {
                let (i, j) = (tile_a * ROWS_A + r, tile_b * ROWS_B + c);
                if i < m && j < n && (!symmetric || j >= i) {
                    target.write(i, j, dot);
                    if symmetric {
                        target.write(j, i, dot);
                    }
                }
            }
        }
    }

    /// Row pointers of a matrix with contiguous rows.
    struct Rows {
        start: *const f32,
        stride: usize,
        rows: usize,
    }

    impl Rows {
        fn of(m: ArrayView2<f32>) -> Self {
            Self {
                start: m.as_ptr(),
                stride: m.strides()[0].max(0) as usize,
                rows: m.nrows(),
            }
        }

        /// Row `i`, or the last row for a tile's rows past the end (computed, not stored).
        fn row(&self, i: usize) -> *const f32 {
            // SAFETY: `i.min(rows - 1)` is a row of the view, so the offset stays inside it.
            unsafe { self.start.add(i.min(self.rows - 1) * self.stride) }
        }
    }

    // SAFETY: the rows are only read, from views that outlive the product.
    unsafe impl Sync for Rows {}

    /// The output matrix, written at disjoint entries by the tiles.
    struct Output(*mut f32, usize);

    impl Output {
        fn write(&self, i: usize, j: usize, value: f32) {
            // SAFETY: callers pass i < m, j < n of the m × n standard-layout output; each entry
            // is written by exactly one tile (a tile pair and its mirror never meet), so no
            // two threads write the same entry.
            unsafe { *self.0.add(i * self.1 + j) = value };
        }
    }

    // SAFETY: see `Output::write`: writes are to disjoint entries.
    unsafe impl Sync for Output {}

    /// Dot products of 6 rows of `a` with 4 rows of `b`, `k` columns each: 16 lanes per
    /// product over the columns (a masked step for the tail), then [`sum_lanes`].
    #[target_feature(enable = "avx512f")]
    unsafe fn tile(
        a: [*const f32; ROWS_A],
        b: [*const f32; ROWS_B],
        k: usize,
    ) -> [[f32; ROWS_B]; ROWS_A] {
        let mut acc = [[_mm512_setzero_ps(); ROWS_B]; ROWS_A];
        let steps = k / 16;
        for step in 0..steps {
            let at = step * 16;
            // SAFETY: `at + 16 <= k`, inside every row.
            let bv: [__m512; ROWS_B] =
                std::array::from_fn(|c| unsafe { _mm512_loadu_ps(b[c].add(at)) });
            for r in 0..ROWS_A {
                // SAFETY: as above.
                let av = unsafe { _mm512_loadu_ps(a[r].add(at)) };
                for c in 0..ROWS_B {
                    acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
                }
            }
        }
        let tail = k % 16;
        if tail > 0 {
            let mask: __mmask16 = ((1u32 << tail) - 1) as u16;
            let at = steps * 16;
            // SAFETY: masked loads read only the `tail` columns left in each row.
            let bv: [__m512; ROWS_B] =
                std::array::from_fn(|c| unsafe { _mm512_maskz_loadu_ps(mask, b[c].add(at)) });
            for r in 0..ROWS_A {
                // SAFETY: as above.
                let av = unsafe { _mm512_maskz_loadu_ps(mask, a[r].add(at)) };
                for c in 0..ROWS_B {
                    acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
                }
            }
        }
        let mut dots = [[0f32; ROWS_B]; ROWS_A];
        for first in (0..ROWS_A).step_by(4) {
            let group: [__m512; 16] = std::array::from_fn(|x| {
                let r = first + x / ROWS_B;
                if r < ROWS_A {
                    acc[r][x % ROWS_B]
                } else {
                    _mm512_setzero_ps()
                }
            });
            let sums = sum_lanes(&group);
            for (x, &sum) in sums.iter().enumerate() {
                let r = first + x / ROWS_B;
                if r < ROWS_A {
                    dots[r][x % ROWS_B] = sum;
                }
            }
        }
        dots
    }

    /// The lane sums of 16 vectors: `out[v] = Σ lanes of vectors[v]`, summed as
    /// `((l + l⁺⁸) + (l⁺⁴ + l⁺¹²)) …` by in-register shuffles (about 2 operations per sum).
    #[target_feature(enable = "avx512f")]
    fn sum_lanes(vectors: &[__m512; 16]) -> [f32; 16] {
        // 16 → 8: 256-bit halves added; w[i] holds vectors i (low half) and i + 8.
        let w: [__m512; 8] = std::array::from_fn(|i| {
            let low = _mm512_shuffle_f32x4::<0b01_00_01_00>(vectors[i], vectors[i + 8]);
            let high = _mm512_shuffle_f32x4::<0b11_10_11_10>(vectors[i], vectors[i + 8]);
            _mm512_add_ps(low, high)
        });
        // 8 → 4: 128-bit quarters added; u[i] holds vectors i, i + 8, i + 4, i + 12.
        let u: [__m512; 4] = std::array::from_fn(|i| {
            let even = _mm512_shuffle_f32x4::<0b10_00_10_00>(w[i], w[i + 4]);
            let odd = _mm512_shuffle_f32x4::<0b11_01_11_01>(w[i], w[i + 4]);
            _mm512_add_ps(even, odd)
        });
        // Within each 128-bit lane: 4 → 2 → 1.
        let pair = |x: __m512, y: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_ps::<0b01_00_01_00>(x, y),
                _mm512_shuffle_ps::<0b11_10_11_10>(x, y),
            )
        };
        let (p, q) = (pair(u[0], u[1]), pair(u[2], u[3]));
        let r = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(p, q),
            _mm512_shuffle_ps::<0b11_01_11_01>(p, q),
        );
        let mut lanes = [0f32; 16];
        // SAFETY: `lanes` holds 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), r) };
        // Lane (quarter j, l) holds vector l + [0, 8, 4, 12][j].
        let mut out = [0f32; 16];
        for (j, offset) in [0, 8, 4, 12].into_iter().enumerate() {
            for l in 0..4 {
                out[l + offset] = lanes[j * 4 + l];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, s};

    use super::*;

    fn matrix(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            (((i * 31 + j * 17 + seed * 7) % 97) as f32 - 48.0) / 97.0
        })
    }

    fn close(x: &Array2<f32>, y: &Array2<f32>) {
        assert_eq!(x.shape(), y.shape());
        for (a, b) in x.iter().zip(y) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn products_match_the_plain_matrix_product_at_every_edge() {
        for (m, n, k) in [
            (1, 1, 1),
            (5, 3, 15),
            (7, 64, 17),
            (13, 65, 64),
            (1, 70, 31),
            (70, 66, 300),
        ] {
            let (a, b) = (matrix(m, k, 1), matrix(n, k, 2));
            close(&similarities(a.view(), b.view()), &a.dot(&b.t()));
            close(&self_similarities(a.view()), &a.dot(&a.t()));
        }
    }

    #[test]
    fn large_products_are_split_over_threads_and_agree() {
        let a = matrix(300, 1024, 3);
        let b = matrix(290, 1024, 4);
        close(&similarities(a.view(), b.view()), &a.dot(&b.t()));
        let symmetric = self_similarities(a.view());
        close(&symmetric, &a.dot(&a.t()));
        assert_eq!(symmetric, symmetric.t());
        // One row alone is the same row of the whole product, bit for bit.
        let row = similarities(a.slice(s![7..8, ..]), a.view());
        assert_eq!(row.row(0), symmetric.row(7));
    }

    #[test]
    fn strided_row_views_are_read_in_place() {
        let a = matrix(41, 40, 5);
        let every_other = a.slice(s![..;2, ..33]);
        let padded = a.slice(s![.., ..33]);
        close(
            &similarities(every_other, padded),
            &every_other.dot(&padded.t()),
        );
        // Columns that are not contiguous fall back to the plain product.
        let columns = a.slice(s![.., ..;2]);
        close(&self_similarities(columns), &columns.dot(&columns.t()));
    }
}
