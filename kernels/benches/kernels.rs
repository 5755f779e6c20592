//! Each kernel against its naive version (criterion). Run:
//! `cargo bench -p hone-kernels --bench kernels` (a filter after `--` selects groups).
//! The peak-memory comparison of `token_logprobs` is `examples/token_memory.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use hone_kernels::slice::advantage::{
    GaeParams, Rollout, Truncation, discounted_returns_into, gae_into,
};
use hone_kernels::slice::running_stats::RunningMeanStd;
use hone_kernels::tensor::advantage::TensorRollout;
use hone_kernels::tensor::kl::{KlEstimator, kl_per_token};
use hone_kernels::tensor::masked::masked_whiten;
use hone_kernels::tensor::sampling::{top_k_filter, top_p_filter};
use hone_kernels::tensor::token::{token_entropy, token_logprobs, token_logprobs_from_hidden};
use hone_kernels::{reference, tensor};
use tch::{Device, Kind, Tensor};

/// A deterministic rollout of T steps × N envs with ~2% terminations and ~1% truncations.
struct RolloutData {
    steps: usize,
    envs: usize,
    rewards: Vec<f32>,
    values: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_values: Vec<f32>,
    next_values: Vec<f32>,
}

fn pseudo(i: usize) -> f32 {
    ((i as f64 * 12.9898).sin() * 43758.5453).fract() as f32
}

impl RolloutData {
    fn new(steps: usize, envs: usize) -> Self {
        let len = steps * envs;
        Self {
            steps,
            envs,
            rewards: (0..len).map(pseudo).collect(),
            values: (0..len).map(|i| pseudo(i + len)).collect(),
            terminated: (0..len).map(|i| pseudo(i + 2 * len) > 0.96).collect(),
            truncated: (0..len).map(|i| pseudo(i + 3 * len) > 0.98).collect(),
            final_values: (0..len).map(|i| pseudo(i + 4 * len)).collect(),
            next_values: (0..envs).map(|i| pseudo(i + 5 * len)).collect(),
        }
    }

    fn rollout(&self) -> Rollout<'_> {
        Rollout {
            steps: self.steps,
            envs: self.envs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_values: Some(&self.final_values),
            next_values: &self.next_values,
        }
    }

    /// Per env, `[N][T]`: the layout a straightforward implementation would use.
    fn per_env<T: Copy>(&self, data: &[T]) -> Vec<Vec<T>> {
        (0..self.envs)
            .map(|n| (0..self.steps).map(|t| data[t * self.envs + n]).collect())
            .collect()
    }
}

/// The straightforward GAE: one env at a time over `Vec<Vec<f32>>`, in f32.
struct NaiveGae {
    rewards: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    terminated: Vec<Vec<bool>>,
    truncated: Vec<Vec<bool>>,
    final_values: Vec<Vec<f32>>,
    next_values: Vec<f32>,
}

impl NaiveGae {
    fn new(data: &RolloutData) -> Self {
        Self {
            rewards: data.per_env(&data.rewards),
            values: data.per_env(&data.values),
            terminated: data.per_env(&data.terminated),
            truncated: data.per_env(&data.truncated),
            final_values: data.per_env(&data.final_values),
            next_values: data.next_values.clone(),
        }
    }

