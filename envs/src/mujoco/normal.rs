//! numpy's `Generator.standard_normal`, bit for bit: the ziggurat sampler of
//! `numpy/random/src/distributions/distributions.c` (`random_standard_normal`) over the same
//! 256-layer tables (generated from numpy by `scripts/numpy_ziggurat_tables.py`).
//!
//! One 64-bit draw gives the layer (low 8 bits), the sign (next bit) and a 52-bit magnitude; the
//! sample is the magnitude times the layer's width, accepted at once when the magnitude is under
//! the layer's threshold (about 99% of draws). Otherwise layer 0 samples the tail beyond the right
//! edge with Marsaglia's exponential method, and the other layers accept the point under the
//! density with one more uniform draw, or start over.

use super::ziggurat_tables::{FI, KI, WI};
use crate::rng::Pcg64;

/// The right edge of the base layer.
const RIGHT_EDGE: f64 = 3.654_152_885_361_009;
/// Its inverse, as numpy writes it (the correctly rounded 1 / RIGHT_EDGE).
const INVERSE_RIGHT_EDGE: f64 = 0.273_661_237_329_758_3;

/// The next draw of numpy's `Generator.standard_normal()` from `rng`.
pub fn standard_normal(rng: &mut Pcg64) -> f64 {
    loop {
        let bits = rng.next_u64();
        let layer = (bits & 0xff) as usize;
        let bits = bits >> 8;
        let negative = bits & 1 == 1;
        let magnitude = (bits >> 1) & 0x000f_ffff_ffff_ffff;
        let x = magnitude as f64 * WI[layer];
        let x = if negative { -x } else { x };
        if magnitude < KI[layer] {
            return x;
        }
        if layer == 0 {
            loop {
                // log1p(-u) rather than log(1 - u): u = 0 is possible, 1 is not.
                let xx = -INVERSE_RIGHT_EDGE * (-rng.next_f64()).ln_1p();
                let yy = -(-rng.next_f64()).ln_1p();
                if yy + yy > xx * xx {
                    return if (magnitude >> 8) & 1 == 1 {
                        -(RIGHT_EDGE + xx)
                    } else {
                        RIGHT_EDGE + xx
                    };
                }
            }
        }
        if (FI[layer - 1] - FI[layer]) * rng.next_f64() + FI[layer] < (-0.5 * x * x).exp() {
            return x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by numpy 2.3.5: for `Generator(PCG64(SeedSequence(seed)))`, the first three
    /// `standard_normal()` draws, the left-to-right sum of the first 100 000, the first draw in
    /// the tail (|x| > RIGHT_EDGE) and the first one accepted by the wedge test (index, value,
    /// 64-bit outputs it consumed), and the generator's next raw output after the 100 000.
    struct NumpyReference {
        seed: u64,
        first: [f64; 3],
        sum: f64,
        tail: (usize, f64, u32),
        wedge: (usize, f64, u32),
        next_raw: u64,
    }

    const REFERENCES: [NumpyReference; 3] = [
        NumpyReference {
            seed: 0,
            first: [0.1257302210933933, -0.1321048632913019, 0.6404226504432821],
            sum: -90.825077312059,
            tail: (303, -3.772275156122734, 3),
            wedge: (74, 1.8220113633283233, 3),
            next_raw: 0xbbc3e3a965b5c865,
        },
        NumpyReference {
            seed: 7,
            first: [
                0.0012301533574825742,
                0.2987455375084699,
                -0.2741378553622176,
            ],
            sum: -132.63190873851516,
            tail: (2311, -3.661081810206792, 3),
            wedge: (31, -0.47775327603393064, 2),
            next_raw: 0x2644ede8f5fbf70b,
        },
        NumpyReference {
            seed: u64::MAX,
            first: [0.7213364570768727, -0.9707961689465133, 0.06922650485737146],
            sum: 63.611454195270525,
            tail: (2330, 3.9558233530344706, 3),
            wedge: (12, 1.2536647840795245, 2),
            next_raw: 0xdca1af4e2da2cf29,
        },
    ];

    #[test]
    fn draws_match_numpy() {
        assert_eq!(INVERSE_RIGHT_EDGE, 1.0 / RIGHT_EDGE);
        for reference in &REFERENCES {
            let seed = reference.seed;
            let mut rng = Pcg64::from_seed(seed);
            let mut sum = 0.0;
            for i in 0..100_000 {
                let before = rng.clone();
                let x = standard_normal(&mut rng);
                if i < 3 {
                    assert_eq!(x, reference.first[i], "seed {seed}, draw {i}");
                }
                for (index, value, outputs) in [reference.tail, reference.wedge] {
                    if i == index {
                        assert_eq!(x, value, "seed {seed}, draw {i}");
                        let mut replay = before.clone();
                        for _ in 0..outputs {
                            replay.next_u64();
                        }
                        assert_eq!(replay, rng, "seed {seed}, draw {i}: outputs consumed");
                    }
                }
                sum += x;
            }
            assert_eq!(sum, reference.sum, "seed {seed}: sum of 100 000 draws");
            assert_eq!(
                rng.next_u64(),
                reference.next_raw,
                "seed {seed}: stream position"
            );
        }
    }
}
