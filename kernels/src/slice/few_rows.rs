//! `W xᵀ` for a weight `W [N, K]` and a few rows `x [M, K]`: the products of one decoding step.
//! There the whole cost is streaming `W` from memory once; libtorch's GEMM (MKL) at M = 8
//! measured 2-3.7 GB/s on this machine's cores against 6-12 GB/s for the loop below, which
//! reads each row of `W` once and keeps the (small) `x` in L1.

use crate::error::{Result, shape_error};

/// Columns of `K` per pass: 8 rows of `x` over this many columns (16 KiB) stay in L1 while `W`
/// streams past them.
const K_BLOCK: usize = 512;
/// Rows of `x` sharing one pass over `W` (one AVX accumulator each).
const ROW_BLOCK: usize = 8;
/// Below this many weight elements per thread a thread costs more than it saves.
const MIN_PER_THREAD: usize = 1 << 18;

/// Whether [`weight_times_rows`] runs its SIMD loop on this CPU (x86-64 with AVX2 and FMA).
/// Without it the portable loop is slower than a BLAS library; callers should prefer one then.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out [N, M] = W xᵀ`: `out[j * M + r] = Σ_i w[j * K + i] · x[r * K + i]`, for `w [N, K]` and
/// `x [M, K]` row-major, splitting the rows of `W` over up to `threads` threads.
pub fn weight_times_rows(
    w: &[f32],
    x: &[f32],
    k: usize,
    out: &mut [f32],
    threads: usize,
) -> Result<()> {
    if k == 0 || !w.len().is_multiple_of(k) || !x.len().is_multiple_of(k) {
        return Err(shape_error(
            "weight_times_rows w and x",
            format!("lengths that are multiples of K = {k} > 0"),
            format!("{} and {}", w.len(), x.len()),
        ));
    }
    let (n, m) = (w.len() / k, x.len() / k);
    if out.len() != n * m {
        return Err(shape_error(
            "weight_times_rows out",
            format!("N x M = {n} x {m} elements"),
            out.len(),
        ));
    }
    if n == 0 || m == 0 {
        return Ok(());
    }
    let threads = threads.clamp(1, (w.len() / MIN_PER_THREAD).max(1));
    if threads == 1 {
        weight_block_times_rows(w, x, k, out);
        return Ok(());
    }
    let rows_per_thread = n.div_ceil(threads);
    std::thread::scope(|scope| {
        for (w_part, out_part) in w
            .chunks(rows_per_thread * k)
            .zip(out.chunks_mut(rows_per_thread * m))
        {
            scope.spawn(move || weight_block_times_rows(w_part, x, k, out_part));
        }
    });
    Ok(())
}

/// [`weight_times_rows`] on one thread; the shapes are checked by the caller.
fn weight_block_times_rows(w: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
    let m = x.len() / k;
    for r0 in (0..m).step_by(ROW_BLOCK) {
        let rows = ROW_BLOCK.min(m - r0);
        for k0 in (0..k).step_by(K_BLOCK) {
            let block = Block {
                w,
                x: &x[r0 * k..(r0 + rows) * k],
                k,
                k0,
                k_len: K_BLOCK.min(k - k0),
                m,
                r0,
                accumulate: k0 > 0,
            };
            block.run(out);
        }
    }
}

/// One pass over `W`: rows `r0..r0 + x.len() / k` of `x`, columns `k0..k0 + k_len`, added to
/// `out` when `accumulate` (a later column block), written otherwise.
struct Block<'a> {
    w: &'a [f32],
    x: &'a [f32],
    k: usize,
    k0: usize,
    k_len: usize,
    m: usize,
    r0: usize,
    accumulate: bool,
}

