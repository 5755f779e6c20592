//! CleanRL's PPO agents, behind one [`ActorCritic`]:
//!
//! - [`Network::Mlp`] (`ppo.py`, `ppo_continuous_action.py`): separate actor and critic MLPs
//!   with tanh activations;
//! - [`Network::NatureCnn`] (`ppo_atari_envpool.py`): the Nature-DQN convolutional trunk shared
//!   by a linear actor and a linear critic, reading `uint8` frames scaled by 1/255.
//!
//! Both are orthogonally initialised as CleanRL's `layer_init` does (gain √2 for hidden layers,
//! 0.01 for the policy head, 1 for the value head, biases 0). Discrete actions: a categorical
//! over logits. Continuous actions: a diagonal Gaussian whose log-std is a state-independent
//! parameter, initialised to 0.

mod cnn;
mod mlp;

use tch::nn::Init;
use tch::{Device, Kind, Tensor};

use crate::params::{FlatParams, ParamInit};
pub use cnn::NatureCnn;
pub use mlp::Mlp;

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

/// The layers between the observations and the actor's and critic's outputs.
#[derive(Debug)]
pub enum Network {
    Mlp(Mlp),
    NatureCnn(NatureCnn),
}

#[derive(Debug)]
pub struct ActorCritic {
    pub params: FlatParams,
    pub network: Network,
    /// The gradient that [`Self::backward`] writes, laid out like the flat parameters, and its
    /// per-parameter views.
    grad: Tensor,
    grad_views: Vec<Tensor>,
    log_std: Option<usize>,
    /// Numbers in one observation: the vector's length, or channels × height × width of a frame.
    pub obs_dim: i64,
    pub action: ActionKind,
    /// The MLP's hidden widths; empty for the Nature CNN.
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
    /// A freshly initialised MLP agent for vector observations of `obs_dim` numbers; initial
    /// weights come from libtorch's generator (seed it with `tch::manual_seed` first for
    /// reproducible runs).
    pub fn new(obs_dim: i64, action: ActionKind, hidden: &[i64], device: Device) -> Self {
        let mut inits = Vec::new();
        let layers = mlp::actor_critic_layers(&mut inits, obs_dim, hidden, action.width());
        Self::assemble(inits, action, device, obs_dim, hidden, |params, grad| {
            Network::Mlp(Mlp::new(layers, obs_dim, hidden, params, grad))
        })
    }

    /// A freshly initialised Nature-CNN agent (CleanRL's `ppo_atari_envpool.py`) for stacks of
    /// `channels` 84×84 frames (4 in CleanRL).
    pub fn nature_cnn(channels: i64, action: ActionKind, device: Device) -> Self {
        let mut inits = Vec::new();
        let cnn = NatureCnn::init(&mut inits, channels, action.width());
        let obs_dim = channels * cnn::FRAME * cnn::FRAME;
        Self::assemble(inits, action, device, obs_dim, &[], |_, _| {
            Network::NatureCnn(cnn)
        })
    }

