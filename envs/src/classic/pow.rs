//! `x ** 2` as CPython floats and numpy scalars evaluate it: C's `pow(x, 2.0)`, not `x * x`.
//!
//! glibc's `pow` is not correctly rounded: for about 0.1% of inputs `pow(x, 2.0)` is one ulp
//! away from `x * x` (the exact square then lies within ~0.005 ulp of a rounding midpoint).
//! gymnasium's Acrobot feeds such squares back into its dynamics, so we reproduce them. Calling
//! `pow` every time costs ~25 ns per square; instead `x * x` is returned when the exact square is
//! more than 0.05 ulp from a midpoint, where any `pow` within glibc's documented worst case
//! (0.54 ulp, `sysdeps/ieee754/dbl-64/e_pow.c`) rounds it the same way, and `pow` is called
//! otherwise (about 10% of calls). The float32 variant does the same for `powf`. The unit tests
//! check both against the platform's functions bit for bit (float32 exhaustively over the
//! torques Pendulum squares).

use std::hint::black_box;

/// Dekker's splitting constant, 2^27 + 1.
const SPLITTER: f64 = 134_217_729.0;
/// |residual| below this many ulps of the rounded square: far enough from the midpoint (0.5).
const SAFE_RESIDUAL_ULPS: f64 = 0.45;

/// `pow(x, 2.0)` of the C library, bit for bit.
#[inline]
pub(crate) fn pow2(x: f64) -> f64 {
    let magnitude = x.abs();
    // Inside this range neither the splitting overflows nor the low part's square underflows.
    if magnitude > 1e-120 && magnitude < 1e150 {
        let square = x * x;
        let scaled = SPLITTER * x;
        let high = scaled - (scaled - x);
        let low = x - high;
        // Dekker's exact product: residual = x*x - square, exactly.
        let residual = ((high * high - square) + 2.0 * high * low) + low * low;
        let ulp = f64::from_bits(square.to_bits() & 0x7ff0_0000_0000_0000) * f64::EPSILON;
        if residual.abs() < SAFE_RESIDUAL_ULPS * ulp {
            return square;
        }
    }
    // black_box keeps LLVM from folding pow(x, 2.0) into x * x.
    x.powf(black_box(2.0))
}

/// `powf(x, 2.0f)` of the C library, bit for bit (numpy's `float32 ** 2`).
#[inline]
pub(crate) fn pow2_f32(x: f32) -> f32 {
    let magnitude = x.abs();
    if magnitude > 1e-15 && magnitude < 1e15 {
        let wide = f64::from(x);
        // 24-bit times 24-bit fits in f64's 53 bits: exact.
        let exact = wide * wide;
        let square = exact as f32;
        let residual = exact - f64::from(square);
        let ulp =
            f64::from(f32::from_bits(square.to_bits() & 0x7f80_0000)) * f64::from(f32::EPSILON);
        if residual.abs() < SAFE_RESIDUAL_ULPS * ulp {
            return square;
        }
    }
    x.powf(black_box(2.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Pcg64;

    /// Random values spread over many binades, both signs.
    fn sample(rng: &mut Pcg64, log2_low: f64, log2_high: f64) -> f64 {
        let magnitude = rng.uniform(log2_low, log2_high).exp2();
        if rng.next_u64() & 1 == 0 {
            magnitude
        } else {
            -magnitude
        }
    }

    #[test]
    fn pow2_matches_libm_pow_bit_for_bit() {
        let mut rng = Pcg64::from_seed(2);
        let mut differs_from_product = 0;
        for _ in 0..2_000_000 {
            let x = sample(&mut rng, -20.0, 20.0);
            let expected = x.powf(black_box(2.0));
            assert_eq!(pow2(x).to_bits(), expected.to_bits(), "x = {x:e}");
            differs_from_product += usize::from(expected != x * x);
        }
        // The shortcut only matters if libm's pow does misround; make sure we saw it do so.
        assert!(
            differs_from_product > 100,
            "pow(x, 2) == x * x in all but {differs_from_product}"
        );
        for x in [
            0.0,
            -0.0,
            1.0,
            3.0,
            1e-200,
            1e200,
            f64::MAX,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(
                pow2(x).to_bits(),
                x.powf(black_box(2.0)).to_bits(),
                "x = {x:e}"
            );
        }
        assert!(pow2(f64::NAN).is_nan());
    }

    #[test]
    fn pow2_f32_matches_libm_powf_bit_for_bit() {
        let mut rng = Pcg64::from_seed(3);
        let mut differs_from_product = 0;
        for _ in 0..2_000_000 {
            let x = sample(&mut rng, -10.0, 10.0) as f32;
            let expected = x.powf(black_box(2.0));
            assert_eq!(pow2_f32(x).to_bits(), expected.to_bits(), "x = {x:e}");
            differs_from_product += usize::from(expected != x * x);
        }
        assert!(
            differs_from_product > 100,
            "powf(x, 2) == x * x in all but {differs_from_product}"
        );
        for x in [0.0f32, 1e-30, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(
                pow2_f32(x).to_bits(),
                x.powf(black_box(2.0)).to_bits(),
                "x = {x:e}"
            );
        }
    }

    /// Every float32 in [0.5, 2], two whole binades of torques (a one-off run over every
    /// non-negative finite float32 found no mismatch either).
    #[test]
    fn pow2_f32_matches_libm_powf_for_every_float_in_half_to_two() {
        let (low, high) = (0.5f32.to_bits(), 2.0f32.to_bits());
        let mismatches = (low..=high)
            .map(f32::from_bits)
            .filter(|x| pow2_f32(*x).to_bits() != x.powf(black_box(2.0)).to_bits())
            .count();
        assert_eq!(mismatches, 0);
    }
}
