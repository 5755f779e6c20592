//! numpy's reductions where gymnasium's rewards use them, with numpy's order of operations, so the
//! sums round as numpy's do.

/// numpy's pairwise summation (`add.reduce` on a contiguous array): below 8 values a plain loop;
/// up to 128, eight running sums combined as `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`
/// and then the remainder; above, the two halves (split at a multiple of 8) summed recursively.
macro_rules! pairwise_sum {
    ($name:ident, $float:ty) => {
        pub(crate) fn $name(values: &[$float], square: bool) -> $float {
            let at = |i: usize| {
                let v = values[i];
                if square { v * v } else { v }
            };
            let n = values.len();
            if n < 8 {
                let mut sum: $float = 0.0;
                for i in 0..n {
                    sum += at(i);
                }
                sum
            } else if n <= 128 {
                let mut r: [$float; 8] = std::array::from_fn(at);
                let blocks_end = n - n % 8;
                let mut i = 8;
                while i < blocks_end {
                    for (j, r) in r.iter_mut().enumerate() {
                        *r += at(i + j);
                    }
                    i += 8;
                }
                let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
                for i in blocks_end..n {
                    sum += at(i);
                }
                sum
            } else {
                let half = n / 2;
                let half = half - half % 8;
                $name(&values[..half], square) + $name(&values[half..], square)
            }
        }
    };
}

pairwise_sum!(pairwise_sum_f64, f64);
pairwise_sum!(pairwise_sum_f32, f32);

/// `np.sum(np.square(values))` of a float64 array.
#[inline]
pub(crate) fn sum_of_squares(values: &[f64]) -> f64 {
    pairwise_sum_f64(values, true)
}

/// `np.sum(np.square(action))` of a float32 action: squared and summed in float32.
#[inline]
pub(crate) fn sum_of_squares_f32(action: &[f32]) -> f32 {
    pairwise_sum_f32(action, true)
}

/// `np.linalg.norm(v)` of a short float64 vector: `sqrt(dot(v, v))`.
#[inline]
pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairwise order differs from a left-to-right sum: 1 + 8 * 2^-53 is 1 left to right (each
    /// tiny term rounds away) but not pairwise (the tiny terms add up first in the running sums).
    #[test]
    fn pairwise_order_is_numpys() {
        let tiny = f64::EPSILON / 2.0;
        let mut values = vec![1.0];
        values.extend(std::iter::repeat_n(tiny, 15));
        let left_to_right = values.iter().fold(0.0, |a, b| a + b);
        assert_eq!(left_to_right, 1.0);
        // Running sums r0 = 1 + tiny (= 1), r1..r7 = 2 tiny each; combined they survive.
        let pairwise = pairwise_sum_f64(&values, false);
        assert_eq!(pairwise, 1.0 + 14.0 * tiny);
        // Short arrays are a plain loop.
        assert_eq!(pairwise_sum_f64(&values[..7], false), 1.0);
        // Above 128 values: halves at a multiple of 8; a constant array sums exactly either way.
        assert_eq!(pairwise_sum_f64(&[0.5; 300], false), 150.0);
    }

    #[test]
    fn squares_in_float32() {
        let action = [0.1f32, -0.7, 2.5];
        let expected = (0.0f32 + 0.1 * 0.1) + 0.7 * 0.7 + 2.5 * 2.5;
        assert_eq!(sum_of_squares_f32(&action), expected);
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
    }
}