    fn gae(&self, gamma: f32, lambda: f32) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mut advantages = Vec::with_capacity(self.rewards.len());
        let mut returns = Vec::with_capacity(self.rewards.len());
        for n in 0..self.rewards.len() {
            let steps = self.rewards[n].len();
            let mut adv = vec![0.0f32; steps];
            let mut last = 0.0f32;
            for t in (0..steps).rev() {
                let (next_value, cut) = if self.terminated[n][t] {
                    (0.0, true)
                } else if self.truncated[n][t] {
                    (self.final_values[n][t], true)
                } else if t + 1 < steps {
                    (self.values[n][t + 1], false)
                } else {
                    (self.next_values[n], false)
                };
                let delta = self.rewards[n][t] + gamma * next_value - self.values[n][t];
                last = if cut {
                    delta
                } else {
                    delta + gamma * lambda * last
                };
                adv[t] = last;
            }
            returns.push(
                adv.iter()
                    .zip(&self.values[n])
                    .map(|(a, v)| a + v)
                    .collect(),
            );
            advantages.push(adv);
        }
        (advantages, returns)
    }

    fn discounted_returns(&self, gamma: f32) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(self.rewards.len());
        for n in 0..self.rewards.len() {
            let steps = self.rewards[n].len();
            let mut ret = vec![0.0f32; steps];
            let mut later = self.next_values[n];
            for t in (0..steps).rev() {
                let next = if self.terminated[n][t] {
                    0.0
                } else if self.truncated[n][t] {
                    self.final_values[n][t]
                } else {
                    later
                };
                later = self.rewards[n][t] + gamma * next;
                ret[t] = later;
            }
            out.push(ret);
        }
        out
    }
}

