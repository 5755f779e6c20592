//! CleanRL's PPO agent: separate actor and critic MLPs with tanh activations, orthogonally
//! initialised (gain √2 for hidden layers, 0.01 for the policy head, 1 for the value head,
//! biases 0). Discrete actions: a categorical over logits. Continuous actions: a diagonal
//! Gaussian whose log-std is a state-independent parameter, initialised to 0.

use tch::nn::Init;
use tch::{Device, Kind, Tensor};

use crate::params::{FlatParams, ParamInit};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `n` discrete actions.
    Categorical { n: i64 },
    /// A `dim`-dimensional continuous action.
    Gaussian { dim: i64 },
}

impl ActionKind {
    /// Number of columns of the actor's output.
    pub fn width(self) -> i64 {
        match self {
            ActionKind::Categorical { n } => n,
            ActionKind::Gaussian { dim } => dim,
        }
    }
}

/// Index of a layer's weight and bias in the flat parameters.
#[derive(Clone, Copy, Debug)]
struct Layer {
    weight: usize,
    bias: usize,
}

#[derive(Debug)]
pub struct ActorCritic {
    pub params: FlatParams,
    actor: Vec<Layer>,
    critic: Vec<Layer>,
    /// The hidden layers of actor and critic side by side, `(weight, bias)` per layer: the
    /// first `[2H, D]`/`[2H]` (one matmul over the shared input), the others `[2, H, H]`/
    /// `[2, 1, H]` (one batched matmul). Views into the flat parameters, like the per-layer ones.
    packed: Vec<(Tensor, Tensor)>,
    /// The gradient that [`Self::backward`] writes: a buffer laid out like the flat parameters,
    /// its per-parameter views, and per hidden layer the actor's and critic's `(weight, bias)`
    /// side by side, `[2, out, in]`/`[2, 1, out]`.
    grad: Tensor,
    grad_views: Vec<Tensor>,
    grad_packed: Vec<(Tensor, Tensor)>,
    log_std: Option<usize>,
    pub obs_dim: i64,
    pub action: ActionKind,
    pub hidden: Vec<i64>,
}

/// Output of [`ActorCritic::evaluate`] for a batch of observations and actions.
#[derive(Debug)]
pub struct Evaluation {
    pub log_prob: Tensor,
    pub entropy: Tensor,
    pub value: Tensor,
}

