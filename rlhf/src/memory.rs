//! How the process's C allocator treats libtorch's CPU tensors.
//!
//! libtorch allocates CPU tensors with `posix_memalign`, so glibc's malloc serves them. By
//! default every block of more than a few MiB (an LLM's activations, logits and gradients) is a
//! fresh `mmap` handed back with `munmap` when freed, so each training step touches gigabytes of
//! new pages: the kernel takes a page fault and zeroes every 4 KiB of them. On SmolLM2-135M, one
//! SFT step at batch 8 × 256 on one core, that was 3.2 M page faults over a warm-up and two
//! steps, and about a tenth of the time. [`keep_freed_memory`] makes malloc keep what is freed
//! for the next allocation instead.

/// The environment variable that turns [`keep_freed_memory`] off when set to `0`.
pub const OPT_OUT: &str = "HONE_KEEP_FREED_MEMORY";

/// Makes glibc's malloc serve large blocks from its heap (`M_MMAP_MAX = 0`) and never hand the
/// heap's free top back to the kernel (`M_TRIM_THRESHOLD = -1`), so memory freed by one step is
/// reused, already mapped, by the next. This is the calling thread's arena, the main one when
/// called from `main` (the hone commands run their steps there); another thread's arena still
/// maps blocks beyond its 64 MiB heaps. The cost: freed memory stays with the process, up to
/// its peak, until [`release_free_memory`] (which the checkpoint loader calls once the file
/// buffers are freed) or exit; a CPU training step reaches that peak again anyway. Call it
/// before the large allocations; blocks already mapped stay so. Returns whether the settings
/// took effect: false off glibc, or when `HONE_KEEP_FREED_MEMORY=0`.
pub fn keep_freed_memory() -> bool {
    if std::env::var(OPT_OUT).is_ok_and(|v| v == "0") {
        return false;
    }
    set_malloc_options()
}

/// Hands the free memory malloc holds back to the kernel (`malloc_trim(0)`); a no-op off glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; no live allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_options() -> bool {
    // SAFETY: mallopt only changes malloc's tuning parameters, to documented values (mallopt(3):
    // 0 disables mmap for large requests, -1 disables trimming).
    [(libc::M_MMAP_MAX, 0), (libc::M_TRIM_THRESHOLD, -1)]
        .into_iter()
        .all(|(option, value)| unsafe { libc::mallopt(option, value) } == 1)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_options() -> bool {
    false
}
