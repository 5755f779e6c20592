use hone_kernels::tensor::token::{
    token_entropy, token_entropy_chunked, token_logprobs, token_logprobs_chunked,
    token_logprobs_from_hidden, token_logprobs_from_hidden_chunked,
};
use hone_kernels::{Error, reference};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::support::{
    assert_all_close, irregular, irregular_tokens, tensor_f32, to_f64, upstream_gradient,
};

#[derive(Clone, Debug)]
struct Case {
    b: i64,
    t: i64,
    v: i64,
    chunk: i64,
    logits: Vec<f32>,
    tokens: Vec<i64>,
}

impl Case {
    fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.logits.chunks(self.v as usize)
    }
}

fn cases(allow_neg_inf: bool) -> impl Strategy<Value = Case> {
    (1i64..4, 0i64..7, 1i64..12, 1i64..5).prop_flat_map(move |(b, t, v, chunk)| {
        let len = (b * t * v) as usize;
        let logit = if allow_neg_inf {
            prop_oneof![9 => -10.0f32..10.0, 1 => Just(f32::NEG_INFINITY)].boxed()
        } else {
            (-10.0f32..10.0).boxed()
        };
        (
            prop::collection::vec(logit, len),
            prop::collection::vec(0..v, (b * t) as usize),
        )
            .prop_map(move |(mut logits, tokens)| {
                // Keep one finite logit per row: an all -inf row has no distribution.
                for row in logits.chunks_mut(v as usize) {
                    if row.iter().all(|x| x.is_infinite()) {
                        row[0] = 0.0;
                    }
                }
                Case {
                    b,
                    t,
                    v,
                    chunk,
                    logits,
                    tokens,
                }
            })
    })
}

fn logits_tensor(case: &Case) -> Tensor {
    tensor_f32(&case.logits, &[case.b, case.t, case.v])
}

fn tokens_tensor(case: &Case) -> Tensor {
    Tensor::from_slice(&case.tokens).reshape([case.b, case.t])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn logprobs_and_gradients_match_the_reference(case in cases(false)) {
        let x = logits_tensor(&case).set_requires_grad(true);
        let tokens = tokens_tensor(&case);
        let got = token_logprobs_chunked(&x, &tokens, case.chunk).unwrap();
        prop_assert_eq!(got.size(), vec![case.b, case.t]);
        let want: Vec<f64> = case
            .rows()
            .zip(&case.tokens)
            .map(|(row, &tok)| reference::logprob(&crate::support::widen(row), tok as usize))
            .collect();
        assert_all_close("logprobs", &to_f64(&got), &want, 1e-5);

        let upstream = upstream_gradient(&[case.b, case.t]).to_kind(Kind::Float);
        (&got * &upstream).sum(Kind::Float).backward();
        let g = to_f64(&upstream);
        let want_grad: Vec<f64> = case
            .rows()
            .zip(&case.tokens)
            .zip(&g)
            .flat_map(|((row, &tok), &g)| {
                reference::logprob_grad(&crate::support::widen(row), tok as usize)
                    .into_iter()
                    .map(move |d| g * d)
            })
            .collect();
        assert_all_close("logprob gradient", &to_f64(&x.grad()), &want_grad, 1e-5);

        // The naive version's gradient, through autograd.
        let y = logits_tensor(&case).set_requires_grad(true);
        let naive = y.log_softmax(-1, Kind::Float).gather(-1, &tokens.unsqueeze(-1), false).squeeze_dim(-1);
        (&naive * &upstream).sum(Kind::Float).backward();
        assert_all_close("naive gradient", &to_f64(&x.grad()), &to_f64(&y.grad()), 1e-5);
        assert_all_close("naive logprobs", &to_f64(&got), &to_f64(&naive), 1e-5);
    }

    #[test]
    fn entropy_and_gradients_match_the_reference(case in cases(true)) {
        let x = logits_tensor(&case).set_requires_grad(true);
        let got = token_entropy_chunked(&x, case.chunk).unwrap();
        let want: Vec<f64> = case.rows().map(|row| reference::entropy(&crate::support::widen(row))).collect();
        assert_all_close("entropy", &to_f64(&got), &want, 1e-5);

        let upstream = upstream_gradient(&[case.b, case.t]).to_kind(Kind::Float);
        (&got * &upstream).sum(Kind::Float).backward();
        let g = to_f64(&upstream);
        let want_grad: Vec<f64> = case
            .rows()
            .zip(&g)
            .flat_map(|(row, &g)| {
                reference::entropy_grad(&crate::support::widen(row)).into_iter().map(move |d| g * d)
            })
            .collect();
        assert_all_close("entropy gradient", &to_f64(&x.grad()), &want_grad, 1e-5);
    }

    /// Without -inf logits the naive formula is defined; its autograd gradient agrees.
    #[test]
    fn entropy_gradient_matches_the_naive_version(case in cases(false)) {
        let x = logits_tensor(&case).set_requires_grad(true);
        let upstream = upstream_gradient(&[case.b, case.t]).to_kind(Kind::Float);
        (token_entropy(&x).unwrap() * &upstream).sum(Kind::Float).backward();
        let y = logits_tensor(&case).set_requires_grad(true);
        let logp = y.log_softmax(-1, Kind::Float);
        let naive = -(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float);
        (&naive * &upstream).sum(Kind::Float).backward();
        assert_all_close("entropy gradient", &to_f64(&x.grad()), &to_f64(&y.grad()), 1e-5);
    }
}

