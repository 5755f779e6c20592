//! CleanRL's `ppo.py` agent network: separate actor and critic MLPs with tanh activations.
//! Each hidden layer of actor and critic runs as one matmul over both (packed views of adjacent
//! parameters), and the gradient is the chain rule written out, without an autograd graph.

use tch::{Kind, Tensor};

use super::{Forward, Layer, orthogonal, zero_bias};
use crate::params::{FlatParams, ParamInit};

#[derive(Debug)]
pub struct Mlp {
    actor: Vec<Layer>,
    critic: Vec<Layer>,
    /// The hidden layers of actor and critic side by side, `(weight, bias)` per layer: the
    /// first `[2H, D]`/`[2H]` (one matmul over the shared input), the others `[2, H, H]`/
    /// `[2, 1, H]` (one batched matmul). Views into the flat parameters, like the per-layer ones.
    packed: Vec<(Tensor, Tensor)>,
    /// Per hidden layer, the actor's and critic's `(weight, bias)` side by side in the gradient
    /// buffer, `[2, out, in]`/`[2, 1, out]`.
    grad_packed: Vec<(Tensor, Tensor)>,
    hidden: Vec<i64>,
}

impl Mlp {
    /// The packed views over `params` and `grad` of the layers [`actor_critic_layers`] made.
    pub(super) fn new(
        (actor, critic): (Vec<Layer>, Vec<Layer>),
        obs_dim: i64,
        hidden: &[i64],
        params: &FlatParams,
        grad: &Tensor,
    ) -> Self {
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
            grad_packed.push(span(grad, &stacked.0, &stacked.1));
        }
        Self {
            actor,
            critic,
            packed,
            grad_packed,
            hidden: hidden.to_vec(),
        }
    }

    fn forward(params: &FlatParams, layers: &[Layer], obs: &Tensor) -> Tensor {
        let mut x = obs.shallow_clone();
        for (i, layer) in layers.iter().enumerate() {
            x = x.linear(params.get(layer.weight), Some(params.get(layer.bias)));
            if i + 1 < layers.len() {
                x = x.tanh();
            }
        }
        x
    }

    pub(super) fn value(&self, params: &FlatParams, obs: &Tensor) -> Tensor {
        Self::forward(params, &self.critic, obs).squeeze_dim(-1)
    }

    pub(super) fn actor_output(&self, params: &FlatParams, obs: &Tensor) -> Tensor {
        Self::forward(params, &self.actor, obs)
    }

    /// Actor and critic in one pass: they share each hidden layer's matmul and tanh (a third of
    /// the libtorch calls of two separate passes).
    pub(super) fn forward_pass(&self, params: &FlatParams, obs: &Tensor) -> Forward {
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
            x.linear(params.get(layer.weight), Some(params.get(layer.bias)))
        };
        Forward {
            out: head(&self.actor[last], &actor_in),
            value: head(&self.critic[last], &critic_in).squeeze_dim(-1),
            hidden,
        }
    }

    /// The chain rule back through the layers, written out: what autograd computes, without
    /// recording a graph, each weight's gradient written in place by one matmul into `views`
    /// (the gradient buffer's per-parameter views). Run under `tch::no_grad`.
    pub(super) fn backward(
        &self,
        params: &FlatParams,
        views: &[Tensor],
        obs: &Tensor,
        pass: &Forward,
        d_out: &Tensor,
        d_value: &Tensor,
    ) {
        let last = self.hidden.len();
        let (actor, critic) = (self.actor[last], self.critic[last]);
        let d_value = d_value.unsqueeze(-1);
        let (actor_in, critic_in) = head_inputs(obs, &pass.hidden);
        let _ = d_out.tr().mm_out(&views[actor.weight], &actor_in);
        let _ = d_out.sum_intlist_out(&views[actor.bias], 0, false, Kind::Float);
        let _ = d_value.tr().mm_out(&views[critic.weight], &critic_in);
        let _ = d_value.sum_intlist_out(&views[critic.bias], 0, false, Kind::Float);
        if pass.hidden.is_empty() {
            return;
        }
        // The gradient at the last hidden layer's output, [2, B, H].
        let mut d_h = Tensor::stack(
            &[
                d_out.mm(params.get(actor.weight)),
                d_value.mm(params.get(critic.weight)),
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
    }
}

/// What the actor's and the critic's output layers read: the last hidden layer's actor and
/// critic rows, or the observations of a network without hidden layers.
fn head_inputs(obs: &Tensor, hidden: &[Tensor]) -> (Tensor, Tensor) {
    match hidden.last() {
        Some(h) => (h.select(0, 0), h.select(0, 1)),
        None => (obs.shallow_clone(), obs.shallow_clone()),
    }
}

/// Appends CleanRL's actor and critic MLPs `input → hidden… → output` (`layer_init`: gain √2
/// for hidden layers, 0.01 for the policy head, 1 for the value head, zero biases) and returns
/// their layers. Each hidden layer's actor and critic tensors are adjacent (actor weight, critic
/// weight, actor bias, critic bias), so the packed views of [`Mlp`] can span both.
pub(super) fn actor_critic_layers(
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
    let weight = |gain: f64, out: i64, input: i64| orthogonal(gain, &[out, input]);
    let bias = zero_bias;
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
