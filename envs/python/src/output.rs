//! A pool's `Batch` as the Python values gymnasium's and envpool's users expect: the observations,
//! `reward` (f32), `terminated`, `truncated` and an `info` dict of numpy arrays, one row per batch
//! row. Every array is new and owned by the caller except, in zero-copy mode, the observations
//! (a read-only view of the pool's buffer; see `observations_view`).

use std::time::Instant;

use hone_envs::Batch;
use numpy::{Element, IxDyn, PyArray, PyArray1, PyArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Turns batches into Python values; keeps the clock of each env's running episode for the
/// `t` (wall time) of gymnasium's episode statistics.
#[derive(Debug)]
pub struct BatchOutput {
    /// The shape of one observation.
    obs_shape: Vec<usize>,
    same_step: bool,
    clock: EpisodeClock,
}

impl BatchOutput {
    pub fn new(obs_shape: Vec<usize>, same_step: bool, num_envs: usize) -> Self {
        Self {
            obs_shape,
            same_step,
            clock: EpisodeClock::new(num_envs),
        }
    }

    /// `(obs, reward, terminated, truncated, info)`; `view_owner`: zero-copy mode, the object the
    /// observation view keeps alive.
    pub fn transition<'py>(
        &mut self,
        py: Python<'py>,
        batch: &Batch<'_>,
        view_owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let observations = self.observations(py, batch, view_owner)?;
        let reward = PyArray1::from_slice(py, batch.reward);
        let terminated = PyArray1::from_slice(py, batch.terminated);
        let truncated = PyArray1::from_slice(py, batch.truncated);
        let info = self.info(py, batch)?;
        PyTuple::new(
            py,
            [
                observations,
                reward.into_any(),
                terminated.into_any(),
                truncated.into_any(),
                info.into_any(),
            ],
        )
    }

    /// `(obs, info)` of a reset batch.
    pub fn reset<'py>(
        &mut self,
        py: Python<'py>,
        batch: &Batch<'_>,
        view_owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let observations = self.observations(py, batch, view_owner)?;
        let info = self.info(py, batch)?;
        PyTuple::new(py, [observations, info.into_any()])
    }

    fn observations<'py>(
        &self,
        py: Python<'py>,
        batch: &Batch<'_>,
        view_owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dims = self.batch_dims(batch.len());
        Ok(match view_owner {
            Some(owner) => {
                // SAFETY: `owner` keeps the pool, and so the buffer under `batch.observations`,
                // alive for as long as the view (its base object) lives; the pool's buffers are
                // allocated once and never reallocated.
                unsafe { observations_view(batch.observations, dims, owner) }.into_any()
            }
            None => array_from_slice(py, dims, batch.observations).into_any(),
        })
    }

    fn batch_dims(&self, rows: usize) -> Vec<usize> {
        let mut dims = Vec::with_capacity(1 + self.obs_shape.len());
        dims.push(rows);
        dims.extend_from_slice(&self.obs_shape);
        dims
    }

    /// `env_id` and `elapsed_step` (int32, as envpool); when episodes finished, gymnasium's
    /// `RecordEpisodeStatistics` keys `episode` (`r`, `l`, `t`) and `_episode`; in same-step mode
    /// also `final_obs`, `final_info` and their masks, as gymnasium's `SyncVectorEnv`.
    fn info<'py>(&mut self, py: Python<'py>, batch: &Batch<'_>) -> PyResult<Bound<'py, PyDict>> {
        let info = PyDict::new(py);
        let rows = batch.len();
        let env_id = array_from_iter(py, rows, batch.env_id.iter().map(|&id| id as i32));
        let elapsed = array_from_iter(py, rows, batch.elapsed_step.iter().map(|&n| n as i32));
        info.set_item(intern!(py, "env_id"), env_id)?;
        info.set_item(intern!(py, "elapsed_step"), elapsed)?;

        let starts_episode = batch.elapsed_step.contains(&0);
        if batch.episodes.is_empty() && !starts_episode {
            return Ok(info);
        }
        let now = self.clock.now();
        if !batch.episodes.is_empty() {
            self.add_episodes(py, batch, now, &info)?;
        }
        // A row with no step taken starts an episode (a reset row, or in same-step mode the row of
        // a finished episode, whose observation is the next episode's first).
        for (&env_id, &elapsed) in batch.env_id.iter().zip(batch.elapsed_step) {
            if elapsed == 0 {
                self.clock.start[env_id as usize] = now;
            }
        }
        Ok(info)
    }

    fn add_episodes<'py>(
        &self,
        py: Python<'py>,
        batch: &Batch<'_>,
        now: f64,
        info: &Bound<'py, PyDict>,
    ) -> PyResult<()> {
        let rows = batch.len();
        let episodes = &batch.episodes;
        let mut returns = vec![0.0f64; rows];
        let mut lengths = vec![0i64; rows];
        let mut times = vec![0.0f64; rows];
        let mut mask = vec![false; rows];
        let mut final_obs: Vec<Py<PyAny>> = Vec::new();
        if self.same_step {
            final_obs.resize_with(rows, || py.None());
        }
        // The batch lists its finished episodes in row order: the rows whose flags are set.
        let finished_rows = (0..rows).filter(|&row| batch.terminated[row] | batch.truncated[row]);
        let obs_len = batch.obs_len;
        for (k, row) in finished_rows.enumerate().take(episodes.len()) {
            let env_id = batch.env_id[row] as usize;
            returns[row] = episodes.episode_return[k];
            lengths[row] = i64::from(episodes.length[k]);
            // Rounded as gymnasium rounds it.
            times[row] = ((now - self.clock.start[env_id]) * 1e6).round() / 1e6;
            mask[row] = true;
            if self.same_step {
                let last = &episodes.final_observation[k * obs_len..(k + 1) * obs_len];
                final_obs[row] = array_from_slice(py, self.obs_shape.clone(), last)
                    .into_any()
                    .unbind();
            }
        }
        let episode = PyDict::new(py);
        episode.set_item(intern!(py, "r"), PyArray1::from_vec(py, returns))?;
        episode.set_item(intern!(py, "l"), PyArray1::from_vec(py, lengths))?;
        episode.set_item(intern!(py, "t"), PyArray1::from_vec(py, times))?;
        info.set_item(intern!(py, "episode"), episode)?;
        info.set_item(intern!(py, "_episode"), PyArray1::from_slice(py, &mask))?;
        if self.same_step {
            info.set_item(intern!(py, "final_obs"), PyArray1::from_vec(py, final_obs))?;
            info.set_item(intern!(py, "_final_obs"), PyArray1::from_slice(py, &mask))?;
            // The classic-control envs return an empty info, which is what gymnasium collects.
            info.set_item(intern!(py, "final_info"), PyDict::new(py))?;
            info.set_item(intern!(py, "_final_info"), PyArray1::from_slice(py, &mask))?;
        }
        Ok(())
    }
}