#[test]
fn chunking_does_not_change_results() {
    let logits = irregular(&[3, 17, 50], 6.0);
    let tokens = irregular_tokens(&[3, 17], 50);
    let whole = to_f64(&token_logprobs(&logits, &tokens).unwrap());
    let whole_entropy = to_f64(&token_entropy(&logits).unwrap());
    for chunk in [1, 2, 5, 16, 17, 100] {
        let got = to_f64(&token_logprobs_chunked(&logits, &tokens, chunk).unwrap());
        assert_all_close("chunked logprobs", &got, &whole, 1e-6);
        let got = to_f64(&token_entropy_chunked(&logits, chunk).unwrap());
        assert_all_close("chunked entropy", &got, &whole_entropy, 1e-6);
    }
}

#[test]
fn two_dimensional_non_contiguous_and_half_inputs() {
    let full = irregular(&[2, 9, 30], 4.0);
    // logits[:, :-1] against tokens[:, 1:], as a causal LM is scored: a strided view.
    let logits = full.narrow(1, 0, 8);
    let tokens = irregular_tokens(&[2, 9], 30).narrow(1, 1, 8);
    let naive = logits
        .log_softmax(-1, Kind::Float)
        .gather(-1, &tokens.unsqueeze(-1), false)
        .squeeze_dim(-1);
    let got = token_logprobs_chunked(&logits, &tokens, 3).unwrap();
    assert_all_close("strided", &to_f64(&got), &to_f64(&naive), 1e-5);

    let row = token_logprobs(&logits.get(1), &tokens.get(1)).unwrap();
    assert_eq!(row.size(), vec![8]);
    assert_all_close("2-D", &to_f64(&row), &to_f64(&naive.get(1)), 1e-5);
    assert_eq!(token_entropy(&logits.get(0)).unwrap().size(), vec![8]);

    let int32 = token_logprobs(&logits, &tokens.to_kind(Kind::Int)).unwrap();
    assert_all_close("int32 tokens", &to_f64(&int32), &to_f64(&naive), 1e-5);

    // bf16 logits are reduced in f32: the result is f32 and equals the f32 computation on the
    // bf16-rounded logits; the gradient keeps bf16.
    let half = logits.to_kind(Kind::BFloat16).set_requires_grad(true);
    let got = token_logprobs(&half, &tokens).unwrap();
    assert_eq!(got.kind(), Kind::Float);
    let rounded = half.detach().to_kind(Kind::Float);
    let want = token_logprobs(&rounded, &tokens).unwrap();
    assert_all_close("bf16", &to_f64(&got), &to_f64(&want), 1e-6);
    got.sum(Kind::Float).backward();
    assert_eq!(half.grad().kind(), Kind::BFloat16);
    let entropy = token_entropy(&half.detach()).unwrap();
    assert_eq!(entropy.kind(), Kind::Float);
}

