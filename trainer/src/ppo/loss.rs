//! The PPO loss of one minibatch (CleanRL's: clipped surrogate, optionally clipped value loss,
//! entropy bonus) and its gradient with respect to the policy's outputs, written out instead of
//! taken by autograd. [`ActorCritic::backward`] carries it on to the parameters.
//!
//! Small policies spend most of an update in libtorch's per-call overhead, and autograd adds a
//! recorded graph and a backward node per forward call. Written out, a minibatch step is about
//! half the libtorch calls. The test below checks the gradient against autograd's, for both
//! action kinds, with and without the value clipping, and with zero to two hidden layers.

use tch::{Kind, Tensor};

use crate::policy::{ActionKind, ActorCritic, CategoricalTerms, Forward};

/// One minibatch of the rollout, on the policy's device.
pub(super) struct Minibatch<'a> {
    pub actions: &'a Tensor,
    pub old_log_prob: Tensor,
    /// Normalised already, where the config says so.
    pub advantages: Tensor,
    pub returns: Tensor,
    pub old_values: Tensor,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Coefficients {
    pub clip: f64,
    pub clip_vloss: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
}

/// The loss's gradient with respect to the actor's output, the value and the log-std.
pub(super) struct Gradients {
    pub out: Tensor,
    pub value: Tensor,
    pub log_std: Option<Tensor>,
}

/// The per-sample terms of the loss, for the logs and the tests.
pub(super) struct Terms {
    pub log_ratio: Tensor,
    pub ratio: Tensor,
    unclipped_pg: Tensor,
    clipped_pg: Tensor,
    squared_error: Tensor,
    clipped_squared_error: Option<Tensor>,
    entropy: Tensor,
}

impl Terms {
    /// The policy loss, the value loss and the mean entropy, as CleanRL logs them.
    pub fn losses(&self) -> (Tensor, Tensor, Tensor) {
        let policy = self
            .unclipped_pg
            .maximum(&self.clipped_pg)
            .mean(Kind::Float);
        let squared = match &self.clipped_squared_error {
            Some(clipped) => self.squared_error.maximum(clipped),
            None => self.squared_error.shallow_clone(),
        };
        let value = squared.mean(Kind::Float) * 0.5;
        (policy, value, self.entropy.mean(Kind::Float))
    }
}

/// The gradient of `pg_loss - ent_coef * entropy + vf_coef * v_loss` (each a minibatch mean)
/// with respect to the outputs of `pass` (no autograd graph is recorded).
pub(super) fn gradients(
    agent: &ActorCritic,
    pass: &Forward,
    mb: &Minibatch,
    c: Coefficients,
) -> (Gradients, Terms) {
    tch::no_grad(|| {
        let n = pass.value.size()[0] as f64;
        let (log_prob, entropy, kind) = match agent.action {
            ActionKind::Categorical { .. } => {
                let terms = CategoricalTerms::new(&pass.out, mb.actions);
                (
                    terms.log_prob,
                    terms.entropy,
                    KindTerms::Categorical(terms.log_p, terms.p),
                )
            }
            ActionKind::Gaussian { .. } => {
                let log_std = agent.log_std().expect("a Gaussian policy has a log-std");
                let (log_prob, entropy) =
                    crate::policy::gaussian_log_prob_entropy(&pass.out, log_std, mb.actions);
                (log_prob, entropy, KindTerms::Gaussian(log_std))
            }
        };
        let log_ratio = &log_prob - &mb.old_log_prob;
        let ratio = log_ratio.exp();
        let unclipped_pg = -&mb.advantages * &ratio;
        let clipped_pg = -&mb.advantages * ratio.clamp(1.0 - c.clip, 1.0 + c.clip);
        // d max(unclipped, clipped) / d ratio is -advantage where the unclipped term is the larger
        // and 0 where the clipped one is (its clamp is flat there). They tie exactly when the ratio
        // is inside the clip range, where both have the same gradient.
        let d_log_prob =
            (&mb.advantages * &ratio * unclipped_pg.ge_tensor(&clipped_pg) * (-1.0 / n))
                .unsqueeze(-1);
        let (d_out, d_log_std) = match kind {
            KindTerms::Categorical(log_p, p) => {
                // d log p(a) / d logits = onehot(a) - p; d entropy / d logits = -p (log p + H).
                let mut d_out =
                    &p * ((&log_p + entropy.unsqueeze(-1)) * (c.ent_coef / n) - &d_log_prob);
                let _ = d_out.scatter_add_(-1, &mb.actions.unsqueeze(-1), &d_log_prob);
                (d_out, None)
            }
            KindTerms::Gaussian(log_std) => {
                // d log p(a) / d mean = (a - mean) / var; / d log_std = (a - mean)² / var - 1;
                // the entropy is the sum of the log-stds plus a constant.
                let deviation = mb.actions - &pass.out;
                let scaled = &deviation * (log_std * -2.0).exp();
                let d_log_std = ((&scaled * &deviation - 1.0) * &d_log_prob).sum_dim_intlist(
                    0,
                    true,
                    Kind::Float,
                ) - c.ent_coef;
                (scaled * &d_log_prob, Some(d_log_std))
            }
        };
        let error = &pass.value - &mb.returns;
        let squared_error = error.square();
        let (d_value, clipped_squared_error) = if c.clip_vloss {
            let delta = &pass.value - &mb.old_values;
            let clipped_error = &mb.old_values + delta.clamp(-c.clip, c.clip) - &mb.returns;
            let clipped_squared = clipped_error.square();
            // As for the policy: the larger term's gradient, the clipped one's being zero where its
            // clamp is flat. Inside the clip range the two terms are equal up to the rounding of
            // `old + (v - old)`, and so are their gradients. An exact tie outside the range (torch
            // would split the gradient in half) takes a float coincidence.
            let inside = delta.abs().le(c.clip);
            let d = error.where_self(
                &squared_error.ge_tensor(&clipped_squared),
                &(clipped_error * inside),
            );
            (d, Some(clipped_squared))
        } else {
            (error, None)
        };
        let gradients = Gradients {
            out: d_out,
            value: d_value * (c.vf_coef / n),
            log_std: d_log_std,
        };
        let terms = Terms {
            log_ratio,
            ratio,
            unclipped_pg,
            clipped_pg,
            squared_error,
            clipped_squared_error,
            entropy,
        };
        (gradients, terms)
    })
}

