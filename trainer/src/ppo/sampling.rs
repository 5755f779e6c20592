//! The trainer's own randomness — action sampling and minibatch shuffles — drawn from a
//! [`Pcg64`] so a checkpoint can save and restore it exactly.

use hone_envs::rng::Pcg64;

/// A uniform integer in `0..n` (Lemire's multiply-shift; the bias for small `n` is < 2⁻⁵⁰).
pub fn below(rng: &mut Pcg64, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Fisher–Yates shuffle of `0..len` into `out`.
pub fn permutation(rng: &mut Pcg64, len: usize, out: &mut Vec<i64>) {
    out.clear();
    out.extend(0..len as i64);
    for i in (1..len).rev() {
        out.swap(i, below(rng, i + 1));
    }
}

/// A standard normal draw (Box–Muller, one of the pair; simple and exact enough for noise).
pub fn standard_normal(rng: &mut Pcg64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Samples an index from the log-probabilities of one categorical by inverting its CDF.
pub fn categorical(rng: &mut Pcg64, log_probs: &[f32]) -> usize {
    let u = rng.next_f64();
    let mut cumulative = 0.0f64;
    for (i, &lp) in log_probs.iter().enumerate() {
        cumulative += f64::from(lp).exp();
        if u < cumulative {
            return i;
        }
    }
    // Rounding left the total a hair under 1: take the last action with non-zero mass.
    log_probs
        .iter()
        .rposition(|&lp| lp > f32::NEG_INFINITY)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_uses_every_index_once() {
        let mut rng = Pcg64::from_seed(3);
        let mut out = Vec::new();
        for len in [0, 1, 2, 7, 512] {
            permutation(&mut rng, len, &mut out);
            let mut sorted = out.clone();
            sorted.sort();
            assert_eq!(sorted, (0..len as i64).collect::<Vec<_>>());
        }
        permutation(&mut rng, 512, &mut out);
        assert_ne!(out, (0..512).collect::<Vec<_>>(), "a shuffle moves things");
    }

    #[test]
    fn categorical_frequencies_follow_the_probabilities() {
        let mut rng = Pcg64::from_seed(11);
        let probs = [0.1f64, 0.6, 0.3, 0.0];
        let log_probs: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let mut counts = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            counts[categorical(&mut rng, &log_probs)] += 1;
        }
        for (c, p) in counts.iter().zip(probs) {
            let freq = *c as f64 / n as f64;
            assert!((freq - p).abs() < 0.005, "counts {counts:?}");
        }
        assert_eq!(counts[3], 0, "a zero-probability action is never drawn");
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = Pcg64::from_seed(5);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "mean {mean}, var {var}"
        );
    }
}