fn bench_advantage(c: &mut Criterion) {
    let params = GaeParams::default();
    let mut group = c.benchmark_group("gae");
    for (steps, envs) in [(128, 1024), (2048, 8), (128, 16384)] {
        let data = RolloutData::new(steps, envs);
        let naive = NaiveGae::new(&data);
        let id = format!("T{steps}xN{envs}");
        let (mut adv, mut ret) = (vec![0.0; steps * envs], vec![0.0; steps * envs]);
        group.bench_function(BenchmarkId::new("slice", &id), |b| {
            b.iter(|| gae_into(&data.rollout(), &data.values, params, &mut adv, &mut ret).unwrap())
        });
        group.bench_function(BenchmarkId::new("naive_vec_vec", &id), |b| {
            b.iter(|| black_box(naive.gae(params.gamma, params.lambda)))
        });
        let shape = [steps as i64, envs as i64];
        let t = |v: &[f32]| Tensor::from_slice(v).reshape(shape);
        let f = |v: &[bool]| Tensor::from_slice(v).reshape(shape);
        let (rewards, values, final_values) =
            (t(&data.rewards), t(&data.values), t(&data.final_values));
        let (terminated, truncated) = (f(&data.terminated), f(&data.truncated));
        let next_values = Tensor::from_slice(&data.next_values);
        let rollout = TensorRollout {
            rewards: &rewards,
            terminated: &terminated,
            truncated: &truncated,
            final_values: Some(&final_values),
            next_values: &next_values,
        };
        group.bench_function(BenchmarkId::new("tensor_cpu", &id), |b| {
            b.iter(|| black_box(tensor::advantage::gae(&rollout, &values, params).unwrap()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("discounted_returns");
    let data = RolloutData::new(128, 1024);
    let naive = NaiveGae::new(&data);
    let mut out = vec![0.0; 128 * 1024];
    group.bench_function("slice/T128xN1024", |b| {
        b.iter(|| {
            discounted_returns_into(&data.rollout(), 0.99, Truncation::Bootstrap, &mut out).unwrap()
        })
    });
    group.bench_function("naive_vec_vec/T128xN1024", |b| {
        b.iter(|| black_box(naive.discounted_returns(0.99)))
    });
    group.finish();
}

fn bench_running_stats(c: &mut Criterion) {
    // A step of 1024 envs' 17-dimensional observations (HalfCheetah).
    let (rows, dim) = (1024, 17);
    let batch: Vec<f32> = (0..rows * dim).map(pseudo).collect();
    let mut group = c.benchmark_group("running_mean_std");
    group.bench_function("update_batch/1024x17", |b| {
        let mut stats = RunningMeanStd::new(dim);
        b.iter(|| stats.update(black_box(&batch)).unwrap())
    });
    // Naive: Welford one sample at a time.
    group.bench_function("naive_welford_per_sample/1024x17", |b| {
        let (mut mean, mut m2, mut count) = (vec![0.0f64; dim], vec![0.0f64; dim], 0.0f64);
        b.iter(|| {
            for row in batch.chunks_exact(dim) {
                count += 1.0;
                for d in 0..dim {
                    let x = f64::from(row[d]);
                    let delta = x - mean[d];
                    mean[d] += delta / count;
                    m2[d] += delta * (x - mean[d]);
                }
            }
            black_box((&mean, &m2));
        })
    });
    group.finish();
}

fn bench_masked(c: &mut Criterion) {
    let values =
        Tensor::from_slice(&(0..64 * 1024).map(pseudo).collect::<Vec<_>>()).reshape([64, 1024]);
    let mask = values.gt(-0.5);
    let mut group = c.benchmark_group("masked_whiten");
    group.bench_function("kernel/64x1024", |b| {
        b.iter(|| black_box(masked_whiten(&values, &mask, true).unwrap()))
    });
    group.bench_function("naive_masked_select/64x1024", |b| {
        b.iter(|| {
            let selected = values.masked_select(&mask);
            let mean = selected.mean(Kind::Float);
            let var = selected.var(true);
            black_box((&values - &mean) * (var + 1e-8).rsqrt())
        })
    });
    group.finish();
}

fn bench_token(c: &mut Criterion) {
    let (b, t, v) = (4i64, 256i64, 8192i64);
    let n = (b * t * v) as usize;
    let logits =
        Tensor::from_slice(&(0..n).map(|i| 4.0 * pseudo(i)).collect::<Vec<_>>()).reshape([b, t, v]);
    let tokens =
        Tensor::from_slice(&(0..b * t).map(|i| (i * 7919) % v).collect::<Vec<_>>()).reshape([b, t]);
    let id = format!("B{b}xT{t}xV{v}");
    let mut group = c.benchmark_group("token_logprobs");
    group.bench_function(BenchmarkId::new("chunked/forward", &id), |bn| {
        bn.iter(|| black_box(token_logprobs(&logits, &tokens).unwrap()))
    });
    group.bench_function(BenchmarkId::new("naive/forward", &id), |bn| {
        bn.iter(|| {
            black_box(
                logits
                    .log_softmax(-1, Kind::Float)
                    .gather(-1, &tokens.unsqueeze(-1), false),
            )
        })
    });
    group.bench_function(BenchmarkId::new("chunked/forward_backward", &id), |bn| {
        bn.iter(|| {
            let x = logits.detach().set_requires_grad(true);
            token_logprobs(&x, &tokens)
                .unwrap()
                .sum(Kind::Float)
                .backward();
            black_box(x.grad())
        })
    });
    group.bench_function(BenchmarkId::new("naive/forward_backward", &id), |bn| {
        bn.iter(|| {
            let x = logits.detach().set_requires_grad(true);
            x.log_softmax(-1, Kind::Float)
                .gather(-1, &tokens.unsqueeze(-1), false)
                .sum(Kind::Float)
                .backward();
            black_box(x.grad())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("token_logprobs_from_hidden");
    let h = 256i64;
    let hidden = Tensor::from_slice(&(0..(b * t * h) as usize).map(pseudo).collect::<Vec<_>>())
        .reshape([b, t, h]);
    let weight = Tensor::from_slice(
        &(0..(v * h) as usize)
            .map(|i| 0.1 * pseudo(i + 7))
            .collect::<Vec<_>>(),
    )
    .reshape([v, h]);
    let head_id = format!("B{b}xT{t}xH{h}xV{v}");
    group.bench_function(BenchmarkId::new("fused/forward_backward", &head_id), |bn| {
        bn.iter(|| {
            let (x, w) = (
                hidden.detach().set_requires_grad(true),
                weight.detach().set_requires_grad(true),
            );
            token_logprobs_from_hidden(&x, &w, &tokens)
                .unwrap()
                .sum(Kind::Float)
                .backward();
            black_box((x.grad(), w.grad()))
        })
    });
    group.bench_function(BenchmarkId::new("naive/forward_backward", &head_id), |bn| {
        bn.iter(|| {
            let (x, w) = (
                hidden.detach().set_requires_grad(true),
                weight.detach().set_requires_grad(true),
            );
            x.matmul(&w.tr())
                .log_softmax(-1, Kind::Float)
                .gather(-1, &tokens.unsqueeze(-1), false)
                .sum(Kind::Float)
                .backward();
            black_box((x.grad(), w.grad()))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("token_entropy");
    group.bench_function(BenchmarkId::new("chunked/forward", &id), |bn| {
        bn.iter(|| black_box(token_entropy(&logits).unwrap()))
    });
    group.bench_function(BenchmarkId::new("naive/forward", &id), |bn| {
        bn.iter(|| {
            let logp = logits.log_softmax(-1, Kind::Float);
            black_box(-(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float))
        })
    });
    group.finish();
}

fn bench_kl_and_sampling(c: &mut Criterion) {
    let n = 64 * 1024;
    let logp = Tensor::from_slice(&(0..n).map(|i| pseudo(i) - 2.0).collect::<Vec<_>>());
    let ref_logp = Tensor::from_slice(&(0..n).map(|i| pseudo(i + n) - 2.0).collect::<Vec<_>>());
    let mut group = c.benchmark_group("kl_k3");
    group.bench_function("kernel/65536", |b| {
        b.iter(|| black_box(kl_per_token(&logp, &ref_logp, KlEstimator::K3).unwrap()))
    });
    group.bench_function("naive/65536", |b| {
        b.iter(|| {
            let r = &ref_logp - &logp;
            black_box(r.exp() - 1.0 - &r)
        })
    });
    group.finish();

    let (rows, vocab) = (8i64, 49152i64);
    let data: Vec<f32> = (0..(rows * vocab) as usize)
        .map(|i| 5.0 * pseudo(i))
        .collect();
    let logits = Tensor::from_slice(&data).reshape([rows, vocab]);
    let rows64: Vec<Vec<f64>> = data
        .chunks(vocab as usize)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let mut group = c.benchmark_group("sampling_filters");
    group.bench_function("top_k_50/8x49152", |b| {
        b.iter(|| black_box(top_k_filter(&logits, 50).unwrap()))
    });
    group.bench_function("naive_top_k_50_f64_rows/8x49152", |b| {
        b.iter(|| {
            black_box(
                rows64
                    .iter()
                    .map(|r| reference::top_k_keep(r, 50))
                    .collect::<Vec<_>>(),
            )
        })
    });
    group.bench_function("top_p_0.9/8x49152", |b| {
        b.iter(|| black_box(top_p_filter(&logits, 0.9).unwrap()))
    });
    group.bench_function("naive_top_p_0.9_f64_rows/8x49152", |b| {
        b.iter(|| {
            black_box(
                rows64
                    .iter()
                    .map(|r| reference::top_p_keep(r, 0.9))
                    .collect::<Vec<_>>(),
            )
        })
    });
    group.finish();
}

/// One decoding step's products in SmolLM2-135M (8 rows; q/k/v and gate/up fused, the LM
/// head): the few-row loop against libtorch's `linear` and its `W hᵀ` form.
fn bench_few_rows(c: &mut Criterion) {
    let mut group = c.benchmark_group("few_rows_linear");
    for (n, k) in [(960i64, 576i64), (3072, 576), (576, 1536), (49152, 576)] {
        let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([8, k], (Kind::Float, Device::Cpu));
        let id = format!("8x{k}.{n}x{k}T");
        group.bench_function(BenchmarkId::new("few_rows", &id), |b| {
            b.iter(|| black_box(tensor::few_rows::linear_few_rows(&x, &w, None).unwrap()))
        });
        group.bench_function(BenchmarkId::new("libtorch_linear", &id), |b| {
            b.iter(|| black_box(x.linear::<Tensor>(&w, None)))
        });
        group.bench_function(BenchmarkId::new("libtorch_w_xT", &id), |b| {
            b.iter(|| black_box(w.mm(&x.tr()).tr().contiguous()))
        });
    }
    group.finish();
}

fn main() {
    tch::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get() as i32));
    let _ = Device::Cpu;
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_advantage(&mut c);
    bench_running_stats(&mut c);
    bench_masked(&mut c);
    bench_token(&mut c);
    bench_kl_and_sampling(&mut c);
    bench_few_rows(&mut c);
    c.final_summary();
}
