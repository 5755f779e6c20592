//! Image preprocessing of pixel observations, as envpool's Atari env does it
//! (`envpool/atari/atari_env.h`, `PushStack`, and `envpool/utils/image_process.h`, `Resize`):
//! the element-wise maximum of the last two frames, then OpenCV's area-interpolation resize
//! (`cv::resize(src, dst, dst.size(), 0, 0, cv::INTER_AREA)`) of the single-channel uint8 frame
//! to 84×84. Grayscale comes from ALE itself, so it is not here.
//!
//! [`AreaResize`] is a port of OpenCV's CPU code for `INTER_AREA` on `CV_8UC1`, byte for byte:
//! `cv::resize` and `cv::hal::resize` in `modules/imgproc/src/resize.cpp` (OpenCV 4.13.0, the
//! version envpool builds against; tested against opencv-python-headless 4.13.0.92). The three
//! paths it takes for a downscale are kept, with their arithmetic:
//!
//! - same size: `src.copyTo(dst)`;
//! - integer factors in both axes (`is_area_fast`): `resizeAreaFast_<uchar, int, ...>`, an int
//!   sum of the `kx·ky` block times `1.f/area`, rounded half to even — except for 2×2 blocks,
//!   where `ResizeAreaFastVec` computes `(a + b + c + d + 2) >> 2`;
//! - anything else: `resizeArea_<uchar, float>` (`ResizeArea_Invoker`) with the weight tables of
//!   `computeResizeAreaTab`: weights computed in f64 and stored as f32, each source row summed
//!   horizontally in f32 (`buf[dx] += S[si]*alpha`), the rows of a destination row summed in f32
//!   (`sum[dx] += beta*buf[dx]`), and `saturate_cast<uchar>` of the result (round half to even,
//!   then clamp).
//!
//! OpenCV's IPP backend (`ipp_hal_resize`) declines `INTER_AREA` unless IPP's inexact mode is
//! switched on (it is off by default), so the reference is this code. Upscaling in either axis
//! is not area interpolation in OpenCV (it falls back to a bilinear variant with its own
//! fixed-point and SIMD rounding) and is not ported: [`AreaResize::new`] rejects it.

/// `out[i] = max(a[i], b[i])`: envpool's max-pool of the last two frames of a frame skip.
///
/// # Panics
/// If the three slices differ in length.
pub fn max_pool_u8(a: &[u8], b: &[u8], out: &mut [u8]) {
    assert!(
        a.len() == b.len() && a.len() == out.len(),
        "max_pool_u8: lengths {}, {} and {} differ",
        a.len(),
        b.len(),
        out.len()
    );
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x.max(y);
    }
}

/// `cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_AREA)` for a row-major
/// single-channel `src_h × src_w` uint8 image into `dst` (`dst_h × dst_w`). Builds the tables on
/// every call: for repeated resizes of one shape, keep an [`AreaResize`].
///
/// # Panics
/// As [`AreaResize::new`] and [`AreaResize::apply`].
pub fn resize_area_u8(
    src: &[u8],
    src_h: usize,
    src_w: usize,
    dst: &mut [u8],
    dst_h: usize,
    dst_w: usize,
) {
    AreaResize::new(src_h, src_w, dst_h, dst_w).apply(src, dst);
}

/// OpenCV's `INTER_AREA` resize from one shape to another, its tables computed once; `apply`
/// allocates nothing.
#[derive(Clone, Debug)]
pub struct AreaResize {
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
    method: Method,
}

#[derive(Clone, Debug)]
enum Method {
    /// `cv::resize`: `dsize == ssize` is a copy.
    Copy,
    /// `resizeAreaFast_`: integer factors in both axes.
    Fast { scale_x: usize, scale_y: usize },
    /// `resizeArea_` with the tables of `computeResizeAreaTab` for each axis.
    Area { x: AxisWindows, y: AxisWindows },
}

/// One `DecimateAlpha` entry of `computeResizeAreaTab`: destination index `di` takes source
/// index `si` with weight `alpha`.
#[derive(Clone, Copy, Debug)]
struct DecimateAlpha {
    si: usize,
    di: usize,
    alpha: f32,
}

