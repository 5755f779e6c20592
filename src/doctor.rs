//! `hone doctor`: what hone runs against, and a real computation on every device.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use tch::{Device, Kind, Tensor};

/// The libtorch version tch 0.24 binds (torch-sys refuses to build against another).
const EXPECTED_LIBTORCH: &str = "2.11.0";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// libtorch intra-op threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: &DoctorArgs) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let threads = i32::try_from(threads).context("--threads is too large")?;
    tch::set_num_threads(threads);

    println!("hone {}", env!("CARGO_PKG_VERSION"));
    let lib_dir = loaded_libtorch_dir();
    let version = lib_dir.as_deref().and_then(libtorch_version);
    match (&version, &lib_dir) {
        (Some(version), Some(dir)) => println!("libtorch {version} ({})", dir.display()),
        (None, Some(dir)) => println!("libtorch of unknown version ({})", dir.display()),
        (_, None) => println!("libtorch: loaded, folder unknown"),
    }
    if let Some(version) = &version {
        let release = version.split('+').next().unwrap_or(version);
        if release != EXPECTED_LIBTORCH {
            bail!(
                "hone was built for libtorch {EXPECTED_LIBTORCH} but runs against {version}; \
                 unset LD_LIBRARY_PATH or point it at a libtorch {EXPECTED_LIBTORCH} lib folder \
                 (scripts/setup.sh installs one)"
            );
        }
    }

    let cuda_devices = if tch::Cuda::is_available() {
        tch::Cuda::device_count()
    } else {
        0
    };
    let cuda_lib = if loaded_library("libtorch_cuda.so").is_some() {
        "libtorch_cuda.so loaded"
    } else {
        "libtorch_cuda.so not loaded: a CPU-only libtorch"
    };
    if cuda_devices > 0 {
        let cudnn = if tch::Cuda::cudnn_is_available() {
            "available"
        } else {
            "unavailable"
        };
        println!("CUDA: available, {cuda_devices} device(s), cuDNN {cudnn} ({cuda_lib})");
    } else {
        println!("CUDA: not available, 0 devices ({cuda_lib})");
    }
    println!(
        "threads: libtorch intra-op {}, inter-op {}; {cores} core(s)",
        tch::get_num_threads(),
        tch::get_num_interop_threads()
    );

    let mut devices = vec![Device::Cpu];
    devices.extend((0..cuda_devices).map(|i| Device::Cuda(i as usize)));
    let mut failed = Vec::new();
    for device in devices {
        let name = device_name(device);
        match check_device(device) {
            Ok(report) => println!("{name}: {report} ok"),
            Err(err) => {
                println!("{name}: FAILED: {err:#}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("the tensor check failed on {}", failed.join(", "));
    }
    Ok(())
}

fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_owned(),
    }
}

/// A matrix product and a gradient, checked against values computed by hand.
fn check_device(device: Device) -> Result<String> {
    let x = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.])
        .reshape([2, 3])
        .to_device(device)
        .set_requires_grad(true);
    let gram = x.matmul(&x.tr());
    let gram_values = Vec::<f32>::try_from(gram.to_device(Device::Cpu).flatten(0, -1))?;
    if gram_values != [14., 32., 32., 77.] {
        bail!("x·xᵀ gave {gram_values:?}, expected [14, 32, 32, 77]");
    }
    // d/dx of sum(x·xᵀ) = 2 · (column sums of x broadcast over rows) = 2·[5, 7, 9] per row.
    gram.sum(Kind::Float).backward();
    let grad = Vec::<f32>::try_from(x.grad().to_device(Device::Cpu).flatten(0, -1))?;
    if grad != [10., 14., 18., 10., 14., 18.] {
        bail!("the gradient of sum(x·xᵀ) gave {grad:?}, expected [10, 14, 18, 10, 14, 18]");
    }
    Ok("x·xᵀ = [[14, 32], [32, 77]], ∇ sum(x·xᵀ) = [[10, 14, 18], [10, 14, 18]]".to_owned())
}

/// The path of a shared library this process has loaded, read from its memory map.
fn loaded_library(file_name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(Path::new)
        .find(|path| path.file_name().is_some_and(|name| name == file_name))
        .map(Path::to_path_buf)
}

/// The folder of the libtorch_cpu.so this process loaded.
fn loaded_libtorch_dir() -> Option<PathBuf> {
    loaded_library("libtorch_cpu.so")?
        .parent()
        .map(Path::to_path_buf)
}

/// libtorch's version from the files beside its lib folder: `version.py` in a pip wheel,
/// `build-version` in a libtorch archive.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_owned());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_owned())
}