/// What the gradient needs of each action kind's distribution.
enum KindTerms<'a> {
    /// Log-probabilities and probabilities, `[B, n]`.
    Categorical(Tensor, Tensor),
    /// The log-std, `[1, dim]`.
    Gaussian(&'a Tensor),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{categorical_log_prob_entropy, gaussian_log_prob_entropy};
    use crate::ppo::sampling;
    use hone_envs::rng::Pcg64;
    use tch::Device;

    /// The loss as CleanRL writes it, through autograd, with the actor and the critic run as
    /// separate networks (not the packed pass `gradients` is given).
    fn autograd_loss(agent: &ActorCritic, obs: &Tensor, mb: &Minibatch, c: Coefficients) -> Tensor {
        let out = agent.actor_output(obs);
        let value = agent.value(obs);
        let (log_prob, entropy) = match agent.action {
            ActionKind::Categorical { .. } => categorical_log_prob_entropy(&out, mb.actions),
            ActionKind::Gaussian { .. } => {
                gaussian_log_prob_entropy(&out, agent.log_std().unwrap(), mb.actions)
            }
        };
        let ratio = (&log_prob - &mb.old_log_prob).exp();
        let pg1 = -&mb.advantages * &ratio;
        let pg2 = -&mb.advantages * ratio.clamp(1.0 - c.clip, 1.0 + c.clip);
        let pg_loss = pg1.maximum(&pg2).mean(Kind::Float);
        let unclipped = (&value - &mb.returns).square();
        let v_loss = if c.clip_vloss {
            let clipped = &mb.old_values + (&value - &mb.old_values).clamp(-c.clip, c.clip);
            unclipped.maximum(&(clipped - &mb.returns).square())
        } else {
            unclipped
        }
        .mean(Kind::Float)
            * 0.5;
        pg_loss - entropy.mean(Kind::Float) * c.ent_coef + v_loss * c.vf_coef
    }

    /// `shape` standard normal values times `scale`, as f32 on `device`, from the test's own
    /// generator: libtorch's global one is drawn from by the tests running alongside, which
    /// would make the data change from run to run.
    fn normal(rng: &mut Pcg64, shape: &[i64], scale: f64, device: Device) -> Tensor {
        let count = shape.iter().product::<i64>();
        let values: Vec<f32> = (0..count)
            .map(|_| (sampling::standard_normal(rng) * scale) as f32)
            .collect();
        Tensor::from_slice(&values).reshape(shape).to_device(device)
    }

    fn count(mask: Tensor) -> i64 {
        mask.sum(Kind::Int64).int64_value(&[])
    }

    #[test]
    fn the_written_out_gradient_equals_autograds() {
        written_out_gradient_equals_autograds_on(Device::Cpu);
    }

    /// The same on CUDA: `scripts/gpu_check.sh` runs it on a GPU machine.
    #[test]
    #[ignore = "needs a CUDA device (scripts/gpu_check.sh runs it on a GPU machine)"]
    fn the_written_out_gradient_equals_autograds_on_cuda() {
        assert!(tch::Cuda::is_available(), "no CUDA device");
        written_out_gradient_equals_autograds_on(Device::Cuda(0));
    }

    /// Every action kind, network depth (none to three hidden layers of different widths),
    /// value clipping on and off, batches of 64 and of 1; the old log-probabilities and values
    /// either moved off the current ones (ratios and values on both sides of the clip ranges)
    /// or equal to them, as in each update's first minibatch, with some advantages exactly 0.
    fn written_out_gradient_equals_autograds_on(device: Device) {
        let mut rng = Pcg64::from_seed(11);
        for action in [
            ActionKind::Categorical { n: 3 },
            ActionKind::Gaussian { dim: 2 },
        ] {
            for hidden in [vec![16, 8, 4], vec![16, 8], vec![8], vec![]] {
                for (clip_vloss, batch, on_policy) in [
                    (true, 64, false),
                    (false, 64, false),
                    (true, 64, true),
                    (true, 1, false),
                ] {
                    let case = format!(
                        "{device:?} {action:?} {hidden:?} clip_vloss {clip_vloss} batch {batch} \
                         on-policy {on_policy}"
                    );
                    let mut agent = ActorCritic::new(5, action, &hidden, device);
                    // Off the initial values: a log-std other than 0, a policy head larger than
                    // its 0.01 gain gives.
                    tch::no_grad(|| {
                        let flat = agent.params.flat().shallow_clone();
                        let values = normal(&mut rng, &flat.size(), 0.5, device);
                        flat.shallow_clone().copy_(&values);
                    });
                    let obs = normal(&mut rng, &[batch, 5], 1.0, device);
                    let actions = match action {
                        ActionKind::Categorical { n } => {
                            let picks: Vec<i64> = (0..batch)
                                .map(|_| sampling::below(&mut rng, n as usize) as i64)
                                .collect();
                            Tensor::from_slice(&picks).to_device(device)
                        }
                        ActionKind::Gaussian { dim } => {
                            normal(&mut rng, &[batch, dim], 1.0, device)
                        }
                    };
                    let eval = tch::no_grad(|| agent.evaluate(&obs, &actions));
                    let advantages = normal(&mut rng, &[batch], 1.0, device);
                    if on_policy {
                        let _ = advantages.narrow(0, 0, 8).fill_(0.0);
                    }
                    let spread = if on_policy { 0.0 } else { 0.3 };
                    let mb = Minibatch {
                        actions: &actions,
                        old_log_prob: &eval.log_prob + normal(&mut rng, &[batch], spread, device),
                        advantages,
                        returns: normal(&mut rng, &[batch], 1.0, device),
                        old_values: &eval.value + normal(&mut rng, &[batch], spread, device),
                    };
                    let c = Coefficients {
                        clip: 0.2,
                        clip_vloss,
                        ent_coef: 0.05,
                        vf_coef: 0.5,
                    };
                    agent.params.zero_grad();
                    let loss = autograd_loss(&agent, &obs, &mb, c);
                    loss.backward();
                    let want = agent.params.grad();

                    // A buffer full of NaN: a slot `backward` does not write shows.
                    let _ = agent.grad().shallow_clone().fill_(f64::NAN);
                    let (got, terms) = tch::no_grad(|| {
                        let pass = agent.forward_pass(&obs);
                        let (g, terms) = gradients(&agent, &pass, &mb, c);
                        agent.backward(&obs, &pass, &g.out, &g.value, g.log_std.as_ref());
                        (agent.grad().copy(), terms)
                    });

                    if batch > 1 && !on_policy {
                        let outside = count((&terms.ratio - 1.0).abs().gt(c.clip));
                        assert!(
                            outside > 5 && outside < batch - 5,
                            "{case}: {outside} ratios outside the clip range"
                        );
                        if clip_vloss {
                            let clipped_wins = count(
                                terms
                                    .clipped_squared_error
                                    .as_ref()
                                    .unwrap()
                                    .gt_tensor(&terms.squared_error),
                            );
                            assert!(
                                clipped_wins > 2 && clipped_wins < batch - 2,
                                "{case}: the clipped value term is the larger {clipped_wins} times"
                            );
                        }
                    }
                    // Parameter by parameter, each against its own largest entry.
                    let names = agent.params.named_tensors();
                    let views = agent.params.views_of(&got).into_iter();
                    for ((name, _), (got, want)) in
                        names.iter().zip(views.zip(agent.params.views_of(&want)))
                    {
                        let scale = want.abs().max().double_value(&[]);
                        let diff = (&got - &want).abs().max().double_value(&[]);
                        assert!(
                            diff <= 1e-5 * scale.max(1e-6),
                            "{case}: {name}: gradients differ by {diff} (largest {scale})"
                        );
                    }
                    // The logged losses add up to the loss autograd saw.
                    let (pg, v, h) = terms.losses();
                    let total = (pg - h * c.ent_coef + v * c.vf_coef).double_value(&[]);
                    let loss = loss.double_value(&[]);
                    assert!(
                        (total - loss).abs() <= 1e-6 * loss.abs().max(1.0),
                        "{case}: logged {total}, loss {loss}"
                    );
                }
            }
        }
    }
}