#[test]
fn empty_sequences_give_empty_results() {
    let logits = Tensor::zeros([2, 0, 5], (Kind::Float, Device::Cpu));
    let tokens = Tensor::zeros([2, 0], (Kind::Int64, Device::Cpu));
    assert_eq!(token_logprobs(&logits, &tokens).unwrap().size(), vec![2, 0]);
    assert_eq!(token_entropy(&logits).unwrap().size(), vec![2, 0]);
}

#[test]
fn bad_inputs_are_errors() {
    let logits = Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu));
    let tokens = Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu));
    for bad in [5i64, -1] {
        let t = tokens.copy();
        let _ = t.get(1).get(2).fill_(bad);
        let err = token_logprobs(&logits, &t).unwrap_err();
        assert!(
            matches!(err, Error::TokenOutOfRange { token, vocab: 5 } if token == bad),
            "{err}"
        );
    }
    let err = token_logprobs(&logits, &tokens.to_kind(Kind::Float)).unwrap_err();
    assert!(matches!(err, Error::Kind { what: "tokens", .. }), "{err}");
    let err = token_logprobs(&logits, &tokens.narrow(1, 0, 2)).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "tokens", .. }), "{err}");
    let err = token_logprobs(&logits.reshape([30]), &tokens.reshape([6])).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "logits", .. }), "{err}");
    let err = token_logprobs(&logits.to_kind(Kind::Int64), &tokens).unwrap_err();
    assert!(matches!(err, Error::Kind { what: "logits", .. }), "{err}");
    let err = token_logprobs_chunked(&logits, &tokens, 0).unwrap_err();
    assert!(
        matches!(err, Error::Parameter { name: "chunk", .. }),
        "{err}"
    );
    let err = token_entropy(&Tensor::zeros([2, 3, 0], (Kind::Float, Device::Cpu))).unwrap_err();
    assert!(matches!(err, Error::Empty(_)), "{err}");
}

#[derive(Clone, Debug)]
struct HeadCase {
    b: i64,
    t: i64,
    h: i64,
    v: i64,
    chunk: i64,
    hidden: Vec<f64>,
    weight: Vec<f64>,
    tokens: Vec<i64>,
}

