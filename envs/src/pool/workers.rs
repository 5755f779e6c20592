//! The state the calling thread shares with the pool's worker threads, and the workers' loops.
//!
//! Sync mode: a step is an *epoch*. The caller publishes the actions and a claim word
//! (epoch | next unclaimed env); every thread, the caller included, claims runs of consecutive
//! envs with a compare-and-swap, steps them, then adds them to the done count, which the caller
//! waits for. Claims are *guided*: a claim takes a share of what is left (`left / (2 × threads)`),
//! so an epoch starts with large claims and ends with small ones, never fewer envs than the
//! epoch's smallest claim. The caller sets that from what an env's step costs: envs of a few
//! nanoseconds go sixteen at a time, MuJoCo envs of tens of microseconds one at a time, so the
//! threads finish an epoch within about one env's step of each other. One atomic per claim,
//! none per env.
//!
//! Async mode: `send` links the sent env ids into chains of a few dozen (`next_link`) and pushes
//! one *job* per chain onto a ring; workers (and the caller, inside `recv`) claim a job, reserve
//! as many consecutive rows of the row ring, step the chain straight into them and mark them
//! ready. `recv` waits for `batch_size` ready rows after the last batch and hands them out as the
//! batch, without copying them unless they wrap around the end of the ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::kernel::{ActionRows, EnvRun, EnvState, Rows, Stepper};
use super::sync::{CALLER_PATIENCE, CachePadded, SharedBuf, Signal, WORKER_PATIENCE};
use crate::env::Obs;

/// What the threads of a sync epoch read once they have claimed envs.
#[derive(Clone, Copy)]
pub(crate) struct SyncCommand {
    pub actions: ActionRows,
}

/// The claim word: epoch (32 bits) | next unclaimed env (32).
fn claim_word(epoch: u32, next: usize) -> u64 {
    (u64::from(epoch) << 32) | next as u64
}

/// How many envs a claim takes when `left` are unclaimed: a `1 / (2 × threads)` share of them, at
/// least `min_claim`, at most all.
#[inline]
pub(crate) fn claim_len(left: usize, threads: usize, min_claim: usize) -> usize {
    (left / (2 * threads)).max(min_claim).min(left)
}

fn claim_epoch(word: u64) -> u32 {
    (word >> 32) as u32
}

/// A job: `len` envs chained from `first`.
pub(crate) fn job_word(first: u32, len: u32) -> u64 {
    (u64::from(first) << 32) | u64::from(len)
}

