//! The state the calling thread shares with the pool's worker threads, and the workers' loops.
//!
//! Sync mode: a step is an *epoch*. The caller publishes the actions and a claim word
//! (epoch | chunk count | next chunk); every thread, the caller included, claims contiguous chunks
//! of envs with a compare-and-swap and steps each whole chunk, then counts it done. The caller
//! waits for the count. One atomic per chunk, none per env.
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

/// What the threads of a sync epoch read once they have claimed a chunk.
#[derive(Clone, Copy)]
pub(crate) struct SyncCommand {
    pub actions: ActionRows,
    pub chunk_len: usize,
    pub num_envs: usize,
}

/// The claim word: epoch (32 bits) | chunk count (16) | next unclaimed chunk (16).
pub(crate) const MAX_CHUNKS: usize = u16::MAX as usize;

fn claim_word(epoch: u32, chunks: usize, next: usize) -> u64 {
    (u64::from(epoch) << 32) | ((chunks as u64) << 16) | next as u64
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

pub(crate) struct Shared {
    pub stepper: Box<dyn Stepper>,
    pub state: EnvState,
    pub rows: Rows,
    shutdown: AtomicBool,
    /// Workers wait here for work.
    pub work: Signal,
    /// The caller waits here for results.
    pub done: Signal,

    claim: CachePadded<AtomicU64>,
    chunks_done: CachePadded<AtomicUsize>,
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

impl Shared {
    pub(crate) fn new(
        stepper: Box<dyn Stepper>,
        state: EnvState,
        rows: Rows,
        async_int_len: usize,
        async_float_len: usize,
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
            work: Signal::default(),
            done: Signal::default(),
            claim: CachePadded(AtomicU64::new(claim_word(0, 0, 0))),
            chunks_done: CachePadded(AtomicUsize::new(0)),
            command: SharedBuf::new(
                1,
                SyncCommand {
                    actions: ActionRows::None,
                    chunk_len: 1,
                    num_envs,
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

    pub(crate) fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.work.notify();
    }

    // ---- sync epochs ----

    /// Starts epoch `epoch` over `chunks` chunks.
    ///
    /// # Safety
    /// No epoch is in progress (the previous one has been waited for).
    pub(crate) unsafe fn start_epoch(&self, epoch: u32, chunks: usize, command: SyncCommand) {
        debug_assert!(chunks <= MAX_CHUNKS);
        // SAFETY: no epoch is in progress, so no thread reads the command.
        unsafe { *self.command.get_mut(0) = command };
        self.chunks_done.store(0, Ordering::Relaxed);
        self.claim
            .store(claim_word(epoch, chunks, 0), Ordering::Release);
        self.work.notify();
    }

    /// Claims and steps chunks of `epoch` until none is left.
    pub(crate) fn run_epoch_chunks(&self, epoch: u32) {
        loop {
            let word = self.claim.load(Ordering::Acquire);
            let chunks = ((word >> 16) & 0xffff) as usize;
            let next = (word & 0xffff) as usize;
            if claim_epoch(word) != epoch || next >= chunks {
                return;
            }
            if self
                .claim
                .compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // SAFETY: the epoch cannot end before this claimed chunk is counted done, and the
            // caller writes the command only between epochs.
            let command = unsafe { self.command.read(0) };
            let start = next * command.chunk_len;
            let end = (start + command.chunk_len).min(command.num_envs);
            // SAFETY: the chunk is ours alone (claimed once by the CAS) and its action rows are
            // valid until the epoch ends, which it cannot before we count the chunk done.
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
            if self.chunks_done.fetch_add(1, Ordering::AcqRel) + 1 == chunks {
                self.done.notify();
            }
        }
    }

    /// Waits for every chunk of the running epoch; returns whether an env panicked in it.
    pub(crate) fn finish_epoch(&self, chunks: usize) -> bool {
        self.done.wait_until(CALLER_PATIENCE, || {
            self.chunks_done.load(Ordering::Acquire) == chunks
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
            self.run_epoch_chunks(seen);
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

    /// Steps a claimed job's chain into rows it reserves, and marks them ready.
    ///
    /// # Safety
    /// `job` was claimed by this thread (`claim_job`) and not yet run.
    pub(crate) unsafe fn run_job(&self, job: u64, actions: ActionRows) {
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
        unsafe {
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
pub(crate) fn worker_main(shared: Arc<Shared>, async_actions: Option<ActionRows>) {
    match async_actions {
        Some(actions) => shared.async_worker(actions),
        None => shared.sync_worker(),
    }
}
