//! `hone_envs._native`, the compiled half of the Python package `hone_envs`: hone's `EnvPool`
//! (`NativePool`) and the task registry. The package's Python half (`python/hone_envs`) makes a
//! pool a `gymnasium.vector.VectorEnv`.

mod actions;
mod error;
mod output;
mod pool;

use pyo3::prelude::*;

/// The ids `make` accepts, sorted.
#[pyfunction]
fn list_all_envs() -> Vec<String> {
    hone_envs::registry::task_ids()
}

#[pymodule]
#[pyo3(name = "_native")]
fn native_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<pool::NativePool>()?;
    module.add_class::<pool::PoolBuffers>()?;
    module.add_function(wrap_pyfunction!(list_all_envs, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