/// `computeResizeAreaTab(ssize, dsize, cn = 1, scale, tab)`: the entries in OpenCV's order
/// (ascending `di`, and ascending `si` within a `di`).
fn compute_resize_area_tab(ssize: usize, dsize: usize, scale: f64) -> Vec<DecimateAlpha> {
    let mut tab = Vec::with_capacity(ssize * 2);
    let ssize_i = ssize as i64;
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell_width = scale.min(ssize as f64 - fsx1);
        // cvCeil / cvFloor.
        let mut sx1 = fsx1.ceil() as i64;
        let mut sx2 = fsx2.floor() as i64;
        sx2 = sx2.min(ssize_i - 1);
        sx1 = sx1.min(sx2);
        let mut push = |si: i64, alpha: f32| {
            let si = usize::try_from(si).expect("INTER_AREA table: negative source index");
            tab.push(DecimateAlpha { si, di: dx, alpha });
        };
        if sx1 as f64 - fsx1 > 1e-3 {
            push(sx1 - 1, ((sx1 as f64 - fsx1) / cell_width) as f32);
        }
        for sx in sx1..sx2 {
            push(sx, (1.0 / cell_width) as f32);
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            push(
                sx2,
                ((fsx2 - sx2 as f64).min(1.0).min(cell_width) / cell_width) as f32,
            );
        }
    }
    tab
}

/// A `computeResizeAreaTab` table laid out for fixed-length loops: destination `d` takes the
/// `width` consecutive source pixels from `start[d]` with the weights
/// `weight[d * width..(d + 1) * width]`. A destination's entries in OpenCV's table have
/// consecutive source indices (`sx1 - 1`, `sx1..sx2`, `sx2`); they keep their order here, and
/// the rest of the window has weight 0. That changes no sum: OpenCV's sums start at +0.0 and
/// add products of non-negative numbers, and adding `0.0 * v` to such a sum leaves it as it is.
#[derive(Clone, Debug)]
struct AxisWindows {
    width: usize,
    start: Vec<usize>,
    weight: Vec<f32>,
}

impl AxisWindows {
    fn new(ssize: usize, dsize: usize, scale: f64) -> Self {
        let tab = compute_resize_area_tab(ssize, dsize, scale);
        // The entries of each destination, as `cv::hal::resize` groups the y table (`tabofs`).
        let mut groups = vec![0..0; dsize];
        for (k, e) in tab.iter().enumerate() {
            let group = &mut groups[e.di];
            if group.start == group.end {
                *group = k..k;
            }
            assert_eq!(
                group.end, k,
                "INTER_AREA table: destination indices out of order"
            );
            group.end = k + 1;
        }
        let width = groups.iter().map(|g| g.len()).max().unwrap_or(0);
        let mut windows = AxisWindows {
            width,
            start: Vec::with_capacity(dsize),
            weight: vec![0.0; dsize * width],
        };
        for (d, group) in groups.into_iter().enumerate() {
            // OpenCV asserts this (CV_Assert(ytab[k].di == dy)); a downscale meets it.
            assert!(
                group.start < group.end,
                "INTER_AREA table: destination {d} takes no pixel"
            );
            let first = tab[group.start].si;
            // Windows at the far edge start earlier, so that they stay inside the image.
            let start = first.min(ssize - width);
            windows.start.push(start);
            for (i, e) in tab[group].iter().enumerate() {
                assert_eq!(
                    e.si,
                    first + i,
                    "INTER_AREA table: source indices not consecutive"
                );
                windows.weight[d * width + first - start + i] = e.alpha;
            }
        }
        windows
    }

    fn weights(&self, d: usize) -> &[f32] {
        &self.weight[d * self.width..(d + 1) * self.width]
    }
}