/// Wall-clock start of each env's running episode, in seconds since the pool was made.
#[derive(Debug)]
struct EpisodeClock {
    origin: Instant,
    start: Vec<f64>,
}

impl EpisodeClock {
    fn new(num_envs: usize) -> Self {
        Self {
            origin: Instant::now(),
            start: vec![0.0; num_envs],
        }
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }
}

/// A new C-ordered array of shape `dims` holding `values`. (Not `PyArray::zeros`, whose large
/// allocations release the GIL: copying into an uninitialised array is both faster and keeps the
/// only GIL release of a step the step itself.)
fn array_from_slice<'py, T: Element + Copy>(
    py: Python<'py>,
    dims: Vec<usize>,
    values: &[T],
) -> Bound<'py, PyArray<T, IxDyn>> {
    debug_assert_eq!(dims.iter().product::<usize>(), values.len());
    // SAFETY: the array is new, C-ordered, and holds exactly `values.len()` elements (`dims` is
    // the batch's shape), which are all written before it is handed out.
    unsafe {
        let array = PyArray::<T, IxDyn>::new(py, dims, false);
        std::ptr::copy_nonoverlapping(values.as_ptr(), array.data(), values.len());
        array
    }
}

/// A new 1-d array of `len` values from `values` (which yields exactly `len`).
fn array_from_iter<T: Element + Copy>(
    py: Python<'_>,
    len: usize,
    values: impl ExactSizeIterator<Item = T>,
) -> Bound<'_, PyArray1<T>> {
    assert_eq!(values.len(), len, "one value per element");
    // SAFETY: as in `array_from_slice`: `len` elements, each written once through the pointer.
    unsafe {
        let array = PyArray1::<T>::new(py, [len], false);
        let data = array.data();
        for (index, value) in values.enumerate() {
            data.add(index).write(value);
        }
        array
    }
}

/// A read-only array of shape `dims` over `values`, with `owner` as its base object.
///
/// # Safety
/// `values` stays allocated, and is not moved, for as long as `owner` lives.
unsafe fn observations_view<'py>(
    values: &[f32],
    dims: Vec<usize>,
    owner: Bound<'py, PyAny>,
) -> Bound<'py, PyArray<f32, IxDyn>> {
    let view = numpy::ndarray::ArrayView::from_shape(IxDyn(&dims), values)
        .expect("the batch's observations fill the batch's shape");
    // SAFETY: the caller guarantees `values` outlives `owner`, which the array holds as its base.
    let array = unsafe { PyArray::borrow_from_array(&view, owner) };
    // Read-only, so that no one writes into the pool's buffer through it; numpy does not let
    // Python set the flag back on an array that does not own its data and whose base is no array.
    array.readwrite().make_nonwriteable();
    array
}
