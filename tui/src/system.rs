//! What the dashboard measures of the training process: CPU and resident memory from
//! `/proc/<pid>` (Linux), GPU memory from `nvidia-smi` on CUDA runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::state::GpuMemory;

/// Linux reports CPU times in USER_HZ ticks, which the kernel fixes at 100 for user space on
/// every architecture hone runs on (x86-64, arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime, in ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The process state letter (field 3) of `/proc/<pid>/stat`.
fn parse_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// `VmRSS` from the text of `/proc/<pid>/status`, in bytes.
pub fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether `pid` is a running (not zombie) process.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_state(&s))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// CPU percent between successive samples, and resident memory, of one process.
#[derive(Debug)]
pub struct ProcessSampler {
    dir: PathBuf,
    last: Option<(Instant, u64)>,
}

impl ProcessSampler {
    pub fn new(pid: u32) -> Self {
        Self {
            dir: PathBuf::from(format!("/proc/{pid}")),
            last: None,
        }
    }

    /// (CPU percent since the previous call, resident bytes); `None` where unknown (first
    /// call, no `/proc`, process gone).
    pub fn sample(&mut self) -> (Option<f64>, Option<u64>) {
        let now = Instant::now();
        let ticks = std::fs::read_to_string(self.dir.join("stat"))
            .ok()
            .and_then(|s| parse_cpu_ticks(&s));
        let rss = std::fs::read_to_string(self.dir.join("status"))
            .ok()
            .and_then(|s| parse_rss(&s));
        let cpu = match (self.last, ticks) {
            (Some((then, before)), Some(ticks)) => {
                let wall = now.duration_since(then).as_secs_f64();
                (wall > 0.0)
                    .then(|| 100.0 * ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND / wall)
            }
            _ => None,
        };
        self.last = ticks.map(|t| (now, t));
        (cpu, rss)
    }
}

/// The `used_memory` (MiB) of `pid` in `nvidia-smi --query-compute-apps=pid,used_memory
/// --format=csv,noheader,nounits` output, summed over its devices.
pub fn parse_compute_apps(csv: &str, pid: u32) -> Option<u64> {
    let mut total = None;
    for line in csv.lines() {
        let mut cells = line.split(',').map(str::trim);
        let (Some(p), Some(mib)) = (cells.next(), cells.next()) else {
            continue;
        };
        if p.parse::<u32>().ok() == Some(pid)
            && let Ok(mib) = mib.parse::<u64>()
        {
            *total.get_or_insert(0) += mib << 20;
        }
    }
    total
}

/// (used, total) bytes of device `index` in `nvidia-smi --query-gpu=memory.used,memory.total
/// --format=csv,noheader,nounits` output (one line per device).
pub fn parse_device_memory(csv: &str, index: usize) -> Option<(u64, u64)> {
    let line = csv.lines().filter(|l| !l.trim().is_empty()).nth(index)?;
    let mut cells = line.split(',').map(|c| c.trim().parse::<u64>());
    let used = cells.next()?.ok()?;
    let total = cells.next()?.ok()?;
    Some((used << 20, total << 20))
}

/// The CUDA device index of a device string (`cuda` → 0, `cuda:1` → 1); `None` off CUDA.
pub fn cuda_index(device: &str) -> Option<usize> {
    let rest = device.strip_prefix("cuda")?;
    match rest.strip_prefix(':') {
        Some(n) => n.parse().ok(),
        None if rest.is_empty() => Some(0),
        None => None,
    }
}

fn nvidia_smi(query: &str) -> Option<String> {
    let output = Command::new("nvidia-smi")
        .args([query, "--format=csv,noheader,nounits"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls `nvidia-smi` every two seconds on its own thread (it takes tens of milliseconds, too
/// long for the UI thread). Stops when `nvidia-smi` is missing or the sampler is dropped.
#[derive(Debug)]
pub struct GpuSampler {
    latest: Arc<Mutex<Option<GpuMemory>>>,
}

impl GpuSampler {
    pub fn start(pid: u32, device_index: usize) -> Self {
        let latest = Arc::new(Mutex::new(None));
        let shared = Arc::downgrade(&latest);
        std::thread::Builder::new()
            .name("hone-tui-gpu".into())
            .spawn(move || {
                loop {
                    let per_process = nvidia_smi("--query-compute-apps=pid,used_memory")
                        .and_then(|csv| parse_compute_apps(&csv, pid));
                    let device = nvidia_smi("--query-gpu=memory.used,memory.total")
                        .and_then(|csv| parse_device_memory(&csv, device_index));
                    let sample = match (per_process, device) {
                        (Some(used), device) => Some(GpuMemory {
                            used_bytes: used,
                            total_bytes: device.map(|d| d.1),
                            per_process: true,
                        }),
                        // The process is not visible (another PID namespace): the device's use.
                        (None, Some((used, total))) => Some(GpuMemory {
                            used_bytes: used,
                            total_bytes: Some(total),
                            per_process: false,
                        }),
                        (None, None) => None,
                    };
                    let Some(slot) = shared.upgrade() else {
                        return;
                    };
                    if sample.is_none() && device.is_none() {
                        // No nvidia-smi (or no device): nothing to poll.
                        return;
                    }
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = sample;
                    drop(slot);
                    std::thread::sleep(Duration::from_secs(2));
                }
            })
            .ok();
        Self { latest }
    }

    pub fn latest(&self) -> Option<GpuMemory> {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (hone (train) x) R 1 4242 4242 0 -1 4194304 1234 0 0 0 \
                    350 25 0 0 20 0 3 0 100 1000000 5000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(375));
        assert_eq!(parse_state(stat), Some('R'));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_comes_from_vmrss_in_kib() {
        let status = "Name:\thone\nVmPeak:\t 999 kB\nVmRSS:\t  307200 kB\nThreads:\t3\n";
        assert_eq!(parse_rss(status), Some(300 << 20));
        assert_eq!(parse_rss("Name:\thone\n"), None);
    }

    #[test]
    fn this_process_is_alive_and_sampled() {
        let pid = std::process::id();
        assert!(process_alive(pid));
        let mut sampler = ProcessSampler::new(pid);
        let (cpu, rss) = sampler.sample();
        assert_eq!(cpu, None, "no CPU percent from one sample");
        assert!(rss.is_some_and(|r| r > 1 << 20), "{rss:?}");
        // Burn some CPU so the second sample has something to measure.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let (cpu, _) = sampler.sample();
        assert!(cpu.is_some_and(|c| c >= 0.0), "{cpu:?}");
        assert!(!process_alive(u32::MAX));
    }

    #[test]
    fn nvidia_smi_output_parses() {
        let apps = "1234, 2048\n4242, 1024\n4242, 512\n";
        assert_eq!(parse_compute_apps(apps, 4242), Some(1536 << 20));
        assert_eq!(parse_compute_apps(apps, 7), None);
        assert_eq!(parse_compute_apps("", 7), None);
        let gpus = "1024, 81559\n10, 143771\n";
        assert_eq!(
            parse_device_memory(gpus, 1),
            Some((10 << 20, 143_771 << 20))
        );
        assert_eq!(parse_device_memory(gpus, 2), None);
        assert_eq!(parse_device_memory("[N/A], [N/A]\n", 0), None);
        assert_eq!(cuda_index("cuda"), Some(0));
        assert_eq!(cuda_index("cuda:3"), Some(3));
        assert_eq!(cuda_index("cpu"), None);
        assert_eq!(cuda_index("cudax"), None);
    }
}