impl AreaResize {
    /// The resize from `src_h × src_w` to `dst_h × dst_w`, choosing the path as
    /// `cv::hal::resize` does from the scales `cv::resize` computes
    /// (`inv_scale_x = (double)dsize.width/ssize.width`, `scale_x = 1./inv_scale_x`).
    ///
    /// # Panics
    /// If a size is 0, or if the destination is larger than the source in either axis
    /// (OpenCV's `INTER_AREA` upscale, a bilinear variant, is not ported).
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Self {
        assert!(
            src_h > 0 && src_w > 0 && dst_h > 0 && dst_w > 0,
            "AreaResize: empty image ({src_h}×{src_w} to {dst_h}×{dst_w})"
        );
        assert!(
            dst_h <= src_h && dst_w <= src_w,
            "AreaResize: {src_h}×{src_w} to {dst_h}×{dst_w} upscales; only downscaling is \
             ported from OpenCV's INTER_AREA"
        );
        assert!(
            src_h <= i32::MAX as usize && src_w <= i32::MAX as usize,
            "AreaResize: {src_h}×{src_w} is larger than OpenCV's int sizes"
        );
        let method = if (src_h, src_w) == (dst_h, dst_w) {
            Method::Copy
        } else {
            let inv_scale_x = dst_w as f64 / src_w as f64;
            let inv_scale_y = dst_h as f64 / src_h as f64;
            let scale_x = 1.0 / inv_scale_x;
            let scale_y = 1.0 / inv_scale_y;
            // saturate_cast<int>(double) rounds to nearest; the scales are >= 1 here.
            let iscale_x = scale_x.round_ties_even();
            let iscale_y = scale_y.round_ties_even();
            let is_area_fast = (scale_x - iscale_x).abs() < f64::EPSILON
                && (scale_y - iscale_y).abs() < f64::EPSILON;
            if is_area_fast {
                let (scale_x, scale_y) = (iscale_x as usize, iscale_y as usize);
                // Integer factors within f64::EPSILON are exact divisions, so every destination
                // pixel has its whole block (resizeAreaFast_Invoker's partial-block loop at the
                // right and bottom edges never runs).
                assert!(scale_x * dst_w == src_w && scale_y * dst_h == src_h);
                Method::Fast { scale_x, scale_y }
            } else {
                Method::Area {
                    x: AxisWindows::new(src_w, dst_w, scale_x),
                    y: AxisWindows::new(src_h, dst_h, scale_y),
                }
            }
        };
        AreaResize {
            src_h,
            src_w,
            dst_h,
            dst_w,
            method,
        }
    }

    /// The source shape, `(height, width)`.
    pub fn src_shape(&self) -> (usize, usize) {
        (self.src_h, self.src_w)
    }

    /// The destination shape, `(height, width)`.
    pub fn dst_shape(&self) -> (usize, usize) {
        (self.dst_h, self.dst_w)
    }

    /// Resizes the row-major `src` (`src_h * src_w` bytes) into `dst` (`dst_h * dst_w` bytes).
    ///
    /// # Panics
    /// If a slice's length is not its shape's.
    pub fn apply(&self, src: &[u8], dst: &mut [u8]) {
        assert_eq!(
            src.len(),
            self.src_h * self.src_w,
            "AreaResize::apply: source of {} bytes for {}×{}",
            src.len(),
            self.src_h,
            self.src_w
        );
        assert_eq!(
            dst.len(),
            self.dst_h * self.dst_w,
            "AreaResize::apply: destination of {} bytes for {}×{}",
            dst.len(),
            self.dst_h,
            self.dst_w
        );
        match &self.method {
            Method::Copy => dst.copy_from_slice(src),
            Method::Fast { scale_x, scale_y } => self.apply_fast(src, dst, *scale_x, *scale_y),
            Method::Area { x, y } => self.apply_area(src, dst, x, y),
        }
    }

