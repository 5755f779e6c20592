//! Sizes checked before they are allocated: a pool, a rollout buffer or a model too large for
//! the machine is a clear error naming the setting, not an abort in the allocator.

/// Memory the kernel says a new allocation can have without swapping (`MemAvailable` of
/// `/proc/meminfo`), in bytes; `None` where that is unknown.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// An error message when `bytes` (`None`: more than 2^64) will not fit in the memory
/// available, naming `what` needs it; `None` when it fits or the available memory is unknown.
pub fn does_not_fit(what: &str, bytes: Option<u64>) -> Option<String> {
    let available = available_bytes()?;
    match bytes {
        Some(bytes) if bytes <= available => None,
        Some(bytes) => Some(format!(
            "{what} needs about {} of memory, but this machine has {} available",
            gib(bytes),
            gib(available)
        )),
        None => Some(format!(
            "{what} needs more than 2^64 bytes of memory (this machine has {} available)",
            gib(available)
        )),
    }
}

/// Bytes as GiB with two decimals (`1.50 GiB`).
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The machine's logical CPUs (1 where unknown), the bound of every thread-count setting.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a thread-count setting (0: one per CPU) against the machine: more threads than
/// CPUs is an error naming the setting.
pub fn check_threads(name: &str, threads: usize) -> Result<(), String> {
    let cpus = cpus();
    if threads > cpus {
        return Err(format!(
            "{name} = {threads} exceeds this machine's {cpus} CPUs (0 uses one per CPU)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_machine_are_named() {
        let available = available_bytes().expect("Linux reports MemAvailable");
        assert!(does_not_fit("a pool", Some(1 << 20)).is_none());
        let message = does_not_fit("num_envs = 9", Some(available.saturating_mul(2))).unwrap();
        assert!(
            message.starts_with("num_envs = 9 needs about") && message.contains("available"),
            "{message}"
        );
        assert!(does_not_fit("x", None).unwrap().contains("2^64"));
        assert!(check_threads("torch_threads", cpus()).is_ok());
        let err = check_threads("torch_threads", 100_000).unwrap_err();
        assert!(err.contains("torch_threads = 100000 exceeds"), "{err}");
    }
}
