//! `hone_rlhf::memory::keep_freed_memory` on the main thread, as the hone commands call it: a
//! tensor larger than glibc's largest mmap threshold comes from the heap, and the heap keeps it
//! once freed, until `release_free_memory`. (harness = false: the allocations must be the main
//! thread's.) Whether a free would trim the heap's top without the trimming setting depends on
//! what else sits at the top, which a test does not control, so that setting is not checked.

fn main() {
    // The opt-out would make the check fail; this process is still single-threaded here.
    // SAFETY: no other thread exists yet to read the environment concurrently.
    unsafe { std::env::remove_var(hone_rlhf::memory::OPT_OUT) };
    check();
    println!("memory: ok");
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn check() {
    use tch::{Device, Kind, Tensor};

    // SAFETY: mallinfo2 only reads malloc's statistics.
    let stats = || unsafe { libc::mallinfo2() };
    let numel: i64 = 16 << 20; // 64 MiB of f32, twice glibc's largest mmap threshold

    // By default such a tensor is a mapping of its own.
    let before = stats().hblkhd;
    let t = Tensor::ones([numel], (Kind::Float, Device::Cpu));
    assert!(
        stats().hblkhd >= before + (64 << 20),
        "a 64 MiB tensor was expected to be mmapped by default"
    );
    drop(t);

    assert!(
        hone_rlhf::memory::keep_freed_memory(),
        "glibc accepts the settings"
    );
    let before = stats();
    let t = Tensor::ones([numel], (Kind::Float, Device::Cpu));
    assert_eq!(t.sum(Kind::Double).double_value(&[]), numel as f64);
    let during = stats();
    assert_eq!(during.hblkhd, before.hblkhd, "no new mapping");
    assert!(
        during.arena >= before.arena + (64 << 20),
        "the heap grew to hold it"
    );
    drop(t);
    let after = stats();
    assert_eq!(after.arena, during.arena, "the heap keeps the freed block");
    assert!(
        after.fordblks >= 64 << 20,
        "the block is free for the next allocation"
    );
    // The freed block's pages are still resident until they are handed back.
    let resident = || {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap();
        // SAFETY: sysconf only reads a system setting.
        pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
    };
    let kept = resident();
    hone_rlhf::memory::release_free_memory();
    let released = resident();
    assert!(
        released + (48 << 20) <= kept,
        "release_free_memory handed the freed block back (resident {kept} -> {released} bytes)"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn check() {
    assert!(!hone_rlhf::memory::keep_freed_memory());
}