    /// `resizeAreaFast_Invoker<uchar, int, ResizeAreaFastVec<uchar, ...>>` for one channel.
    fn apply_fast(&self, src: &[u8], dst: &mut [u8], scale_x: usize, scale_y: usize) {
        let src_w = self.src_w;
        if scale_x == 2 && scale_y == 2 {
            // ResizeAreaFastVec's fast_mode (and its SIMD ResizeAreaFastVec_SIMD_8u, which
            // computes the same): (S[i] + S[i+1] + nextS[i] + nextS[i+1] + 2) >> 2.
            for (d_row, s_rows) in dst
                .chunks_exact_mut(self.dst_w)
                .zip(src.chunks_exact(2 * src_w))
            {
                let (s0, s1) = s_rows.split_at(src_w);
                for ((d, a), b) in d_row
                    .iter_mut()
                    .zip(s0.chunks_exact(2))
                    .zip(s1.chunks_exact(2))
                {
                    let sum = u32::from(a[0]) + u32::from(a[1]) + u32::from(b[0]) + u32::from(b[1]);
                    *d = ((sum + 2) >> 2) as u8;
                }
            }
            return;
        }
        // The generic loop: an int sum over the block, then saturate_cast<uchar>(sum * scale)
        // with `float scale = 1.f/(area)`.
        let scale = 1.0f32 / (scale_x * scale_y) as f32;
        for (d_row, s_rows) in dst
            .chunks_exact_mut(self.dst_w)
            .zip(src.chunks_exact(scale_y * src_w))
        {
            for (dx, d) in d_row.iter_mut().enumerate() {
                let x0 = dx * scale_x;
                let sum: i32 = s_rows
                    .chunks_exact(src_w)
                    .map(|row| {
                        row[x0..x0 + scale_x]
                            .iter()
                            .map(|&v| i32::from(v))
                            .sum::<i32>()
                    })
                    .sum();
                *d = saturate_u8(sum as f32 * scale);
            }
        }
    }

    /// `ResizeArea_Invoker<uchar, float>` for one channel. OpenCV sums each source row into a
    /// row buffer (`buf[dx] += S[si]*alpha` over the x entries of `dx`, from 0) and the buffers
    /// of a destination row into `sum` (`sum[dx] += beta*buf[dx]` over the y entries of `dy`;
    /// `sum[dx] = beta*buf[dx]` on a new row, which equals `0 + beta*buf[dx]` here). Each
    /// destination pixel is computed here on its own with those operations in that order, so
    /// the floats are the same and no buffer is needed. The x window width is a constant for
    /// the common widths (downscales by less than 3 in x), so that the inner loop unrolls.
    fn apply_area(&self, src: &[u8], dst: &mut [u8], x: &AxisWindows, y: &AxisWindows) {
        match x.width {
            2 => self.apply_area_with::<2>(src, dst, x, y),
            3 => self.apply_area_with::<3>(src, dst, x, y),
            4 => self.apply_area_with::<4>(src, dst, x, y),
            _ => self.apply_area_with::<0>(src, dst, x, y),
        }
    }

    /// `apply_area` for x windows of width `KX`, or of any width when `KX` is 0.
    fn apply_area_with<const KX: usize>(
        &self,
        src: &[u8],
        dst: &mut [u8],
        x: &AxisWindows,
        y: &AxisWindows,
    ) {
        let src_w = self.src_w;
        for (dy, d_row) in dst.chunks_exact_mut(self.dst_w).enumerate() {
            let rows = &src[y.start[dy] * src_w..][..y.width * src_w];
            let betas = y.weights(dy);
            for (dx, d) in d_row.iter_mut().enumerate() {
                let alphas = x.weights(dx);
                let x0 = x.start[dx];
                let mut sum = 0.0f32;
                for (row, &beta) in rows.chunks_exact(src_w).zip(betas) {
                    let pixels = &row[x0..x0 + alphas.len()];
                    let mut buf = 0.0f32;
                    if KX > 0 {
                        let pixels: &[u8; KX] = pixels.try_into().unwrap();
                        let alphas: &[f32; KX] = alphas.try_into().unwrap();
                        for k in 0..KX {
                            buf += f32::from(pixels[k]) * alphas[k];
                        }
                    } else {
                        for (&v, &alpha) in pixels.iter().zip(alphas) {
                            buf += f32::from(v) * alpha;
                        }
                    }
                    sum += beta * buf;
                }
                *d = saturate_u8(sum);
            }
        }
    }
}

/// `saturate_cast<uchar>(float)`: `cvRound` (round half to even, as SSE's `cvtss2si` and the
/// `v_round` of OpenCV's SIMD stores do) clamped to 0..=255.
fn saturate_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}
