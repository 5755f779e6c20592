//! CleanRL's Atari agent (`cleanrl/ppo_atari_envpool.py`, `Agent`, lines 123–149): the
//! Nature-DQN convolutional trunk shared by a linear actor and a linear critic,
//!
//! ```text
//! x / 255 → Conv2d(C, 32, 8, stride 4) → ReLU → Conv2d(32, 64, 4, stride 2) → ReLU
//!         → Conv2d(64, 64, 3, stride 1) → ReLU → Flatten → Linear(64·7·7, 512) → ReLU
//!         → actor Linear(512, n)  (gain 0.01)
//!         → critic Linear(512, 1) (gain 1)
//! ```
//!
//! every layer through `layer_init` (lines 117–120: orthogonal weights, gain √2 unless given,
//! zero biases). Parameters carry the names of CleanRL's `state_dict` (`network.0.weight`, …,
//! `actor.bias`, `critic.bias`), so a checkpoint loads into CleanRL's `Agent` as it is. The
//! gradient comes from autograd: a convolution's backward written out would buy nothing here,
//! where the convolutions, not libtorch's per-call overhead, take the time.

use tch::{Kind, Tensor};

use super::{Forward, Layer, orthogonal, zero_bias};
use crate::params::{FlatParams, ParamInit};

/// Frames are `FRAME × FRAME` (envpool's Atari observations): three convolutions take 84 to
/// 20, 9 and 7, the `64 * 7 * 7` of line 134.
pub(super) const FRAME: i64 = 84;
/// `(name, out channels, kernel, stride)` of each convolution, lines 127, 129 and 131; the
/// names are the indices in CleanRL's `nn.Sequential`, ReLUs counted.
const CONVS: [(&str, i64, i64, i64); 3] = [
    ("network.0", 32, 8, 4),
    ("network.2", 64, 4, 2),
    ("network.4", 64, 3, 1),
];
/// The flattened trunk, `64 * 7 * 7`, and the width of the dense layer `network.7` (line 134).
const FLAT: i64 = 64 * 7 * 7;
const HIDDEN: i64 = 512;

#[derive(Debug)]
pub struct NatureCnn {
    convs: [Layer; 3],
    dense: Layer,
    actor: Layer,
    critic: Layer,
}

impl NatureCnn {
    /// Appends the layers, initialised as CleanRL's `layer_init` does, to `inits`.
    pub(super) fn init(inits: &mut Vec<ParamInit>, channels: i64, actions: i64) -> Self {
        let mut layer = |name: &str, gain: f64, shape: &[i64]| {
            inits.push(ParamInit {
                name: format!("{name}.weight"),
                value: orthogonal(gain, shape),
            });
            inits.push(ParamInit {
                name: format!("{name}.bias"),
                value: zero_bias(shape[0]),
            });
            Layer {
                weight: inits.len() - 2,
                bias: inits.len() - 1,
            }
        };
        let gain = std::f64::consts::SQRT_2;
        let mut input = channels;
        let convs = CONVS.map(|(name, out, kernel, _)| {
            let conv = layer(name, gain, &[out, input, kernel, kernel]);
            input = out;
            conv
        });
        Self {
            convs,
            dense: layer("network.7", gain, &[HIDDEN, FLAT]),
            actor: layer("actor", 0.01, &[actions, HIDDEN]),
            critic: layer("critic", 1.0, &[1, HIDDEN]),
        }
    }

    /// `self.network(x / 255.0)` (lines 141, 144): `[B, 512]` from `[B, C, 84, 84]` frames,
    /// u8 or f32 pixel values 0–255 (CleanRL's float buffer), divided as torch divides them.
    fn trunk(&self, params: &FlatParams, obs: &Tensor) -> Tensor {
        let mut x = obs / 255.0;
        for (conv, (_, _, _, stride)) in self.convs.iter().zip(CONVS) {
            let (weight, bias) = (params.get(conv.weight), params.get(conv.bias));
            x = x
                .conv2d(weight, Some(bias), [stride, stride], [0, 0], [1, 1], 1)
                .relu();
        }
        linear(params, self.dense, &x.flatten(1, -1)).relu()
    }

