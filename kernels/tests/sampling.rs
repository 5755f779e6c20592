use hone_kernels::tensor::sampling::{
    SamplingFilter, apply_temperature, greedy, sample, top_k_filter, top_p_filter,
};
use hone_kernels::{Error, reference};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::support::{tensor_f32, to_f64, widen};

/// Rows of logits; drawn from a few integers half the time so that ties are common.
fn logit_rows() -> impl Strategy<Value = (i64, i64, Vec<f32>)> {
    (1i64..4, 1i64..10, any::<bool>()).prop_flat_map(|(rows, vocab, tied)| {
        let len = (rows * vocab) as usize;
        let logit = if tied {
            (-2i32..3).prop_map(|x| x as f32).boxed()
        } else {
            (-6.0f32..6.0).boxed()
        };
        (Just(rows), Just(vocab), prop::collection::vec(logit, len))
    })
}

fn kept(filtered: &Tensor) -> Vec<bool> {
    to_f64(filtered).iter().map(|x| x.is_finite()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn top_k_matches_the_reference((rows, vocab, logits) in logit_rows(), k in 1i64..12) {
        let x = tensor_f32(&logits, &[rows, vocab]);
        let filtered = top_k_filter(&x, k).unwrap();
        let want: Vec<bool> = logits
            .chunks(vocab as usize)
            .flat_map(|row| reference::top_k_keep(&widen(row), k as usize))
            .collect();
        prop_assert_eq!(kept(&filtered), want);
        // Kept logits are unchanged.
        for (f, x) in to_f64(&filtered).iter().zip(&logits) {
            prop_assert!(f.is_infinite() || *f == f64::from(*x));
        }
    }

    #[test]
    fn top_p_matches_the_reference((rows, vocab, logits) in logit_rows(), p in 0.0f64..=1.0) {
        let x = tensor_f32(&logits, &[rows, vocab]);
        let got = kept(&top_p_filter(&x, p).unwrap());
        for (r, row) in logits.chunks(vocab as usize).enumerate() {
            let got = &got[r * vocab as usize..(r + 1) * vocab as usize];
            let (want, cumulative) = reference::top_p_keep(&widen(row), p);
            prop_assert!(got.iter().any(|k| *k), "at least one token is kept");
            // Which of several equal logits survive is up to the sort (as in HF); how many of
            // each value survive is not.
            for &value in row {
                let count = |keep: &[bool]| {
                    row.iter().zip(keep).filter(|(x, k)| **x == value && **k).count()
                };
                // f32 against f64 cumulative sums may only disagree at the threshold itself.
                let at_threshold = row
                    .iter()
                    .zip(&cumulative)
                    .any(|(x, c)| *x == value && (c - (1.0 - p)).abs() < 1e-5);
                prop_assert!(
                    count(got) == count(&want) || at_threshold,
                    "row {r}, logit {value}: {} kept, reference keeps {}",
                    count(got), count(&want)
                );
            }
        }
    }
}

#[test]
fn top_p_extremes_and_ties() {
    let x = tensor_f32(&[1.0, 3.0, 3.0, 2.0], &[1, 4]);
    // p = 0 keeps one token, one of the tied maxima.
    let greedy_set = kept(&top_p_filter(&x, 0.0).unwrap());
    assert_eq!(greedy_set.iter().filter(|k| **k).count(), 1);
    assert!(greedy_set[1] || greedy_set[2], "{greedy_set:?}");
    assert_eq!(kept(&top_p_filter(&x, 1.0).unwrap()), vec![true; 4]);
    // A cumulative probability exactly at 1 - p is removed (HF compares with <=): of four equal
    // tokens at p = 0.5, two go.
    let flat = tensor_f32(&[0.0; 4], &[1, 4]);
    let kept_flat = kept(&top_p_filter(&flat, 0.5).unwrap());
    assert_eq!(kept_flat.iter().filter(|k| **k).count(), 2, "{kept_flat:?}");
    // k = 1 keeps every logit tied with the maximum, as HF.
    assert_eq!(
        kept(&top_k_filter(&x, 1).unwrap()),
        vec![false, true, true, false]
    );
    assert_eq!(kept(&top_k_filter(&x, 100).unwrap()), vec![true; 4]);
}

#[test]
fn temperature_and_the_filter_chain() {
    let x = tensor_f32(&[1.0, 2.0, 4.0, -1.0], &[1, 4]);
    assert_eq!(
        to_f64(&apply_temperature(&x, 0.5).unwrap()),
        vec![2.0, 4.0, 8.0, -2.0]
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = apply_temperature(&x, bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Parameter {
                    name: "temperature",
                    ..
                }
            ),
            "{err}"
        );
    }
    let filter = SamplingFilter {
        temperature: 2.0,
        top_k: Some(3),
        top_p: Some(0.7),
    };
    let chained = top_p_filter(
        &top_k_filter(&apply_temperature(&x, 2.0).unwrap(), 3).unwrap(),
        0.7,
    )
    .unwrap();
    assert_eq!(to_f64(&filter.apply(&x).unwrap()), to_f64(&chained));
    // Temperature before top-p matters: at temperature 2 the distribution is flatter.
    assert_ne!(
        kept(&filter.apply(&x).unwrap()),
        kept(&top_p_filter(&x, 0.7).unwrap())
    );
    let parsed: SamplingFilter = serde_json::from_str(r#"{"top_p": 0.9}"#).unwrap();
    assert_eq!(
        parsed,
        SamplingFilter {
            top_p: Some(0.9),
            ..SamplingFilter::default()
        }
    );
    assert!(serde_json::from_str::<SamplingFilter>(r#"{"top_q": 0.9}"#).is_err());
}

#[test]
fn bad_filter_parameters_are_errors() {
    let x = tensor_f32(&[1.0, 2.0], &[1, 2]);
    assert!(matches!(
        top_k_filter(&x, 0),
        Err(Error::Parameter { name: "top_k", .. })
    ));
    assert!(matches!(
        top_p_filter(&x, 1.5),
        Err(Error::Parameter { name: "top_p", .. })
    ));
    assert!(matches!(
        top_p_filter(&x, f64::NAN),
        Err(Error::Parameter { .. })
    ));
    let empty = Tensor::zeros([2, 0], (Kind::Float, Device::Cpu));
    assert!(matches!(top_k_filter(&empty, 1), Err(Error::Shape { .. })));
    assert!(matches!(sample(&empty), Err(Error::Shape { .. })));
    assert!(matches!(
        top_p_filter(&x.to_kind(Kind::Int64), 0.5),
        Err(Error::Kind { .. })
    ));
}

#[test]
fn sampling_follows_the_filtered_distribution() {
    // A single surviving token is always drawn.
    let x = tensor_f32(&[0.0, 5.0, 1.0, 0.5, 4.9, 0.0], &[2, 3]);
    let only = top_k_filter(&x, 1).unwrap();
    for _ in 0..20 {
        assert_eq!(
            Vec::<i64>::try_from(&sample(&only).unwrap()).unwrap(),
            vec![1, 1]
        );
    }
    assert_eq!(
        Vec::<i64>::try_from(&greedy(&x).unwrap()).unwrap(),
        vec![1, 1]
    );

    // Frequencies of 6000 draws against softmax([0, 1, 2]) = [0.090, 0.245, 0.665]; a fixed seed
    // makes the draw reproducible, and the bound is over 6 standard deviations.
    tch::manual_seed(3);
    let logits = tensor_f32(&[0.0, 1.0, 2.0], &[1, 3]).expand([6000, 3], false);
    let draws = Vec::<i64>::try_from(&sample(&logits).unwrap()).unwrap();
    let probs = to_f64(&tensor_f32(&[0.0, 1.0, 2.0], &[3]).softmax(-1, Kind::Double));
    for (token, p) in probs.iter().enumerate() {
        let freq = draws.iter().filter(|&&d| d == token as i64).count() as f64 / 6000.0;
        assert!((freq - p).abs() < 0.04, "token {token}: {freq} vs {p}");
    }
    tch::manual_seed(3);
    let again = Vec::<i64>::try_from(&sample(&logits).unwrap()).unwrap();
    assert_eq!(draws, again, "the same seed gives the same draws");
}