    /// The flat parameters (`inits`, then the log-std of a Gaussian policy), the gradient
    /// buffer, and the network built over them.
    fn assemble(
        mut inits: Vec<ParamInit>,
        action: ActionKind,
        device: Device,
        obs_dim: i64,
        hidden: &[i64],
        network: impl FnOnce(&FlatParams, &Tensor) -> Network,
    ) -> Self {
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
        Self {
            network: network(&params, &grad),
            grad_views: params.views_of(&grad),
            grad,
            params,
            log_std,
            obs_dim,
            action,
            hidden: hidden.to_vec(),
        }
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    /// V(s), shape `[B]`.
    pub fn value(&self, obs: &Tensor) -> Tensor {
        match &self.network {
            Network::Mlp(mlp) => mlp.value(&self.params, obs),
            Network::NatureCnn(cnn) => cnn.value(&self.params, obs),
        }
    }

    /// The actor's output: logits (categorical) or the mean (Gaussian), shape `[B, width]`.
    pub fn actor_output(&self, obs: &Tensor) -> Tensor {
        match &self.network {
            Network::Mlp(mlp) => mlp.actor_output(&self.params, obs),
            Network::NatureCnn(cnn) => cnn.actor_output(&self.params, obs),
        }
    }

    /// The actor's output and V(s) in one pass (the MLP runs actor and critic side by side; the
    /// CNN runs its shared trunk once).
    pub fn actor_output_and_value(&self, obs: &Tensor) -> (Tensor, Tensor) {
        match &self.network {
            Network::Mlp(mlp) => {
                let pass = mlp.forward_pass(&self.params, obs);
                (pass.out, pass.value)
            }
            Network::NatureCnn(cnn) => cnn.actor_output_and_value(&self.params, obs),
        }
    }

    /// [`Self::actor_output_and_value`], keeping what [`Self::backward`] needs: each MLP hidden
    /// layer's output, or the CNN's autograd graph (recorded even under `tch::no_grad`).
    pub fn forward_pass(&self, obs: &Tensor) -> Forward {
        match &self.network {
            Network::Mlp(mlp) => mlp.forward_pass(&self.params, obs),
            Network::NatureCnn(cnn) => cnn.forward_pass(&self.params, obs),
        }
    }

    /// Writes into [`Self::grad`] the gradient of a loss with respect to the parameters, given
    /// the loss's gradient with respect to the actor's output of `pass` (`d_out`, `[B, width]`),
    /// its value (`d_value`, `[B]`) and, for a Gaussian policy, the log-std (`[1, dim]`). The
    /// MLP writes the chain rule out (no graph, one matmul per weight); the CNN replays the
    /// pass's autograd graph once. Every parameter's slot is written, so nothing of an earlier
    /// call is left.
    pub fn backward(
        &self,
        obs: &Tensor,
        pass: &Forward,
        d_out: &Tensor,
        d_value: &Tensor,
        d_log_std: Option<&Tensor>,
    ) {
        tch::no_grad(|| {
            match &self.network {
                Network::Mlp(mlp) => {
                    mlp.backward(&self.params, &self.grad_views, obs, pass, d_out, d_value)
                }
                Network::NatureCnn(_) => {
                    self.grad.shallow_clone().copy_(&cnn::autograd_backward(
                        &self.params,
                        pass,
                        d_out,
                        d_value,
                    ));
                }
            }
            match (self.log_std, d_log_std) {
                (Some(index), Some(d)) => self.grad_views[index].shallow_clone().copy_(d),
                (None, None) => {}
                _ => panic!("a log-std gradient goes with a Gaussian policy, and only there"),
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
    /// Each MLP hidden layer's output, `[2, B, H]`: the actor's rows, then the critic's (empty
    /// for the CNN, whose `out` and `value` carry their autograd graph instead).
    hidden: Vec<Tensor>,
    /// The actor's output, `[B, width]`: logits, or the Gaussian's mean.
    pub out: Tensor,
    /// V(s), `[B]`.
    pub value: Tensor,
}

/// Index of a layer's weight and bias in the flat parameters.
#[derive(Clone, Copy, Debug)]
struct Layer {
    weight: usize,
    bias: usize,
}

/// CleanRL's `layer_init` weight (`torch.nn.init.orthogonal_(layer.weight, std)`): an
/// orthogonal `[shape[0], rest]` matrix times `gain`, shaped `shape` (torch flattens a conv
/// kernel's trailing dimensions the same way; tch's `Init::Orthogonal` returns the flat matrix).
fn orthogonal(gain: f64, shape: &[i64]) -> Tensor {
    let rest: i64 = shape[1..].iter().product();
    tch::nn::init(Init::Orthogonal { gain }, &[shape[0], rest], Device::Cpu).view(shape)
}

/// CleanRL's `layer_init` bias (`bias_const = 0`).
fn zero_bias(out: i64) -> Tensor {
    Tensor::zeros([out], (Kind::Float, Device::Cpu))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// W·Wᵀ (rows ≤ cols) or Wᵀ·W (rows > cols) of an orthogonal matrix with gain g is g²·I.
    pub(super) fn assert_orthogonal(w: &Tensor, gain: f64) {
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
