//! The concurrency building blocks of the pool: buffers shared by disjoint rows, cache-line padded
//! atomics and a spin-then-sleep wake-up signal.

use std::cell::UnsafeCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A buffer whose elements several threads write at once, each its own disjoint set of indices.
/// Who may touch which index is the pool's protocol, stated at each `unsafe` use.
pub(crate) struct SharedBuf<T> {
    cells: Box<[UnsafeCell<T>]>,
}

// SAFETY: the buffer hands out references only through `unsafe` methods whose callers guarantee
// that no index is accessed by two threads at once unless both only read it; `T: Send` lets a
// value written by one thread be read by another.
unsafe impl<T: Send> Sync for SharedBuf<T> {}

impl<T: Clone> SharedBuf<T> {
    pub(crate) fn new(len: usize, value: T) -> Self {
        Self {
            cells: (0..len).map(|_| UnsafeCell::new(value.clone())).collect(),
        }
    }
}

impl<T> SharedBuf<T> {
    pub(crate) fn from_vec(values: Vec<T>) -> Self {
        Self {
            cells: values.into_iter().map(UnsafeCell::new).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn base(&self) -> *mut T {
        UnsafeCell::raw_get(self.cells.as_ptr())
    }

    /// # Safety
    /// `start..start + len` is in bounds and no other thread accesses it while the slice lives.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [T] {
        debug_assert!(start + len <= self.cells.len());
        // SAFETY: in bounds and exclusive, as the caller guarantees; `UnsafeCell<T>` has the
        // layout of `T`.
        unsafe { std::slice::from_raw_parts_mut(self.base().add(start), len) }
    }

    /// # Safety
    /// `start..start + len` is in bounds and no thread writes it while the slice lives.
    #[inline(always)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &[T] {
        debug_assert!(start + len <= self.cells.len());
        // SAFETY: in bounds and not written concurrently, as the caller guarantees.
        unsafe { std::slice::from_raw_parts(self.base().add(start), len) }
    }

    /// # Safety
    /// `index` is in bounds and no other thread accesses it while the reference lives.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_mut(&self, index: usize) -> &mut T {
        debug_assert!(index < self.cells.len());
        // SAFETY: in bounds and exclusive, as the caller guarantees.
        unsafe { &mut *self.base().add(index) }
    }

    /// # Safety
    /// `index` is in bounds and no thread writes it meanwhile.
    #[inline(always)]
    pub(crate) unsafe fn read(&self, index: usize) -> T
    where
        T: Copy,
    {
        debug_assert!(index < self.cells.len());
        // SAFETY: in bounds and not written concurrently, as the caller guarantees.
        unsafe { *self.base().add(index) }
    }

    /// The start of the buffer, for readers that index it themselves.
    pub(crate) fn as_ptr(&self) -> *const T {
        self.base()
    }
}

/// Keeps a value on its own cache line (two, against the adjacent-line prefetcher), so that
/// threads writing neighbouring values do not invalidate each other's caches.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// How long a waiter spins, then yields, before it sleeps. Spinning is what makes a hand-off cost
/// well under a microsecond; sleeping keeps an idle pool off the CPU, and frees the core for a
/// thread the caller waits for when that thread was preempted.
#[derive(Clone, Copy)]
pub(crate) struct Patience {
    pub spin: Duration,
    pub yield_until: Duration,
}

/// Workers between steps: the caller's next step is usually a few microseconds away.
pub(crate) const WORKER_PATIENCE: Patience = Patience {
    spin: Duration::from_micros(30),
    yield_until: Duration::from_micros(200),
};

/// The caller waiting for workers to finish: they normally do within a chunk's time; when not,
/// a worker was preempted, and it can migrate to the caller's core once the caller sleeps.
pub(crate) const CALLER_PATIENCE: Patience = Patience {
    spin: Duration::from_micros(20),
    yield_until: Duration::from_micros(20),
};

/// A wake-up signal: waiters spin on their condition, then yield, then sleep on a condvar; a
/// notifier touches the mutex only when someone sleeps, so the hot path is one fence and a load.
#[derive(Default)]
pub(crate) struct Signal {
    sleepers: CachePadded<AtomicUsize>,
    mutex: Mutex<()>,
    condvar: Condvar,
}

impl Signal {
    /// Returns once `ready()` is true. `ready` must become true only through a change that is
    /// followed by `notify` on this signal.
    pub(crate) fn wait_until(&self, patience: Patience, mut ready: impl FnMut() -> bool) {
        if Self::spin_until(patience, &mut ready) {
            return;
        }
        let mut guard = self
            .mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify`: either the notifier sees us counted as a sleeper, or
        // we see its change in `ready()`.
        fence(Ordering::SeqCst);
        while !ready() {
            guard = self
                .condvar
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn spin_until(patience: Patience, ready: &mut impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            let waited = start.elapsed();
            if waited > patience.yield_until {
                return false;
            }
            if waited > patience.spin {
                std::thread::yield_now();
            }
        }
    }

    /// Wakes the sleeping waiters; call after the change that makes their condition true.
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self
                .mutex
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.condvar.notify_all();
        }
    }
}