impl ActorCritic {
    /// A freshly initialised agent; initial weights come from libtorch's generator (seed it with
    /// `tch::manual_seed` first for reproducible runs).
    pub fn new(obs_dim: i64, action: ActionKind, hidden: &[i64], device: Device) -> Self {
        let mut inits = Vec::new();
        let (actor, critic) = actor_critic_layers(&mut inits, obs_dim, hidden, action.width());
        let log_std = match action {
            ActionKind::Gaussian { dim } => {
                inits.push(ParamInit {
                    name: "actor_logstd".into(),
                    value: Tensor::zeros([1, dim], (Kind::Float, Device::Cpu)),
                });
                Some(inits.len() - 1)
            }
            ActionKind::Categorical { .. } => None,
        };
        let params = FlatParams::new(inits, device);
        let grad = Tensor::zeros([params.numel()], (Kind::Float, device));
        let (mut packed, mut grad_packed) = (Vec::new(), Vec::new());
        for (i, (a, c)) in actor.iter().zip(&critic).take(hidden.len()).enumerate() {
            let (out, input) = (hidden[i], if i == 0 { obs_dim } else { hidden[i - 1] });
            let span = |buffer: &Tensor, weight: &[i64], bias: &[i64]| {
                (
                    params.span_view_of(buffer, a.weight, c.weight, weight),
                    params.span_view_of(buffer, a.bias, c.bias, bias),
                )
            };
            let stacked = ([2, out, input], [2, 1, out]);
            packed.push(if i == 0 {
                span(params.flat(), &[2 * out, input], &[2 * out])
            } else {
                span(params.flat(), &stacked.0, &stacked.1)
            });
            grad_packed.push(span(&grad, &stacked.0, &stacked.1));
        }
        Self {
            grad_views: params.views_of(&grad),
            grad,
            grad_packed,
            params,
            actor,
            critic,
            packed,
            log_std,
            obs_dim,
            action,
            hidden: hidden.to_vec(),
        }
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    fn forward(&self, layers: &[Layer], obs: &Tensor) -> Tensor {
        let mut x = obs.shallow_clone();
        for (i, layer) in layers.iter().enumerate() {
            x = x.linear(
                self.params.get(layer.weight),
                Some(self.params.get(layer.bias)),
            );
            if i + 1 < layers.len() {
                x = x.tanh();
            }
        }
        x
    }

    /// V(s), shape `[B]`.
    pub fn value(&self, obs: &Tensor) -> Tensor {
        self.forward(&self.critic, obs).squeeze_dim(-1)
    }

    /// The actor's output: logits (categorical) or the mean (Gaussian), shape `[B, width]`.
    pub fn actor_output(&self, obs: &Tensor) -> Tensor {
        self.forward(&self.actor, obs)
    }

    /// The actor's output and V(s) in one pass: actor and critic share each hidden layer's
    /// matmul and tanh (a third of the libtorch calls of two separate passes).
    pub fn actor_output_and_value(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let pass = self.forward_pass(obs);
        (pass.out, pass.value)
    }

    /// [`Self::actor_output_and_value`], keeping each hidden layer's output for
    /// [`Self::backward`].
    pub fn forward_pass(&self, obs: &Tensor) -> Forward {
        let batch = obs.size()[0];
        let mut hidden: Vec<Tensor> = Vec::with_capacity(self.packed.len());
        for (weight, bias) in &self.packed {
            let h = match hidden.last() {
                // [B, 2H] -> [2, B, H]: actor rows first, critic rows second.
                None => obs
                    .linear(weight, Some(bias))
                    .tanh()
                    .view([batch, 2, self.hidden[0]])
                    .transpose(0, 1),
                Some(h) => bias.baddbmm(h, &weight.transpose(1, 2), 1.0, 1.0).tanh(),
            };
            hidden.push(h);
        }
        let (actor_in, critic_in) = head_inputs(obs, &hidden);
        let last = self.hidden.len();
        let head = |layer: &Layer, x: &Tensor| {
            x.linear(
                self.params.get(layer.weight),
                Some(self.params.get(layer.bias)),
            )
        };
        Forward {
            out: head(&self.actor[last], &actor_in),
            value: head(&self.critic[last], &critic_in).squeeze_dim(-1),
            hidden,
        }
    }

    /// Writes into [`Self::grad`] the gradient of a loss with respect to the parameters, given
    /// the loss's gradient with respect to the actor's output of `pass` (`d_out`, `[B, width]`),
    /// its value (`d_value`, `[B]`) and, for a Gaussian policy, the log-std (`[1, dim]`): the
    /// chain rule back through the layers, written out. It is what autograd computes, without
    /// recording a graph, and each weight's gradient is written in place by one matmul. Every
    /// parameter's slot is written, so nothing of an earlier call is left.
    pub fn backward(
        &self,
        obs: &Tensor,
        pass: &Forward,
        d_out: &Tensor,
        d_value: &Tensor,
        d_log_std: Option<&Tensor>,
    ) {
        tch::no_grad(|| {
            let last = self.hidden.len();
            let (actor, critic) = (self.actor[last], self.critic[last]);
            let views = &self.grad_views;
            let d_value = d_value.unsqueeze(-1);
            let (actor_in, critic_in) = head_inputs(obs, &pass.hidden);
            let _ = d_out.tr().mm_out(&views[actor.weight], &actor_in);
            let _ = d_out.sum_intlist_out(&views[actor.bias], 0, false, Kind::Float);
            let _ = d_value.tr().mm_out(&views[critic.weight], &critic_in);
            let _ = d_value.sum_intlist_out(&views[critic.bias], 0, false, Kind::Float);
            match (self.log_std, d_log_std) {
                (Some(index), Some(d)) => views[index].shallow_clone().copy_(d),
                (None, None) => {}
                _ => panic!("a log-std gradient goes with a Gaussian policy, and only there"),
            }
            if pass.hidden.is_empty() {
                return;
            }
            // The gradient at the last hidden layer's output, [2, B, H].
            let mut d_h = Tensor::stack(
                &[
                    d_out.mm(self.params.get(actor.weight)),
                    d_value.mm(self.params.get(critic.weight)),
                ],
                0,
            );
            for (l, h) in pass.hidden.iter().enumerate().rev() {
                let d_z = Tensor::tanh_backward(&d_h, h);
                let input = match l {
                    0 => obs.unsqueeze(0).expand([2, -1, -1], false),
                    _ => pass.hidden[l - 1].shallow_clone(),
                };
                let (d_weight, d_bias) = &self.grad_packed[l];
                let _ = d_z.transpose(1, 2).bmm_out(d_weight, &input);
                let _ = d_z.sum_intlist_out(d_bias, 1, true, Kind::Float);
                if l > 0 {
                    d_h = d_z.bmm(&self.packed[l].0);
                }
            }
        })
    }

    /// The gradient [`Self::backward`] wrote last, laid out like the flat parameters.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }

    /// The Gaussian's log-std, shape `[1, dim]`.
    pub fn log_std(&self) -> Option<&Tensor> {
        self.log_std.map(|i| self.params.get(i))
    }

    /// Log-probability of `actions`, entropy and value, differentiable by autograd (the PPO
    /// update uses its own gradient, `ppo/loss.rs`, checked against this one). Categorical
    /// actions are an i64 `[B]` tensor; Gaussian ones f32 `[B, dim]`.
    pub fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> Evaluation {
        let (out, value) = self.actor_output_and_value(obs);
        let (log_prob, entropy) = match self.action {
            ActionKind::Categorical { .. } => categorical_log_prob_entropy(&out, actions),
            ActionKind::Gaussian { .. } => gaussian_log_prob_entropy(
                &out,
                self.log_std().expect("a Gaussian policy has a log-std"),
                actions,
            ),
        };
        Evaluation {
            log_prob,
            entropy,
            value,
        }
    }
}

/// A forward pass of [`ActorCritic::forward_pass`], kept for [`ActorCritic::backward`].
#[derive(Debug)]
pub struct Forward {
    /// Each hidden layer's output, `[2, B, H]`: the actor's rows, then the critic's.
    hidden: Vec<Tensor>,
    /// The actor's output, `[B, width]`: logits, or the Gaussian's mean.
    pub out: Tensor,
    /// V(s), `[B]`.
    pub value: Tensor,
}

/// What the actor's and the critic's output layers read: the last hidden layer's actor and
/// critic rows, or the observations of a network without hidden layers.
fn head_inputs(obs: &Tensor, hidden: &[Tensor]) -> (Tensor, Tensor) {
    match hidden.last() {
        Some(h) => (h.select(0, 0), h.select(0, 1)),
        None => (obs.shallow_clone(), obs.shallow_clone()),
    }
}

/// Log-probabilities of the taken actions and the entropies of categoricals given by `logits`.
pub fn categorical_log_prob_entropy(logits: &Tensor, actions: &Tensor) -> (Tensor, Tensor) {
    let terms = CategoricalTerms::new(logits, actions);
    (terms.log_prob, terms.entropy)
}

/// A categorical's log-probabilities and probabilities (`[B, n]`), and the taken actions'
/// log-probabilities and the entropies (`[B]`).
pub struct CategoricalTerms {
    pub log_p: Tensor,
    pub p: Tensor,
    pub log_prob: Tensor,
    pub entropy: Tensor,
}

impl CategoricalTerms {
    pub fn new(logits: &Tensor, actions: &Tensor) -> Self {
        let log_p = logits.log_softmax(-1, Kind::Float);
        let log_prob = log_p
            .gather(-1, &actions.unsqueeze(-1), false)
            .squeeze_dim(-1);
        let p = log_p.exp();
        let entropy = -(&p * &log_p).sum_dim_intlist(-1, false, Kind::Float);
        Self {
            log_p,
            p,
            log_prob,
            entropy,
        }
    }
}

/// Summed over action dimensions, as CleanRL's `Normal(mean, std).log_prob(a).sum(1)`.
pub fn gaussian_log_prob_entropy(
    mean: &Tensor,
    log_std: &Tensor,
    actions: &Tensor,
) -> (Tensor, Tensor) {
    const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_7;
    let log_std = log_std.expand_as(mean);
    let var = (&log_std * 2.0).exp();
    let log_prob = (-(actions - mean).square() / (var * 2.0) - &log_std - HALF_LOG_TWO_PI)
        .sum_dim_intlist(-1, false, Kind::Float);
    let entropy = (log_std + (0.5 + HALF_LOG_TWO_PI)).sum_dim_intlist(-1, false, Kind::Float);
    (log_prob, entropy)
}

/// Appends CleanRL's actor and critic MLPs `input → hidden… → output` (`layer_init`: gain √2
/// for hidden layers, 0.01 for the policy head, 1 for the value head, zero biases) and returns
/// their layers. Each hidden layer's actor and critic tensors are adjacent (actor weight, critic
/// weight, actor bias, critic bias), so the packed views of `ActorCritic` can span both.
fn actor_critic_layers(
    inits: &mut Vec<ParamInit>,
    input: i64,
    hidden: &[i64],
    actions: i64,
) -> (Vec<Layer>, Vec<Layer>) {
    let widths: Vec<i64> = std::iter::once(input)
        .chain(hidden.iter().copied())
        .collect();
    let mut push = |name: String, value: Tensor| {
        inits.push(ParamInit { name, value });
        inits.len() - 1
    };
    let weight = |gain: f64, out: i64, input: i64| {
        tch::nn::init(Init::Orthogonal { gain }, &[out, input], Device::Cpu)
    };
    let bias = |out: i64| Tensor::zeros([out], (Kind::Float, Device::Cpu));
    let (mut actor, mut critic) = (Vec::new(), Vec::new());
    for (i, pair) in widths.windows(2).enumerate() {
        let (input, out) = (pair[0], pair[1]);
        let gain = std::f64::consts::SQRT_2;
        let (aw, cw) = (
            push(format!("actor.{i}.weight"), weight(gain, out, input)),
            push(format!("critic.{i}.weight"), weight(gain, out, input)),
        );
        let (ab, cb) = (
            push(format!("actor.{i}.bias"), bias(out)),
            push(format!("critic.{i}.bias"), bias(out)),
        );
        actor.push(Layer {
            weight: aw,
            bias: ab,
        });
        critic.push(Layer {
            weight: cw,
            bias: cb,
        });
    }
    let last = hidden.len();
    let width = *widths.last().expect("the input width is there");
    let weight_index = push(format!("actor.{last}.weight"), weight(0.01, actions, width));
    let bias_index = push(format!("actor.{last}.bias"), bias(actions));
    actor.push(Layer {
        weight: weight_index,
        bias: bias_index,
    });
    let weight_index = push(format!("critic.{last}.weight"), weight(1.0, 1, width));
    let bias_index = push(format!("critic.{last}.bias"), bias(1));
    critic.push(Layer {
        weight: weight_index,
        bias: bias_index,
    });
    (actor, critic)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W·Wᵀ (rows ≤ cols) or Wᵀ·W (rows > cols) of an orthogonal matrix with gain g is g²·I.
    fn assert_orthogonal(w: &Tensor, gain: f64) {
        let (rows, cols) = (w.size()[0], w.size()[1]);
        let gram = if rows <= cols {
            w.matmul(&w.tr())
        } else {
            w.tr().matmul(w)
        };
        let n = rows.min(cols);
        let want = Tensor::eye(n, (Kind::Float, Device::Cpu)) * (gain * gain);
        let diff = (gram - want).abs().max().double_value(&[]);
        assert!(
            diff < 1e-5 * gain.max(1.0),
            "gain {gain}: max deviation {diff}"
        );
    }

    #[test]
    fn orthogonal_init_gains_follow_cleanrl() {
        tch::manual_seed(1);
        for action in [
            ActionKind::Categorical { n: 2 },
            ActionKind::Gaussian { dim: 3 },
        ] {
            let agent = ActorCritic::new(4, action, &[64, 64], Device::Cpu);
            let p = &agent.params;
            let get = |name: &str| p.get(p.index_of(name).unwrap()).detach();
            for net in ["actor", "critic"] {
                assert_orthogonal(&get(&format!("{net}.0.weight")), std::f64::consts::SQRT_2);
                assert_orthogonal(&get(&format!("{net}.1.weight")), std::f64::consts::SQRT_2);
                for i in 0..3 {
                    assert_eq!(
                        get(&format!("{net}.{i}.bias"))
                            .abs()
                            .sum(Kind::Float)
                            .double_value(&[]),
                        0.0
                    );
                }
            }
            assert_orthogonal(&get("actor.2.weight"), 0.01);
            assert_orthogonal(&get("critic.2.weight"), 1.0);
            assert_eq!(get("actor.2.weight").size(), [action.width(), 64]);
            match action {
                ActionKind::Gaussian { dim } => {
                    assert_eq!(get("actor_logstd").size(), [1, dim]);
                    assert_eq!(
                        get("actor_logstd").abs().sum(Kind::Float).double_value(&[]),
                        0.0
                    );
                }
                ActionKind::Categorical { .. } => assert!(p.index_of("actor_logstd").is_none()),
            }
        }
    }

    #[test]
    fn the_packed_pass_equals_separate_actor_and_critic_passes() {
        tch::manual_seed(3);
        for hidden in [vec![64, 64], vec![32, 16, 8], vec![16], vec![]] {
            let agent = ActorCritic::new(5, ActionKind::Gaussian { dim: 2 }, &hidden, Device::Cpu);
            let obs = Tensor::randn([7, 5], (Kind::Float, Device::Cpu));
            let (out, value) = agent.actor_output_and_value(&obs);
            let out_diff = (out - agent.actor_output(&obs))
                .abs()
                .max()
                .double_value(&[]);
            let value_diff = (value - agent.value(&obs)).abs().max().double_value(&[]);
            assert!(
                out_diff < 1e-5 && value_diff < 1e-5,
                "{hidden:?}: {out_diff} {value_diff}"
            );
        }
    }

    #[test]
    fn categorical_log_prob_and_entropy_match_the_formulas() {
        let logits = Tensor::from_slice(&[1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0]).view([2, 3]);
        let actions = Tensor::from_slice(&[1i64, 2]);
        let (log_prob, entropy) = categorical_log_prob_entropy(&logits, &actions);
        let rows = [[1.0f64, 2.0, 0.5], [-1.0, 0.0, 3.0]];
        for (r, row) in rows.iter().enumerate() {
            let z: f64 = row.iter().map(|x| x.exp()).sum();
            let p: Vec<f64> = row.iter().map(|x| x.exp() / z).collect();
            let want_lp = p[[1, 2][r]].ln();
            let want_h: f64 = -p.iter().map(|q| q * q.ln()).sum::<f64>();
            assert!((log_prob.double_value(&[r as i64]) - want_lp).abs() < 1e-6);
            assert!((entropy.double_value(&[r as i64]) - want_h).abs() < 1e-6);
        }
    }

    #[test]
    fn gaussian_log_prob_and_entropy_match_the_formulas() {
        let mean = Tensor::from_slice(&[0.5f32, -1.0]).view([1, 2]);
        let log_std = Tensor::from_slice(&[-0.5f32, 0.2]).view([1, 2]);
        let action = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let (log_prob, entropy) = gaussian_log_prob_entropy(&mean, &log_std, &action);
        let normal_lp = |x: f64, mu: f64, ls: f64| {
            let s = ls.exp();
            -((x - mu) * (x - mu)) / (2.0 * s * s) - ls - (2.0 * std::f64::consts::PI).sqrt().ln()
        };
        let want = normal_lp(1.0, 0.5, -0.5) + normal_lp(0.0, -1.0, 0.2);
        assert!((log_prob.double_value(&[0]) - want).abs() < 1e-5);
        let h = |ls: f64| 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + ls;
        assert!((entropy.double_value(&[0]) - (h(-0.5) + h(0.2))).abs() < 1e-5);
    }
}