fn head_cases() -> impl Strategy<Value = HeadCase> {
    (1i64..3, 0i64..6, 1i64..6, 1i64..10, 1i64..4).prop_flat_map(|(b, t, h, v, chunk)| {
        (
            prop::collection::vec(-2.0f64..2.0, (b * t * h) as usize),
            prop::collection::vec(-2.0f64..2.0, (v * h) as usize),
            prop::collection::vec(0..v, (b * t) as usize),
        )
            .prop_map(move |(hidden, weight, tokens)| HeadCase {
                b,
                t,
                h,
                v,
                chunk,
                hidden,
                weight,
                tokens,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Values and both gradients against `hidden.matmul(weight^T).log_softmax().gather()`.
    #[test]
    fn logprobs_from_hidden_match_the_naive_version(case in head_cases()) {
        let hidden = || Tensor::from_slice(&case.hidden).reshape([case.b, case.t, case.h]).set_requires_grad(true);
        let weight = || Tensor::from_slice(&case.weight).reshape([case.v, case.h]).set_requires_grad(true);
        let tokens = Tensor::from_slice(&case.tokens).reshape([case.b, case.t]);
        let upstream = upstream_gradient(&[case.b, case.t]);

        let (h1, w1) = (hidden(), weight());
        let got = token_logprobs_from_hidden_chunked(&h1, &w1, &tokens, case.chunk).unwrap();
        (&got * &upstream).sum(Kind::Double).backward();
        let (h2, w2) = (hidden(), weight());
        let naive = h2
            .matmul(&w2.tr())
            .log_softmax(-1, Kind::Double)
            .gather(-1, &tokens.unsqueeze(-1), false)
            .squeeze_dim(-1);
        (&naive * &upstream).sum(Kind::Double).backward();
        assert_all_close("logprobs", &to_f64(&got), &to_f64(&naive), 1e-12);
        assert_all_close("hidden gradient", &to_f64(&h1.grad()), &to_f64(&h2.grad()), 1e-12);
        assert_all_close("weight gradient", &to_f64(&w1.grad()), &to_f64(&w2.grad()), 1e-12);
    }
}

#[test]
fn logprobs_from_hidden_in_f32_2d_and_without_weight_gradient() {
    let hidden = irregular(&[2, 7, 16], 1.0);
    let weight = irregular(&[40, 16], 0.5);
    let tokens = irregular_tokens(&[2, 7], 40);
    let logits = hidden.matmul(&weight.tr());
    let want = token_logprobs(&logits, &tokens).unwrap();
    let got = token_logprobs_from_hidden(&hidden, &weight, &tokens).unwrap();
    assert_all_close("f32", &to_f64(&got), &to_f64(&want), 1e-5);
    let row = token_logprobs_from_hidden(&hidden.get(1), &weight, &tokens.get(1)).unwrap();
    assert_all_close("2-D", &to_f64(&row), &to_f64(&want.get(1)), 1e-5);

    // A frozen head: only the hidden states get a gradient.
    let h = hidden.detach().set_requires_grad(true);
    token_logprobs_from_hidden(&h, &weight, &tokens)
        .unwrap()
        .sum(Kind::Float)
        .backward();
    let h2 = hidden.detach().set_requires_grad(true);
    token_logprobs(&h2.matmul(&weight.tr()), &tokens)
        .unwrap()
        .sum(Kind::Float)
        .backward();
    assert_all_close(
        "hidden gradient",
        &to_f64(&h.grad()),
        &to_f64(&h2.grad()),
        1e-5,
    );
    assert!(!weight.grad().defined());
}

#[test]
fn logprobs_from_hidden_reject_bad_inputs() {
    let hidden = Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu));
    let weight = Tensor::zeros([5, 4], (Kind::Float, Device::Cpu));
    let tokens = Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu));
    let err = token_logprobs_from_hidden(&hidden, &weight.narrow(1, 0, 3), &tokens).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "weight", .. }), "{err}");
    let err =
        token_logprobs_from_hidden(&hidden, &weight.to_kind(Kind::BFloat16), &tokens).unwrap_err();
    assert!(matches!(err, Error::Kind { what: "weight", .. }), "{err}");
    let err = token_logprobs_from_hidden(&hidden, &weight, &tokens.fill(5)).unwrap_err();
    assert!(
        matches!(err, Error::TokenOutOfRange { token: 5, vocab: 5 }),
        "{err}"
    );
    let err = token_logprobs_from_hidden(&hidden.reshape([24]), &weight, &tokens).unwrap_err();
    assert!(matches!(err, Error::Shape { what: "hidden", .. }), "{err}");
    let err = token_logprobs_from_hidden_chunked(&hidden, &weight, &tokens, 0).unwrap_err();
    assert!(
        matches!(err, Error::Parameter { name: "chunk", .. }),
        "{err}"
    );
}

#[test]
fn logprobs_from_hidden_in_bf16() {
    let hidden = irregular(&[2, 5, 16], 1.0).to_kind(Kind::BFloat16);
    let weight = irregular(&[30, 16], 0.5).to_kind(Kind::BFloat16);
    let tokens = irregular_tokens(&[2, 5], 30);
    let (h, w) = (
        hidden.set_requires_grad(true),
        weight.set_requires_grad(true),
    );
    let got = token_logprobs_from_hidden_chunked(&h, &w, &tokens, 2).unwrap();
    assert_eq!(got.kind(), Kind::Float);
    got.sum(Kind::Float).backward();
    assert_eq!(
        (h.grad().kind(), w.grad().kind()),
        (Kind::BFloat16, Kind::BFloat16)
    );
    // Against f32 on the same bf16 values: bf16 logits and gradients carry 3 significant digits.
    let (h32, w32) = (
        hidden.detach().to_kind(Kind::Float).set_requires_grad(true),
        weight.detach().to_kind(Kind::Float).set_requires_grad(true),
    );
    let want = token_logprobs_from_hidden(&h32, &w32, &tokens).unwrap();
    want.sum(Kind::Float).backward();
    assert_all_close("bf16 logprobs", &to_f64(&got), &to_f64(&want), 2e-2);
    assert_all_close(
        "bf16 hidden gradient",
        &to_f64(&h.grad()),
        &to_f64(&h32.grad()),
        2e-2,
    );
    assert_all_close(
        "bf16 weight gradient",
        &to_f64(&w.grad()),
        &to_f64(&w32.grad()),
        2e-2,
    );
}
