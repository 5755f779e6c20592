//! The trainer's side of the dashboard: a bounded channel the trainer never waits on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};

use hone_telemetry::Event;

/// Events queued for the dashboard before the trainer starts dropping them. The UI drains the
/// queue at least 15 times a second, so only a stalled UI fills it.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A bounded channel of events: the sender never blocks and counts what it had to drop.
pub fn event_channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        EventSender {
            tx,
            dropped: Arc::clone(&dropped),
        },
        EventReceiver { rx, dropped },
    )
}

#[derive(Debug, Clone)]
pub struct EventSender {
    tx: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventSender {
    /// Hands `event` over if there is room, else counts it as dropped. Never waits.
    pub fn send(&self, event: &Event) {
        match self.tx.try_send(event.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The dashboard has closed; the run goes on without it.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What the receiver found.
// A short-lived return value: boxing the event would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Received {
    Event(Event),
    /// Nothing queued now.
    Empty,
    /// Every sender is gone: the run has returned.
    Closed,
}

#[derive(Debug)]
pub struct EventReceiver {
    rx: Receiver<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventReceiver {
    pub fn try_next(&self) -> Received {
        match self.rx.try_recv() {
            Ok(event) => Received::Event(event),
            Err(TryRecvError::Empty) => Received::Empty,
            Err(TryRecvError::Disconnected) => Received::Closed,
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(step: u64) -> Event {
        Event::Finish {
            global_step: step,
            reason: "done".into(),
        }
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let (tx, rx) = event_channel(2);
        for step in 0..5 {
            tx.send(&finish(step));
        }
        assert_eq!(tx.dropped(), 3);
        assert_eq!(rx.dropped(), 3);
        assert_eq!(rx.try_next(), Received::Event(finish(0)));
        assert_eq!(rx.try_next(), Received::Event(finish(1)));
        assert_eq!(rx.try_next(), Received::Empty);
        tx.send(&finish(9));
        drop(tx);
        assert_eq!(rx.try_next(), Received::Event(finish(9)));
        assert_eq!(rx.try_next(), Received::Closed);
    }

    #[test]
    fn sending_to_a_closed_dashboard_is_harmless() {
        let (tx, rx) = event_channel(1);
        drop(rx);
        tx.send(&finish(1));
        assert_eq!(tx.dropped(), 0);
    }
}
