//! A model's parameters as views into one flat tensor, so that a gradient laid out the same way
//! (PPO writes its own, see `ActorCritic::backward`) makes the optimiser step and the gradient
//! norm a handful of whole-buffer operations instead of a few per tensor (tch pays a few
//! microseconds per operation, which dominates small policies). The flat tensor is an autograd
//! leaf too: a loss's `backward` accumulates into one flat gradient ([`FlatParams::grad`]),
//! which the tests use as the reference.

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// The name of the first tensor that holds a NaN or an infinity, if any. Each tensor is summed
/// in f64 (finite f32 values cannot overflow it, so the sum is finite exactly when every element
/// is), and the sums come back to the host in one transfer.
pub fn first_non_finite<'a>(
    named: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<Option<&'a str>> {
    let (names, sums): (Vec<&str>, Vec<Tensor>) = tch::no_grad(|| {
        named
            .into_iter()
            .filter(|(_, t)| t.defined() && t.is_floating_point())
            .map(|(name, t)| (name, t.sum(Kind::Double).to_device(Device::Cpu)))
            .unzip()
    });
    if sums.is_empty() {
        return Ok(None);
    }
    let sums = Vec::<f64>::try_from(Tensor::f_stack(&sums, 0)?)?;
    Ok(names
        .into_iter()
        .zip(sums)
        .find_map(|(name, sum)| (!sum.is_finite()).then_some(name)))
}

#[derive(Debug)]
pub struct FlatParams {
    flat: Tensor,
    entries: Vec<Entry>,
    views: Vec<Tensor>,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    shape: Vec<i64>,
    offset: i64,
    numel: i64,
}

impl Entry {
    fn view_of(&self, buffer: &Tensor) -> Tensor {
        buffer
            .narrow(0, self.offset, self.numel)
            .view(&self.shape[..])
    }
}

/// The initial value of one parameter, given to [`FlatParams::new`].
#[derive(Debug)]
pub struct ParamInit {
    pub name: String,
    pub value: Tensor,
}

impl FlatParams {
    pub fn new(inits: Vec<ParamInit>, device: Device) -> Self {
        let mut entries = Vec::with_capacity(inits.len());
        let mut offset = 0;
        for init in &inits {
            let numel = init.value.numel() as i64;
            entries.push(Entry {
                name: init.name.clone(),
                shape: init.value.size(),
                offset,
                numel,
            });
            offset += numel;
        }
        let flat = Tensor::cat(
            &inits
                .iter()
                .map(|i| i.value.to_kind(Kind::Float).flatten(0, -1))
                .collect::<Vec<_>>(),
            0,
        )
        .to_device(device)
        .detach()
        .set_requires_grad(true);
        // Views taken once: they share the flat storage (so optimiser updates show through) and
        // carry autograd edges to the flat leaf.
        let views = entries.iter().map(|e| e.view_of(&flat)).collect();
        Self {
            flat,
            entries,
            views,
        }
    }

    /// Views of `buffer`, a tensor of the flat parameters' size (a gradient, say), laid out like
    /// the parameters: one per parameter, in their order.
    pub fn views_of(&self, buffer: &Tensor) -> Vec<Tensor> {
        self.entries.iter().map(|e| e.view_of(buffer)).collect()
    }

    pub fn get(&self, index: usize) -> &Tensor {
        &self.views[index]
    }