impl Block<'_> {
    fn run(&self, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if simd_available() {
            macro_rules! dispatch {
                ($($rows:literal)*) => {
                    match self.x.len() / self.k {
                        // SAFETY: AVX2 and FMA were detected just above.
                        $($rows => unsafe { self.run_avx2::<$rows>(out) },)*
                        _ => unreachable!("row blocks hold 1 to ROW_BLOCK rows"),
                    }
                };
            }
            dispatch!(1 2 3 4 5 6 7 8);
            return;
        }
        self.run_portable(out);
    }

    fn store(&self, out: &mut [f32], j: usize, r: usize, value: f32) {
        let slot = &mut out[j * self.m + self.r0 + r];
        *slot = if self.accumulate {
            *slot + value
        } else {
            value
        };
    }

    fn run_portable(&self, out: &mut [f32]) {
        let rows = self.x.len() / self.k;
        for j in 0..self.w.len() / self.k {
            let w_row = &self.w[j * self.k + self.k0..j * self.k + self.k0 + self.k_len];
            for r in 0..rows {
                let x_row = &self.x[r * self.k + self.k0..r * self.k + self.k0 + self.k_len];
                let mut lanes = [0f32; 8];
                let mut w_chunks = w_row.chunks_exact(8);
                let mut x_chunks = x_row.chunks_exact(8);
                for (wc, xc) in (&mut w_chunks).zip(&mut x_chunks) {
                    for l in 0..8 {
                        lanes[l] = wc[l].mul_add(xc[l], lanes[l]);
                    }
                }
                let tail: f32 = w_chunks
                    .remainder()
                    .iter()
                    .zip(x_chunks.remainder())
                    .map(|(a, b)| a * b)
                    .sum();
                self.store(out, j, r, lanes.iter().sum::<f32>() + tail);
            }
        }
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA, and `self.x` holds exactly `ROWS` rows of `self.k`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<const ROWS: usize>(&self, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (k, k0) = (self.k, self.k0);
        let chunks = self.k_len / 8;
        let x = self.x.as_ptr();
        for j in 0..self.w.len() / k {
            let w_row = &self.w[j * k + k0..j * k + k0 + self.k_len];
            let wp = w_row.as_ptr();
            let mut acc = [_mm256_setzero_ps(); ROWS];
            for c in 0..chunks {
                if c % 2 == 0 {
                    // Four rows of W ahead, same columns: the next cache lines this loop reads
                    // (a hint only; prefetching past the end of W never faults).
                    let ahead = wp.wrapping_add(4 * k + c * 8);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.cast::<i8>());
                }
                // SAFETY: c * 8 + 8 <= k_len = w_row.len(), and each row r of x has k >= k0 +
                // k_len elements from r * k.
                unsafe {
                    let wv = _mm256_loadu_ps(wp.add(c * 8));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm256_loadu_ps(x.add(r * k + k0 + c * 8));
                        *a = _mm256_fmadd_ps(xv, wv, *a);
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                let half = _mm_add_ps(_mm256_castps256_ps128(*a), _mm256_extractf128_ps(*a, 1));
                let pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
                let mut sum = _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)));
                let x_tail = &self.x[r * k + k0 + chunks * 8..r * k + k0 + self.k_len];
                sum += (w_row[chunks * 8..].iter().zip(x_tail))
                    .map(|(a, b)| a * b)
                    .sum::<f32>();
                self.store(out, j, r, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(n: usize, m: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
        let w = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0)
            .collect();
        let x = (0..m * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 17.0)
            .collect();
        (w, x)
    }

    fn assert_product(w: &[f32], x: &[f32], k: usize, out: &[f32]) {
        let (n, m) = (w.len() / k, x.len() / k);
        for j in 0..n {
            for r in 0..m {
                let exact: f64 = (0..k)
                    .map(|i| f64::from(w[j * k + i]) * f64::from(x[r * k + i]))
                    .sum();
                let scale: f64 = (0..k)
                    .map(|i| (f64::from(w[j * k + i]) * f64::from(x[r * k + i])).abs())
                    .sum();
                let got = f64::from(out[j * m + r]);
                assert!(
                    (got - exact).abs() <= 1e-5 * scale.max(1.0),
                    "n {n} m {m} k {k}: out[{j}, {r}] = {got}, expected {exact}"
                );
            }
        }
    }

    /// Both paths (SIMD where the CPU has it), row blocks of 1..8 plus a remainder, column
    /// blocks with a tail, several threads, against a float64 loop.
    #[test]
    fn matches_a_float64_product() {
        for (n, m, k, threads) in [
            (7, 1, 5, 1),
            (33, 8, 1030, 1),
            (64, 11, 24, 3),
            (2048, 3, 520, 4),
        ] {
            let (w, x) = inputs(n, m, k);
            let mut out = vec![f32::NAN; n * m];
            weight_times_rows(&w, &x, k, &mut out, threads).unwrap();
            assert_product(&w, &x, k, &out);
            let mut portable = vec![f32::NAN; n * m];
            for k0 in (0..k).step_by(K_BLOCK) {
                let block = Block {
                    w: &w,
                    x: &x,
                    k,
                    k0,
                    k_len: K_BLOCK.min(k - k0),
                    m,
                    r0: 0,
                    accumulate: k0 > 0,
                };
                block.run_portable(&mut portable);
            }
            assert_product(&w, &x, k, &portable);
        }
    }

    #[test]
    fn rejects_mismatched_lengths() {
        let mut out = vec![0.0; 6];
        let err = weight_times_rows(&[0.0; 12], &[0.0; 7], 4, &mut out, 1).unwrap_err();
        assert!(err.to_string().contains("12 and 7"), "{err}");
        let err = weight_times_rows(&[0.0; 12], &[0.0; 8], 4, &mut out[..5], 1).unwrap_err();
        assert!(err.to_string().contains("3 x 2"), "{err}");
    }
}
