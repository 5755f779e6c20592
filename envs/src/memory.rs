//! Sizes checked before they are allocated: a pool, a rollout buffer or a model too large for
//! the machine is a clear error naming the setting, not an abort in the allocator.

/// Memory a new allocation can have, in bytes, and what bounds it: the least of the kernel's
/// `MemAvailable` (`/proc/meminfo`), the room left under this process's address-space limit
/// (`ulimit -v`: the limit less `VmSize`) and the room left in its cgroup (v2 `memory.max` less
/// `memory.current`, v1 `memory.limit_in_bytes` less `memory.usage_in_bytes`). `None` where
/// none of them is known.
pub fn available() -> Option<(u64, &'static str)> {
    [
        meminfo_bytes("MemAvailable:").map(|b| (b, "available")),
        address_space_room().map(|b| {
            (
                b,
                "left under this process's address-space limit (ulimit -v)",
            )
        }),
        cgroup_room().map(|b| (b, "left under this process's cgroup memory limit")),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|&(bytes, _)| bytes)
}

/// The bytes of [`available`].
pub fn available_bytes() -> Option<u64> {
    available().map(|(bytes, _)| bytes)
}

/// An error message when `bytes` (`None`: more than 2^64) will not fit in the memory
/// available, naming `what` needs it; `None` when it fits or the available memory is unknown.
pub fn does_not_fit(what: &str, bytes: Option<u64>) -> Option<String> {
    let (available, bound) = available()?;
    match bytes {
        Some(bytes) if bytes <= available => None,
        Some(bytes) => Some(format!(
            "{what} needs about {} of memory, but {} is {bound}",
            gib(bytes),
            gib(available)
        )),
        None => Some(format!(
            "{what} needs more than 2^64 bytes of memory ({} is {bound})",
            gib(available)
        )),
    }
}

/// A `kB` field of `/proc/meminfo` in bytes.
fn meminfo_bytes(field: &str) -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, field)
}

/// The value of a `Name:   1234 kB` line, in bytes.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `RLIMIT_AS` (`/proc/self/limits`, "Max address space") less this process's `VmSize`.
fn address_space_room() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?; // "unlimited" does not parse: no bound
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(soft.saturating_sub(kib_field(&status, "VmSize:")?))
}

/// The memory limit of this process's cgroup less its usage (v2, then v1); `None` without a
/// limit.
fn cgroup_room() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let read =
        |path: String| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, group) = (parts.next()?, parts.next()?, parts.next()?);
        let (root, limit, usage) = match controllers {
            "" => ("/sys/fs/cgroup", "memory.max", "memory.current"),
            c if c.split(',').any(|c| c == "memory") => (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            ),
            _ => continue,
        };
        // Inside a container the cgroup's own folder is usually mounted as the root.
        for dir in [format!("{root}{group}"), root.to_owned()] {
            if let (Some(limit), Some(usage)) = (
                read(format!("{dir}/{limit}")),
                read(format!("{dir}/{usage}")),
            ) {
                // v1 writes "no limit" as a huge page-rounded number; v2 as "max".
                if limit < 1 << 62 {
                    return Some(limit.saturating_sub(usage));
                }
                return None;
            }
        }
    }
    None
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