    pub(super) fn value(&self, params: &FlatParams, obs: &Tensor) -> Tensor {
        linear(params, self.critic, &self.trunk(params, obs)).squeeze_dim(-1)
    }

    pub(super) fn actor_output(&self, params: &FlatParams, obs: &Tensor) -> Tensor {
        linear(params, self.actor, &self.trunk(params, obs))
    }

    /// Both heads on one pass of the trunk, as `get_action_and_value` (lines 143–149).
    pub(super) fn actor_output_and_value(
        &self,
        params: &FlatParams,
        obs: &Tensor,
    ) -> (Tensor, Tensor) {
        let hidden = self.trunk(params, obs);
        (
            linear(params, self.actor, &hidden),
            linear(params, self.critic, &hidden).squeeze_dim(-1),
        )
    }

    /// [`Self::actor_output_and_value`] with its autograd graph, recorded even under
    /// `tch::no_grad` (where PPO's update calls it) for [`autograd_backward`].
    pub(super) fn forward_pass(&self, params: &FlatParams, obs: &Tensor) -> Forward {
        let (out, value) = tch::with_grad(|| self.actor_output_and_value(params, obs));
        Forward {
            hidden: Vec::new(),
            out,
            value,
        }
    }
}

fn linear(params: &FlatParams, layer: Layer, x: &Tensor) -> Tensor {
    x.linear(params.get(layer.weight), Some(params.get(layer.bias)))
}

