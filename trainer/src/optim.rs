//! Adam, as `torch.optim.Adam` (no weight decay, no amsgrad), over a [`FlatParams`] buffer,
//! with its state exposed for checkpoints.

use tch::{Kind, Tensor};

use crate::params::FlatParams;
use crate::{Error, Result};

#[derive(Debug)]
pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: u64,
}

impl Adam {
    pub fn new(params: &FlatParams, eps: f64) -> Self {
        let zeros = || Tensor::zeros([params.numel()], (Kind::Float, params.device()));
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            exp_avg: zeros(),
            exp_avg_sq: zeros(),
            step: 0,
        }
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One step with learning rate `lr` from `grad`, laid out like `params`.
    pub fn step(&mut self, params: &FlatParams, grad: &Tensor, lr: f64) {
        tch::no_grad(|| {
            self.step += 1;
            let bias_correction1 = 1.0 - self.beta1.powi(self.step as i32);
            let bias_correction2 = 1.0 - self.beta2.powi(self.step as i32);
            let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
            let _ = self.exp_avg_sq.g_mul_scalar_(self.beta2);
            let _ = self
                .exp_avg_sq
                .g_add_(&(grad.square() * (1.0 - self.beta2)));
            let denom = (self.exp_avg_sq.sqrt() / bias_correction2.sqrt()) + self.eps;
            let update = (&self.exp_avg / denom) * (-lr / bias_correction1);
            let _ = params.flat().shallow_clone().g_add_(&update);
        });
    }

    /// The first moment buffer that holds a NaN or an infinity, if any.
    pub fn first_non_finite(&self) -> Result<Option<&str>> {
        crate::params::first_non_finite([
            ("exp_avg", &self.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq),
        ])
    }

    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            (
                "exp_avg".to_owned(),
                self.exp_avg.to_device(tch::Device::Cpu),
            ),
            (
                "exp_avg_sq".to_owned(),
                self.exp_avg_sq.to_device(tch::Device::Cpu),
            ),
            ("step".to_owned(), Tensor::from_slice(&[self.step as i64])),
        ]
    }

    pub fn load_state(&mut self, tensors: &[(String, Tensor)], source: &str) -> Result<()> {
        let find = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    Error::Checkpoint(format!("{source}: optimiser state `{name}` is missing"))
                })
        };
        for (name, dest) in [
            ("exp_avg", &mut self.exp_avg),
            ("exp_avg_sq", &mut self.exp_avg_sq),
        ] {
            let value = find(name)?;
            if value.size() != dest.size() {
                return Err(Error::Checkpoint(format!(
                    "{source}: optimiser state `{name}` has shape {:?}, expected {:?}",
                    value.size(),
                    dest.size()
                )));
            }
            tch::no_grad(|| dest.copy_(value));
        }
        self.step = u64::try_from(find("step")?.int64_value(&[0]))
            .map_err(|_| Error::Checkpoint(format!("{source}: negative optimiser step")))?;
        Ok(())
    }
}

/// Scales `grad` in place so its L2 norm is at most `max_norm` (as `clip_grad_norm_`), returning
/// the norm before clipping as a scalar tensor (no device synchronisation).
pub fn clip_grad_norm(grad: &Tensor, max_norm: f64) -> Tensor {
    tch::no_grad(|| {
        let mut grad = grad.shallow_clone();
        let norm = grad.norm();
        let coef = ((&norm + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        let _ = grad.g_mul_(&coef);
        norm
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamInit;

    /// torch.optim.Adam's update written out in f64.
    fn reference_adam(p: &mut [f64], grads: &[Vec<f64>], lr: f64, eps: f64) {
        let (b1, b2) = (0.9f64, 0.999f64);
        let mut m = vec![0.0; p.len()];
        let mut v = vec![0.0; p.len()];
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                let denom = (v[i] / (1.0 - b2.powi(t))).sqrt() + eps;
                p[i] -= lr / (1.0 - b1.powi(t)) * m[i] / denom;
            }
        }
    }

    #[test]
    fn adam_matches_the_reference_update() {
        let start = [0.5f32, -1.5, 2.0];
        let mut params = FlatParams::new(
            vec![ParamInit {
                name: "p".into(),
                value: Tensor::from_slice(&start),
            }],
            tch::Device::Cpu,
        );
        let mut adam = Adam::new(&params, 1e-5);
        let grads = vec![
            vec![0.1, -0.2, 0.3],
            vec![-0.05, 0.4, 1e-3],
            vec![2.0, 0.0, -0.7],
        ];
        for g in &grads {
            params.zero_grad();
            let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            // d/dp of sum(p * g) = g.
            (params.get(0) * Tensor::from_slice(&g32))
                .sum(Kind::Float)
                .backward();
            adam.step(&params, &params.grad(), 3e-2);
        }
        let mut want: Vec<f64> = start.iter().map(|&x| x as f64).collect();
        reference_adam(&mut want, &grads, 3e-2, 1e-5);
        let got = Vec::<f32>::try_from(params.flat().detach()).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
        assert_eq!(adam.steps_taken(), 3);
    }

    #[test]
    fn adam_state_round_trips() {
        let params = FlatParams::new(
            vec![ParamInit {
                name: "p".into(),
                value: Tensor::from_slice(&[1.0f32, 2.0]),
            }],
            tch::Device::Cpu,
        );
        let mut a = Adam::new(&params, 1e-5);
        let _ = a.exp_avg.fill_(0.25);
        a.step = 7;
        let mut b = Adam::new(&params, 1e-5);
        b.load_state(&a.state_tensors(), "test").unwrap();
        assert_eq!(b.step, 7);
        assert_eq!(Vec::<f32>::try_from(&b.exp_avg).unwrap(), [0.25, 0.25]);
        let err = b
            .load_state(&a.state_tensors()[..1], "ckpt")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("optimiser state `exp_avg_sq` is missing"),
            "{err}"
        );
    }

    #[test]
    fn clip_grad_norm_scales_to_the_max_norm() {
        let mut params = FlatParams::new(
            vec![ParamInit {
                name: "p".into(),
                value: Tensor::from_slice(&[0.0f32, 0.0]),
            }],
            tch::Device::Cpu,
        );
        params.zero_grad();
        (params.get(0) * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let norm = clip_grad_norm(&params.grad(), 0.5).double_value(&[]);
        assert!((norm - 5.0).abs() < 1e-6);
        let clipped = Vec::<f32>::try_from(params.grad()).unwrap();
        assert!(
            (clipped[0] - 0.3).abs() < 1e-5 && (clipped[1] - 0.4).abs() < 1e-5,
            "{clipped:?}"
        );
        // Below the threshold nothing changes.
        let norm = clip_grad_norm(&params.grad(), 10.0).double_value(&[]);
        assert!((norm - 0.5).abs() < 1e-4);
        assert!((Vec::<f32>::try_from(params.grad()).unwrap()[1] - 0.4).abs() < 1e-5);
    }
}