pub(crate) fn job_parts(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

pub(crate) struct Shared<O> {
    pub stepper: Box<dyn Stepper<O>>,
    pub state: EnvState,
    pub rows: Rows<O>,
    shutdown: AtomicBool,
    /// Workers that have started running (`EnvPool::new` waits for all of them).
    started: AtomicUsize,
    /// Workers wait here for work.
    pub work: Signal,
    /// The caller waits here for results.
    pub done: Signal,

    claim: CachePadded<AtomicU64>,
    /// The running epoch's smallest claim (written by the caller between epochs).
    min_claim: AtomicUsize,
    /// Envs of the running epoch stepped so far.
    envs_done: CachePadded<AtomicUsize>,
    /// Threads that take part in sync epochs, the caller's included.
    sync_threads: usize,
    /// Written by the caller only while no epoch is in progress.
    command: SharedBuf<SyncCommand>,
    any_fault: CachePadded<AtomicBool>,

    /// Per-env action rows of async mode, written by `send` while the env is not in flight.
    pub async_actions_int: SharedBuf<i64>,
    pub async_actions_float: SharedBuf<f32>,
    /// Async chains: the env after each env in its job.
    pub next_link: SharedBuf<u32>,
    job_mask: u64,
    jobs: Box<[AtomicU64]>,
    job_head: CachePadded<AtomicU64>,
    job_tail: CachePadded<AtomicU64>,
    /// Next row of the row ring to reserve (an absolute position; the row is position % capacity).
    row_tail: CachePadded<AtomicU64>,
    /// `position + 1` once the row of that absolute position is written.
    row_ready: Box<[AtomicU64]>,
}

impl<O: Obs> Shared<O> {
    pub(crate) fn new(
        stepper: Box<dyn Stepper<O>>,
        state: EnvState,
        rows: Rows<O>,
        async_int_len: usize,
        async_float_len: usize,
        sync_threads: usize,
    ) -> Self {
        let num_envs = state.elapsed.len();
        // At most one job per env is in flight, so a ring of more slots than envs never laps a
        // job that is still wanted.
        let job_ring = (num_envs + 1).next_power_of_two();
        let row_ready = (0..rows.capacity).map(|_| AtomicU64::new(0)).collect();
        Self {
            stepper,
            state,
            rows,
            shutdown: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            work: Signal::default(),
            done: Signal::default(),
            // Epoch 0 with every env claimed: no epoch to take part in until the first starts.
            claim: CachePadded(AtomicU64::new(claim_word(0, num_envs))),
            min_claim: AtomicUsize::new(1),
            envs_done: CachePadded(AtomicUsize::new(0)),
            sync_threads: sync_threads.max(1),
            command: SharedBuf::new(
                1,
                SyncCommand {
                    actions: ActionRows::None,
                },
            ),
            any_fault: CachePadded(AtomicBool::new(false)),
            async_actions_int: SharedBuf::new(async_int_len, 0),
            async_actions_float: SharedBuf::new(async_float_len, 0.0),
            next_link: SharedBuf::new(num_envs, 0),
            job_mask: job_ring as u64 - 1,
            jobs: (0..job_ring).map(|_| AtomicU64::new(0)).collect(),
            job_head: CachePadded::default(),
            job_tail: CachePadded::default(),
            row_tail: CachePadded::default(),
            row_ready,
        }
    }

    /// Waits until `workers` worker threads have started, so that a new pool's threads are
    /// running (their start-up done, its allocations included) before it is used.
    pub(crate) fn wait_for_workers(&self, workers: usize) {
        self.done.wait_until(CALLER_PATIENCE, || {
            self.started.load(Ordering::Acquire) >= workers
        });
    }

    pub(crate) fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.work.notify();
    }

    // ---- sync epochs ----

    /// Starts epoch `epoch` over every env, in claims of at least `min_claim` envs.
    ///
    /// # Safety
    /// No epoch is in progress (the previous one has been waited for).
    pub(crate) unsafe fn start_epoch(&self, epoch: u32, min_claim: usize, command: SyncCommand) {
        // SAFETY: no epoch is in progress, so no thread reads the command.
        unsafe { *self.command.get_mut(0) = command };
        self.envs_done.store(0, Ordering::Relaxed);
        debug_assert!(min_claim >= 1);
        // Written only when it changes, so that claimers keep the cache line.
        if self.min_claim.load(Ordering::Relaxed) != min_claim {
            self.min_claim.store(min_claim, Ordering::Relaxed);
        }
        // Release: a thread that sees the new epoch sees the command and the smallest claim.
        self.claim.store(claim_word(epoch, 0), Ordering::Release);
        self.work.notify();
    }

    /// Claims and steps envs of `epoch` until none is left; returns how many this thread stepped.
    pub(crate) fn run_epoch_claims(&self, epoch: u32) -> usize {
        let num_envs = self.state.elapsed.len();
        let mut stepped = 0;
        loop {
            let word = self.claim.load(Ordering::Acquire);
            let next = (word & 0xffff_ffff) as usize;
            if claim_epoch(word) != epoch || next >= num_envs {
                return stepped;
            }
            // The smallest claim read here belongs to this epoch: the caller writes it only
            // between epochs, and this one cannot end while envs are unclaimed (if it ended
            // meanwhile, the word changed and the exchange below fails).
            let len = claim_len(
                num_envs - next,
                self.sync_threads,
                self.min_claim.load(Ordering::Relaxed),
            );
            if self
                .claim
                .compare_exchange_weak(word, word + len as u64, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // SAFETY: the epoch cannot end before the claimed envs are counted done, and the
            // caller writes the command only between epochs.
            let command = unsafe { self.command.read(0) };
            let (start, end) = (next, next + len);
            // SAFETY: envs `start..end` are ours alone (claimed once by the CAS) and their action
            // rows are valid until the epoch ends, which it cannot before we count them done.
            let faulted = unsafe {
                self.stepper.run(
                    EnvRun::Range(start, end),
                    start,
                    command.actions,
                    &self.state,
                    &self.rows,
                )
            };
            if faulted {
                self.any_fault.store(true, Ordering::Relaxed);
            }
            stepped += len;
            if self.envs_done.fetch_add(len, Ordering::AcqRel) + len == num_envs {
                self.done.notify();
            }
        }
    }

    /// Waits for every env of the running epoch; returns whether an env panicked in it.
    pub(crate) fn finish_epoch(&self) -> bool {
        let num_envs = self.state.elapsed.len();
        self.done.wait_until(CALLER_PATIENCE, || {
            self.envs_done.load(Ordering::Acquire) == num_envs
        });
        self.any_fault.swap(false, Ordering::Relaxed)
    }

    fn sync_worker(&self) {
        let mut seen = claim_epoch(self.claim.load(Ordering::Acquire));
        loop {
            self.work.wait_until(WORKER_PATIENCE, || {
                self.shutdown.load(Ordering::Acquire)
                    || claim_epoch(self.claim.load(Ordering::Acquire)) != seen
            });
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            seen = claim_epoch(self.claim.load(Ordering::Acquire));
            self.run_epoch_claims(seen);
        }
    }

    // ---- async jobs ----

    /// Publishes jobs `[tail - count, tail)` that the caller has written with `write_job`.
    pub(crate) fn publish_jobs(&self, tail: u64) {
        self.job_tail.store(tail, Ordering::Release);
        self.work.notify();
    }

    /// Writes job `position` before it is published (caller only).
    pub(crate) fn write_job(&self, position: u64, job: u64) {
        self.jobs[(position & self.job_mask) as usize].store(job, Ordering::Relaxed);
    }

    pub(crate) fn claim_job(&self) -> Option<u64> {
        loop {
            let head = self.job_head.load(Ordering::Acquire);
            if head >= self.job_tail.load(Ordering::Acquire) {
                return None;
            }
            // Read before the CAS: the slot cannot be rewritten while job `head` is unclaimed.
            let job = self.jobs[(head & self.job_mask) as usize].load(Ordering::Relaxed);
            if self
                .job_head
                .compare_exchange_weak(head, head + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(job);
            }
        }
    }

    /// Steps a claimed job's chain into rows it reserves, and marks them ready; returns whether an
    /// env of it panicked.
    ///
    /// # Safety
    /// `job` was claimed by this thread (`claim_job`) and not yet run.
    pub(crate) unsafe fn run_job(&self, job: u64, actions: ActionRows) -> bool {
        let (first, len) = job_parts(job);
        let capacity = self.rows.capacity as u64;
        // The ring holds a row for every env in flight (and for the batch the caller holds, whose
        // envs are not in flight), so the rows reserved here are free.
        let start = self.row_tail.fetch_add(u64::from(len), Ordering::Relaxed);
        let run = EnvRun::Chain {
            first,
            len,
            next: &self.next_link,
        };
        // SAFETY: a claimed job's envs are in flight and belong to its claimer alone, as do the
        // rows just reserved; `send` wrote their action rows before publishing the job.
        let faulted = unsafe {
            self.stepper.run(
                run,
                (start % capacity) as usize,
                actions,
                &self.state,
                &self.rows,
            )
        };
        let mut row = (start % capacity) as usize;
        for position in start..start + u64::from(len) {
            self.row_ready[row].store(position + 1, Ordering::Release);
            row = if row + 1 == self.row_ready.len() {
                0
            } else {
                row + 1
            };
        }
        self.done.notify();
        faulted
    }

    /// Whether `row`, at absolute position `position` of the ring, is written (caller only).
    #[inline]
    pub(crate) fn row_ready(&self, row: usize, position: u64) -> bool {
        self.row_ready[row].load(Ordering::Acquire) == position + 1
    }

    fn async_worker(&self, actions: ActionRows) {
        loop {
            self.work.wait_until(WORKER_PATIENCE, || {
                self.shutdown.load(Ordering::Acquire)
                    || self.job_head.load(Ordering::Acquire) < self.job_tail.load(Ordering::Acquire)
            });
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            while let Some(job) = self.claim_job() {
                // SAFETY: claimed just now.
                unsafe { self.run_job(job, actions) };
            }
        }
    }
}

/// A worker thread's body.
pub(crate) fn worker_main<O: Obs>(shared: Arc<Shared<O>>, async_actions: Option<ActionRows>) {
    shared.started.fetch_add(1, Ordering::Release);
    shared.done.notify();
    match async_actions {
        Some(actions) => shared.async_worker(actions),
        None => shared.sync_worker(),
    }
}