    /// One view of `buffer` (the flat parameters, or another buffer of their size) over the
    /// parameters `first..=last` (adjacent in the flat buffer), shaped `shape`. A view of the
    /// parameters carries autograd edges to the flat leaf, like the per-parameter views.
    pub fn span_view_of(
        &self,
        buffer: &Tensor,
        first: usize,
        last: usize,
        shape: &[i64],
    ) -> Tensor {
        let (start, end) = (&self.entries[first], &self.entries[last]);
        buffer
            .narrow(0, start.offset, end.offset + end.numel - start.offset)
            .view(shape)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// The first parameter that holds a NaN or an infinity (see [`first_non_finite`]).
    pub fn first_non_finite(&self) -> Result<Option<&str>> {
        first_non_finite(
            self.entries
                .iter()
                .map(|e| e.name.as_str())
                .zip(&self.views),
        )
    }

    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    pub fn numel(&self) -> i64 {
        self.flat.numel() as i64
    }

    pub fn device(&self) -> Device {
        self.flat.device()
    }

    /// The gradient autograd accumulated so far (zeros before the first backward pass).
    pub fn grad(&self) -> Tensor {
        let grad = self.flat.grad();
        if grad.defined() {
            grad
        } else {
            self.flat.zeros_like()
        }
    }

    pub fn zero_grad(&mut self) {
        let mut grad = self.flat.grad();
        if grad.defined() {
            let _ = grad.zero_();
        }
    }

    /// Named tensors (copies on the CPU) for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        tch::no_grad(|| {
            self.entries
                .iter()
                .zip(&self.views)
                .map(|(e, v)| (e.name.clone(), v.to_device(Device::Cpu).copy()))
                .collect()
        })
    }

    /// Loads named tensors saved by [`Self::named_tensors`]; every parameter must be present
    /// with its shape.
    pub fn load_named(&mut self, tensors: &[(String, Tensor)], source: &str) -> Result<()> {
        for (entry, view) in self.entries.iter().zip(&self.views) {
            let Some((_, value)) = tensors.iter().find(|(n, _)| *n == entry.name) else {
                return Err(Error::Checkpoint(format!(
                    "{source}: parameter `{}` is missing",
                    entry.name
                )));
            };
            if value.size() != entry.shape {
                return Err(Error::Checkpoint(format!(
                    "{source}: parameter `{}` has shape {:?}, the model expects {:?}",
                    entry.name,
                    value.size(),
                    entry.shape
                )));
            }
            tch::no_grad(|| view.shallow_clone().copy_(&value.to_kind(Kind::Float)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(name: &str, values: &[f32], shape: &[i64]) -> ParamInit {
        ParamInit {
            name: name.into(),
            value: Tensor::from_slice(values).view(shape),
        }
    }

    /// The loss of a tiny linear model, through the flat views and through separate leaves.
    fn loss(w: &Tensor, b: &Tensor, x: &Tensor) -> Tensor {
        x.linear(w, Some(b)).tanh().square().sum(Kind::Float)
    }

    #[test]
    fn reused_views_give_the_gradients_of_separate_leaves_across_updates() {
        let w0 = [0.3f32, -0.2, 0.5, 0.1, 0.7, -0.4];
        let b0 = [0.05f32, -0.1];
        let mut flat = FlatParams::new(
            vec![init("w", &w0, &[2, 3]), init("b", &b0, &[2])],
            Device::Cpu,
        );
        let mut w = Tensor::from_slice(&w0).view([2, 3]).set_requires_grad(true);
        let mut b = Tensor::from_slice(&b0).set_requires_grad(true);
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5, -0.3, 0.8]).view([2, 3]);
        for step in 0..3 {
            flat.zero_grad();
            loss(flat.get(0), flat.get(1), &x).backward();
            w.zero_grad();
            b.zero_grad();
            loss(&w, &b, &x).backward();
            let want = Tensor::cat(&[w.grad().flatten(0, -1), b.grad()], 0);
            let diff = (flat.grad() - &want).abs().max().double_value(&[]);
            assert!(diff < 1e-7, "step {step}: gradient differs by {diff}");
            // The same plain SGD update on both; the views must see the flat buffer change.
            tch::no_grad(|| {
                let _ = flat.flat().shallow_clone().g_add_(&(flat.grad() * -0.1));
                let _ = w.shallow_clone().g_add_(&(w.grad() * -0.1));
                let _ = b.shallow_clone().g_add_(&(b.grad() * -0.1));
            });
            let diff = (flat.get(0) - &w).abs().max().double_value(&[]);
            assert!(diff < 1e-7, "step {step}: weights differ by {diff}");
        }
    }

    #[test]
    fn load_named_checks_names_and_shapes() {
        let mut flat = FlatParams::new(
            vec![init("w", &[1.0, 2.0], &[2]), init("b", &[3.0], &[1])],
            Device::Cpu,
        );
        let saved = flat.named_tensors();
        let mut other = FlatParams::new(
            vec![init("w", &[0.0, 0.0], &[2]), init("b", &[0.0], &[1])],
            Device::Cpu,
        );
        other.load_named(&saved, "test").unwrap();
        assert_eq!(
            Vec::<f32>::try_from(other.flat().detach()).unwrap(),
            [1.0, 2.0, 3.0]
        );

        let copy = |i: usize| (saved[i].0.clone(), saved[i].1.copy());
        let missing = vec![copy(0)];
        let err = flat.load_named(&missing, "ckpt").unwrap_err().to_string();
        assert!(err.contains("parameter `b` is missing"), "{err}");
        let wrong = vec![
            copy(0),
            (
                "b".to_owned(),
                Tensor::zeros([2], (Kind::Float, Device::Cpu)),
            ),
        ];
        let err = flat.load_named(&wrong, "ckpt").unwrap_err().to_string();
        assert!(
            err.contains("`b` has shape [2], the model expects [1]"),
            "{err}"
        );
    }
}