/// The gradient, laid out like the flat parameters, of a loss whose gradient with respect to
/// `pass.out` is `d_out` and to `pass.value` is `d_value`: the backward of `Σ out·d_out +
/// Σ value·d_value` through the pass's graph (consumed: one call per pass).
pub(super) fn autograd_backward(
    params: &FlatParams,
    pass: &Forward,
    d_out: &Tensor,
    d_value: &Tensor,
) -> Tensor {
    tch::with_grad(|| {
        let surrogate =
            (&pass.out * d_out).sum(Kind::Float) + (&pass.value * d_value).sum(Kind::Float);
        Tensor::run_backward(&[surrogate], &[params.flat()], false, false).remove(0)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use tch::{Device, Kind, Tensor};

    use super::super::tests::assert_orthogonal;
    use super::FRAME;
    use crate::policy::{ActionKind, ActorCritic};

    const SIX: ActionKind = ActionKind::Categorical { n: 6 };

    /// `n` random frame stacks, u8 `[n, 4, 84, 84]`.
    fn frames(n: i64) -> Tensor {
        Tensor::randint(256, [n, 4, FRAME, FRAME], (Kind::Uint8, Device::Cpu))
    }

    fn max_abs(t: Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    #[test]
    fn nature_cnn_shapes_names_and_parameter_count_follow_cleanrl() {
        let agent = ActorCritic::nature_cnn(4, SIX, Device::Cpu);
        let obs = frames(3);
        let (logits, value) = tch::no_grad(|| agent.actor_output_and_value(&obs));
        assert_eq!(logits.size(), [3, 6]);
        assert_eq!(value.size(), [3]);
        assert_eq!(agent.obs_dim, 4 * 84 * 84);
        // CleanRL's Agent for 6 actions: each layer's weights and biases.
        let count = (32 * 4 * 8 * 8 + 32)
            + (64 * 32 * 4 * 4 + 64)
            + (64 * 64 * 3 * 3 + 64)
            + (512 * 64 * 7 * 7 + 512)
            + (6 * 512 + 6)
            + (512 + 1);
        assert_eq!(count, 1_687_719);
        assert_eq!(agent.params.numel(), count);
        let names: Vec<String> = agent
            .params
            .named_tensors()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let want: Vec<String> = [
            "network.0",
            "network.2",
            "network.4",
            "network.7",
            "actor",
            "critic",
        ]
        .iter()
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .collect();
        assert_eq!(names, want);
        // f32 pixel values give what their u8 frames give; the separate heads what the joint
        // pass gives.
        let (logits_f32, value_f32) =
            tch::no_grad(|| agent.actor_output_and_value(&obs.to_kind(Kind::Float)));
        assert_eq!(max_abs(&logits_f32 - &logits), 0.0);
        assert_eq!(max_abs(&value_f32 - &value), 0.0);
        let (alone_logits, alone_value) =
            tch::no_grad(|| (agent.actor_output(&obs), agent.value(&obs)));
        assert_eq!(max_abs(alone_logits - &logits), 0.0);
        assert_eq!(max_abs(alone_value - &value), 0.0);
    }

    #[test]
    fn nature_cnn_init_is_cleanrls_layer_init() {
        let agent = ActorCritic::nature_cnn(4, SIX, Device::Cpu);
        let p = &agent.params;
        let get = |name: &str| p.get(p.index_of(name).unwrap()).detach();
        let sqrt2 = std::f64::consts::SQRT_2;
        for (layer, gain) in [
            ("network.0", sqrt2),
            ("network.2", sqrt2),
            ("network.4", sqrt2),
            ("network.7", sqrt2),
            ("actor", 0.01),
            ("critic", 1.0),
        ] {
            let weight = get(&format!("{layer}.weight"));
            // torch's orthogonal_ flattens a kernel's trailing dimensions: rows are filters.
            assert_orthogonal(&weight.flatten(1, -1), gain);
            assert_eq!(max_abs(get(&format!("{layer}.bias"))), 0.0, "{layer}.bias");
        }
        // The policy head's rows have norm 0.01, so the initial policy is near uniform.
        let rows = get("actor.weight")
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .sqrt();
        assert!(max_abs(rows - 0.01) < 1e-6);
    }

    /// `backward` (which PPO's update calls under `no_grad` with the loss's gradient at the
    /// outputs) writes every slot of the gradient buffer, equal to autograd's gradient of the
    /// same loss through the separate heads; and that gradient reaches every parameter.
    #[test]
    fn nature_cnn_gradient_reaches_every_parameter_and_equals_autograds() {
        for action in [SIX, ActionKind::Gaussian { dim: 2 }] {
            let mut agent = ActorCritic::nature_cnn(4, action, Device::Cpu);
            let obs = frames(5);
            let d_out = Tensor::randn([5, action.width()], (Kind::Float, Device::Cpu));
            let d_value = Tensor::randn([5], (Kind::Float, Device::Cpu));
            let d_log_std = Tensor::randn([1, action.width()], (Kind::Float, Device::Cpu));
            let d_log_std = agent.log_std().map(|_| &d_log_std);

            agent.params.zero_grad();
            let mut loss = (agent.actor_output(&obs) * &d_out).sum(Kind::Float)
                + (agent.value(&obs) * &d_value).sum(Kind::Float);
            if let (Some(log_std), Some(d)) = (agent.log_std(), d_log_std) {
                loss += (log_std * d).sum(Kind::Float);
            }
            loss.backward();
            let want = agent.params.grad();

            let _ = agent.grad().shallow_clone().fill_(f64::NAN);
            tch::no_grad(|| {
                let pass = agent.forward_pass(&obs);
                agent.backward(&obs, &pass, &d_out, &d_value, d_log_std);
            });
            let names = agent.params.named_tensors();
            let got = agent.params.views_of(agent.grad());
            for ((name, _), (got, want)) in names
                .iter()
                .zip(got.iter().zip(agent.params.views_of(&want)))
            {
                let scale = max_abs(want.shallow_clone());
                assert!(scale > 0.0, "{action:?}: no gradient reaches {name}");
                let diff = max_abs(got - &want);
                assert!(
                    diff <= 1e-5 * scale,
                    "{action:?}: {name}: gradients differ by {diff} (largest {scale})"
                );
            }
        }
    }

    /// Set to 1 to skip, with a printed reason, the tests that need hone's Python (as in
    /// rlhf/tests/common.rs).
    const SKIP_VAR: &str = "HONE_SKIP_PYTHON_TESTS";

    /// HONE_PYTHON (written into .cargo/config.toml by scripts/setup.sh) if it imports torch and
    /// safetensors; `None` only when SKIP_VAR says to skip, otherwise the test fails.
    fn reference_python(test: &str) -> Option<PathBuf> {
        let found = std::env::var("HONE_PYTHON")
            .map_err(|_| "HONE_PYTHON is not set (run scripts/setup.sh)".to_owned())
            .and_then(|python| {
                let out = Command::new(&python)
                    .args(["-c", "import torch, safetensors"])
                    .output()
                    .map_err(|e| format!("cannot run {python}: {e}"))?;
                match out.status.success() {
                    true => Ok(PathBuf::from(python)),
                    false => Err(format!(
                        "{python} cannot import torch and safetensors: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                }
            });
        match found {
            Ok(python) => Some(python),
            Err(why) if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") => {
                eprintln!("SKIPPED {test}: {why} ({SKIP_VAR}=1)");
                None
            }
            Err(why) => panic!("{test} needs hone's Python: {why} (set {SKIP_VAR}=1 to skip)"),
        }
    }

    /// hone's initial weights, loaded into CleanRL's `Agent` (scripts/cleanrl_atari_agent.py,
    /// `load_state_dict(strict=True)`: same names, same shapes), on the same u8 frames and
    /// actions: logits, log-probabilities, entropies and values agree to 1e-5 relative.
    #[test]
    fn nature_cnn_matches_cleanrls_agent_in_pytorch() {
        let Some(python) = reference_python("nature_cnn_matches_cleanrls_agent_in_pytorch") else {
            return;
        };
        tch::set_num_threads(1);
        let agent = ActorCritic::nature_cnn(4, SIX, Device::Cpu);
        let n = 16;
        let obs = frames(n);
        let actions = Tensor::randint(6, [n], (Kind::Int64, Device::Cpu));
        let dir =
            std::env::temp_dir().join(format!("hone-trainer-{}-nature-cnn", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut named = agent.params.named_tensors();
        named.push(("obs".into(), obs.shallow_clone()));
        named.push(("actions".into(), actions.shallow_clone()));
        let (input, output) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
        Tensor::write_safetensors(&named, &input).unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/cleanrl_atari_agent.py");
        let run = Command::new(&python)
            .arg(&script)
            .arg(&input)
            .arg(&output)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let reference = Tensor::read_safetensors(&output).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let reference_of = |name: &str| {
            let found = reference.iter().find(|(n, _)| n == name);
            found
                .unwrap_or_else(|| panic!("the script wrote no `{name}`"))
                .1
                .shallow_clone()
        };

        assert_eq!(
            reference_of("num_params").int64_value(&[0]),
            agent.params.numel()
        );
        let eval = tch::no_grad(|| agent.evaluate(&obs, &actions));
        let logits = tch::no_grad(|| agent.actor_output(&obs));
        for (name, got) in [
            ("logits", logits),
            ("log_prob", eval.log_prob),
            ("entropy", eval.entropy),
            ("value", eval.value),
        ] {
            let want = reference_of(name);
            assert_eq!(got.size(), want.size(), "{name}");
            let abs = max_abs(&got - &want);
            let rel = abs / max_abs(want.shallow_clone());
            println!("{name}: max abs difference {abs:.3e}, relative {rel:.3e}");
            assert!(
                rel <= 1e-5,
                "{name}: max abs difference {abs}, relative {rel}"
            );
        }
    }
}
