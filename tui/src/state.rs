//! What the dashboard knows about a run, built from its telemetry events. Rendering reads only
//! this (and the UI state), so a snapshot of it fixes the screen.

use std::collections::VecDeque;

use hone_telemetry::{Event, RlhfEvent, RunInfo, UpdateEvent};

/// Updates kept in full; past this the older half is thinned to every second update, so a long
/// run keeps its whole shape in bounded memory while recent windows stay exact.
pub const HISTORY_LIMIT: usize = 20_000;
/// Lines of `hone.log` kept for the log pane.
pub const LOG_LINES: usize = 500;

/// One update as the dashboard keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateRecord {
    pub event: UpdateEvent,
    /// Agent steps this update took (the step count since the previous update).
    pub steps: u64,
}

/// When the health alerts fire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertThresholds {
    /// approx_kl above this is a policy moving too far in one update (CleanRL's `target_kl`
    /// suggestion is 0.015; PPO runs that diverge show 0.05 and more).
    pub max_approx_kl: f64,
    /// Entropy below this fraction of the first update's is a policy that stopped exploring.
    pub entropy_collapse_fraction: f64,
    /// The 10 s SPS below this fraction of the 60 s SPS is a throughput drop.
    pub sps_drop_fraction: f64,
    /// The 60 s window must span this many seconds before an SPS drop is judged.
    pub sps_baseline_min_s: f64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            max_approx_kl: 0.05,
            entropy_collapse_fraction: 0.1,
            sps_drop_fraction: 0.5,
            sps_baseline_min_s: 30.0,
        }
    }
}

/// A health problem worth the researcher's attention.
#[derive(Clone, Debug, PartialEq)]
pub enum Alert {
    /// A metric was NaN or infinite (sticky: the first time each metric went bad).
    NonFinite {
        metric: &'static str,
        step: u64,
    },
    HighKl {
        approx_kl: f64,
        threshold: f64,
        /// Updates so far whose approx_kl exceeded the threshold.
        updates_over: u64,
    },
    /// An RLHF policy drifted from its reference past the run's `alert_kl`.
    KlToReference {
        kl: f64,
        threshold: f64,
        /// RLHF steps so far whose KL exceeded the threshold.
        steps_over: u64,
    },
    EntropyCollapse {
        entropy: f64,
        initial: f64,
    },
    SpsDrop {
        recent: f64,
        baseline: f64,
    },
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::format::{metric, si};
        match self {
            Alert::NonFinite { metric: name, step } => {
                write!(f, "{name} is NaN/Inf (first at step {step})")
            }
            Alert::HighKl {
                approx_kl,
                threshold,
                updates_over,
            } => write!(
                f,
                "approx_kl {} > {} ({updates_over} update{} over)",
                metric(*approx_kl),
                metric(*threshold),
                if *updates_over == 1 { "" } else { "s" }
            ),
            Alert::KlToReference {
                kl,
                threshold,
                steps_over,
            } => write!(
                f,
                "KL to reference {} > alert_kl {} ({steps_over} step{} over)",
                metric(*kl),
                metric(*threshold),
                if *steps_over == 1 { "" } else { "s" }
            ),
            Alert::EntropyCollapse { entropy, initial } => write!(
                f,
                "entropy collapse: {} (started at {})",
                metric(*entropy),
                metric(*initial)
            ),
            Alert::SpsDrop { recent, baseline } => write!(
                f,
                "SPS drop: {} over 10 s vs {} over 60 s",
                si(*recent),
                si(*baseline)
            ),
        }
    }
}

/// Throughput averaged over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Agent steps per second of update time.
    pub sps: f64,
    /// Environment frames per second of env-stepping time.
    pub env_fps: f64,
}

/// Where the run is.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// No event yet.
    Waiting,
    /// Started, no update yet.
    Starting,
    Training,
    Paused,
    /// A stop was asked for; the trainer is finishing its update and checkpointing.
    Stopping,
    Finished(String),
    /// The training process is gone without a finish event (killed, crashed).
    Gone,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Waiting => f.write_str("waiting for events"),
            Phase::Starting => f.write_str("starting"),
            Phase::Training => f.write_str("training"),
            Phase::Paused => f.write_str("paused"),
            Phase::Stopping => f.write_str("stopping (checkpoint)"),
            Phase::Finished(reason) => write!(f, "finished: {reason}"),
            Phase::Gone => f.write_str("process gone (no finish event)"),
        }
    }
}

/// GPU memory of the training process (or of the whole device when the process is not visible,
/// e.g. from inside a container).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuMemory {
    pub used_bytes: u64,
    pub total_bytes: Option<u64>,
    /// true: this process's memory; false: the device's.
    pub per_process: bool,
}

/// What the dashboard measures of the training process itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemStats {
    /// CPU time over wall time, in percent of one core (200 = two cores busy).
    pub cpu_percent: Option<f64>,
    /// Resident memory measured by the dashboard (events' `rss_bytes` take precedence).
    pub rss_bytes: Option<u64>,
    pub gpu: Option<GpuMemory>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DashboardState {
    pub run: Option<RunInfo>,
    updates: VecDeque<UpdateRecord>,
    rlhf: VecDeque<RlhfEvent>,
    /// Global step before the next update (from the start event, then each update).
    previous_step: u64,
    pub last_checkpoint: Option<(u64, String)>,
    pub checkpoints: u64,
    pub finish: Option<(u64, String)>,
    initial_entropy: Option<f64>,
    kl_over: u64,
    /// RLHF steps whose kl_to_reference exceeded their `alert_kl`.
    rlhf_kl_over: u64,
    non_finite: Vec<(&'static str, u64)>,
    pub thresholds: AlertThresholds,
    pub system: SystemStats,
    pub log: VecDeque<String>,
    pub events_seen: u64,
    /// Events the trainer could not hand over because the dashboard fell behind.
    pub dropped_events: u64,
    pub paused: bool,
    pub stopping: bool,
    pub process_gone: bool,
    /// Elapsed run time to show, advanced by the caller between events; `None`: the last event's.
    pub clock_s: Option<f64>,
}

impl DashboardState {
    pub fn new(thresholds: AlertThresholds) -> Self {
        Self {
            thresholds,
            ..Self::default()
        }
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    pub fn apply(&mut self, event: &Event) {
        self.events_seen += 1;
        match event {
            Event::Start(info) => {
                // A resumed run restarts from its checkpoint: what came after it is gone from
                // metrics.jsonl too.
                let from = info.global_step;
                self.updates.retain(|r| r.event.global_step <= from);
                self.rlhf.retain(|r| r.step <= from);
                self.previous_step = from;
                self.run = Some(info.clone());
                self.finish = None;
                self.process_gone = false;
            }
            Event::Update(update) => self.apply_update(update),
            Event::Rlhf(step) => self.apply_rlhf(step),
            Event::Checkpoint { global_step, path } => {
                self.checkpoints += 1;
                self.last_checkpoint = Some((*global_step, path.clone()));
            }
            Event::Finish {
                global_step,
                reason,
            } => self.finish = Some((*global_step, reason.clone())),
        }
    }

    fn apply_update(&mut self, update: &UpdateEvent) {
        let steps = update.global_step.saturating_sub(self.previous_step);
        self.previous_step = update.global_step;
        let losses = &update.losses;
        let episodes = &update.episodes;
        let values = [
            ("policy_loss", Some(losses.policy_loss)),
            ("value_loss", Some(losses.value_loss)),
            ("entropy", Some(losses.entropy)),
            ("approx_kl", Some(losses.approx_kl)),
            ("old_approx_kl", Some(losses.old_approx_kl)),
            ("clipfrac", Some(losses.clipfrac)),
            ("explained_variance", Some(losses.explained_variance)),
            ("learning_rate", Some(losses.learning_rate)),
            ("grad_norm", Some(losses.grad_norm)),
            ("sps", Some(update.sps)),
            ("env_fps", Some(update.env_fps)),
            ("return_mean", episodes.return_mean),
            ("return_min", episodes.return_min),
            ("return_max", episodes.return_max),
            ("length_mean", episodes.length_mean),
        ];
        self.note_non_finite(&values, update.global_step);
        if self.initial_entropy.is_none() && losses.entropy.is_finite() {
            self.initial_entropy = Some(losses.entropy);
        }
        if losses.approx_kl > self.thresholds.max_approx_kl {
            self.kl_over += 1;
        }
        self.updates.push_back(UpdateRecord {
            event: update.clone(),
            steps,
        });
        thin(&mut self.updates);
    }

    fn apply_rlhf(&mut self, step: &RlhfEvent) {
        let values = [
            ("reward_mean", Some(step.reward_mean)),
            ("baseline_reward_mean", step.baseline_reward_mean),
            ("kl_to_reference", Some(step.kl_to_reference)),
            ("response_length_mean", Some(step.response_length_mean)),
            ("tokens_per_s", Some(step.tokens_per_s)),
            ("policy_loss", step.policy_loss),
        ];
        self.note_non_finite(&values, step.step);
        if rlhf_kl_exceeds(step) {
            self.rlhf_kl_over += 1;
        }
        self.rlhf.push_back(step.clone());
        thin(&mut self.rlhf);
    }

    fn note_non_finite(&mut self, values: &[(&'static str, Option<f64>)], step: u64) {
        for &(name, value) in values {
            let bad = value.is_some_and(|v| !v.is_finite());
            if bad && !self.non_finite.iter().any(|(n, _)| *n == name) {
                self.non_finite.push((name, step));
            }
        }
    }

    /// Appends lines of `hone.log`, keeping the last [`LOG_LINES`].
    pub fn push_log_lines(&mut self, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            if self.log.len() == LOG_LINES {
                self.log.pop_front();
            }
            self.log.push_back(line);
        }
    }

    pub fn updates(&self) -> &VecDeque<UpdateRecord> {
        &self.updates
    }

    pub fn rlhf_steps(&self) -> &VecDeque<RlhfEvent> {
        &self.rlhf
    }

    pub fn last_update(&self) -> Option<&UpdateEvent> {
        self.updates.back().map(|r| &r.event)
    }

    pub fn last_rlhf(&self) -> Option<&RlhfEvent> {
        self.rlhf.back()
    }

    /// Whether this is an RLHF run (its steps are RLHF events).
    pub fn is_rlhf(&self) -> bool {
        self.rlhf.len() > self.updates.len()
    }

    /// Elapsed run time at the last event.
    pub fn last_elapsed_s(&self) -> Option<f64> {
        let update = self.last_update().map(|u| u.elapsed_s);
        let rlhf = self.last_rlhf().map(|r| r.elapsed_s);
        match (update, rlhf) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn elapsed_s(&self) -> Option<f64> {
        self.clock_s.or(self.last_elapsed_s())
    }

    pub fn phase(&self) -> Phase {
        if let Some((_, reason)) = &self.finish {
            Phase::Finished(reason.clone())
        } else if self.process_gone {
            Phase::Gone
        } else if self.stopping {
            Phase::Stopping
        } else if self.paused {
            Phase::Paused
        } else if self.run.is_none() && self.events_seen == 0 {
            Phase::Waiting
        } else if self.updates.is_empty() && self.rlhf.is_empty() {
            Phase::Starting
        } else {
            Phase::Training
        }
    }

    /// Throughput of the last update.
    pub fn rates_now(&self) -> Option<Rates> {
        self.updates.back().map(|r| Rates {
            sps: r.event.sps,
            env_fps: r.event.env_fps,
        })
    }

    /// Throughput over the updates that ended within `window_s` seconds of the last one:
    /// total steps over total time (the time of an update is its steps over its rate), which
    /// weighs each update by its length and leaves pauses out.
    pub fn rates_over(&self, window_s: f64) -> Option<Rates> {
        let last = self.updates.back()?.event.elapsed_s;
        let (mut steps, mut update_s, mut env_s) = (0.0, 0.0, 0.0);
        for record in self
            .updates
            .iter()
            .rev()
            .take_while(|r| last - r.event.elapsed_s < window_s)
        {
            let n = record.steps as f64;
            if n == 0.0 {
                continue;
            }
            let (sps, fps) = (record.event.sps, record.event.env_fps);
            if sps > 0.0 && sps.is_finite() && fps > 0.0 && fps.is_finite() {
                steps += n;
                update_s += n / sps;
                env_s += n / fps;
            }
        }
        (steps > 0.0).then(|| Rates {
            sps: steps / update_s,
            env_fps: steps / env_s,
        })
    }

    /// The time span of the updates in a window (seconds between its first and last update).
    fn window_span_s(&self, window_s: f64) -> f64 {
        let Some(last) = self.updates.back().map(|r| r.event.elapsed_s) else {
            return 0.0;
        };
        let first = self
            .updates
            .iter()
            .rev()
            .take_while(|r| last - r.event.elapsed_s < window_s)
            .last()
            .map_or(last, |r| r.event.elapsed_s);
        last - first
    }

    /// Steps done and the total, in the unit of the run (agent steps, or RLHF steps).
    pub fn progress(&self) -> Option<(u64, u64)> {
        let total = self.run.as_ref()?.total_steps;
        let done = if self.is_rlhf() {
            self.last_rlhf().map_or(0, |r| r.step)
        } else {
            self.last_update()
                .map_or(self.previous_step, |u| u.global_step)
        };
        Some((done.min(total), total))
    }

    /// Seconds to the end of the run at the recent rate (PPO: the 10 s SPS; RLHF: steps per
    /// second over the last minute).
    pub fn eta_s(&self) -> Option<f64> {
        if self.finish.is_some() {
            return None;
        }
        let (done, total) = self.progress()?;
        let remaining = total.saturating_sub(done) as f64;
        let rate = if self.is_rlhf() {
            self.rlhf_steps_per_s(60.0)?
        } else {
            self.rates_over(10.0)?.sps
        };
        (rate > 0.0 && rate.is_finite()).then(|| remaining / rate)
    }

    /// RLHF steps per second of elapsed time over the window.
    fn rlhf_steps_per_s(&self, window_s: f64) -> Option<f64> {
        let last = self.rlhf.back()?;
        let first = self
            .rlhf
            .iter()
            .rev()
            .take_while(|r| last.elapsed_s - r.elapsed_s <= window_s)
            .last()?;
        if first.step == last.step {
            // One step in the window: its own rate since the run's start.
            return (last.elapsed_s > 0.0).then(|| last.step as f64 / last.elapsed_s);
        }
        let dt = last.elapsed_s - first.elapsed_s;
        (dt > 0.0).then(|| (last.step - first.step) as f64 / dt)
    }

    /// Resident memory: the latest event's, else the dashboard's own measurement.
    pub fn rss_bytes(&self) -> Option<u64> {
        let from_event = if self.is_rlhf() {
            self.last_rlhf().and_then(|r| r.rss_bytes)
        } else {
            self.last_update().and_then(|u| u.rss_bytes)
        };
        from_event.or(self.system.rss_bytes)
    }

    /// GPU memory: the RLHF event's when it carries one, else the dashboard's measurement.
    pub fn gpu_memory(&self) -> Option<GpuMemory> {
        let from_event = self.last_rlhf().and_then(|r| r.gpu_memory_bytes);
        match from_event {
            Some(used) => Some(GpuMemory {
                used_bytes: used,
                total_bytes: None,
                per_process: true,
            }),
            None => self.system.gpu,
        }
    }

    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .non_finite
            .iter()
            .map(|&(metric, step)| Alert::NonFinite { metric, step })
            .collect();
        if let Some(last) = self.last_rlhf()
            && let Some(threshold) = last.alert_kl
            && rlhf_kl_exceeds(last)
        {
            alerts.push(Alert::KlToReference {
                kl: last.kl_to_reference,
                threshold,
                steps_over: self.rlhf_kl_over,
            });
        }
        let t = &self.thresholds;
        if let Some(last) = self.last_update() {
            let losses = &last.losses;
            if losses.approx_kl > t.max_approx_kl {
                alerts.push(Alert::HighKl {
                    approx_kl: losses.approx_kl,
                    threshold: t.max_approx_kl,
                    updates_over: self.kl_over,
                });
            }
            if let Some(initial) = self.initial_entropy {
                // Gaussian entropies can be negative and have no natural floor: judge only
                // positive starts (categorical policies, and Gaussians that start wide).
                if initial > 0.0 && losses.entropy < t.entropy_collapse_fraction * initial {
                    alerts.push(Alert::EntropyCollapse {
                        entropy: losses.entropy,
                        initial,
                    });
                }
            }
            let judged = self.finish.is_none() && self.window_span_s(60.0) >= t.sps_baseline_min_s;
            if let (true, Some(recent), Some(baseline)) =
                (judged, self.rates_over(10.0), self.rates_over(60.0))
                && recent.sps < t.sps_drop_fraction * baseline.sps
            {
                alerts.push(Alert::SpsDrop {
                    recent: recent.sps,
                    baseline: baseline.sps,
                });
            }
        }
        alerts
    }
}

/// Whether an RLHF step's KL to the reference is above the run's alert threshold.
pub fn rlhf_kl_exceeds(step: &RlhfEvent) -> bool {
    step.alert_kl.is_some_and(|t| step.kl_to_reference > t)
}

fn thin<T>(history: &mut VecDeque<T>) {
    if history.len() <= HISTORY_LIMIT {
        return;
    }
    let half = history.len() / 2;
    let mut index = 0;
    history.retain(|_| {
        let keep = index >= half || index % 2 == 0;
        index += 1;
        keep
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hone_telemetry::{EpisodeStats, LossStats, PhaseTiming};

    pub fn start(total: u64) -> Event {
        Event::Start(RunInfo {
            run: "CartPole-v1__ppo__1__1700000000".into(),
            algorithm: "ppo".into(),
            target: "CartPole-v1".into(),
            device: "cpu".into(),
            total_steps: total,
            global_step: 0,
            started_at: 1_700_000_000.0,
            pid: 4242,
        })
    }

    /// Update `n` of 512 steps taking `seconds`, at the rate that implies.
    pub fn update(n: u64, elapsed_s: f64, seconds: f64) -> UpdateEvent {
        UpdateEvent {
            update: n,
            global_step: n * 512,
            elapsed_s,
            sps: 512.0 / seconds,
            env_fps: 2.0 * 512.0 / seconds,
            episodes: EpisodeStats {
                count: 4,
                return_mean: Some(20.0 + n as f64),
                return_min: Some(10.0 + n as f64),
                return_max: Some(40.0 + n as f64),
                length_mean: Some(20.0 + n as f64),
            },
            losses: LossStats {
                policy_loss: -0.01,
                value_loss: 10.0,
                entropy: 0.69,
                approx_kl: 0.004,
                old_approx_kl: 0.005,
                clipfrac: 0.1,
                explained_variance: 0.2,
                learning_rate: 2.5e-4,
                grad_norm: 0.5,
            },
            timing: PhaseTiming {
                env_step_s: seconds / 2.0,
                inference_s: seconds / 4.0,
                update_s: seconds / 4.0,
            },
            rss_bytes: Some(300 << 20),
        }
    }

    /// A run of `n` updates, one a second at 512 SPS.
    fn steady(n: u64) -> DashboardState {
        let mut state = DashboardState::new(AlertThresholds::default());
        state.apply(&start(1_000_000));
        for i in 1..=n {
            state.apply(&Event::Update(update(i, i as f64, 1.0)));
        }
        state
    }

    #[test]
    fn windowed_rates_weigh_updates_by_their_time() {
        let mut state = steady(50);
        // Then a quarter of the speed: 5 updates of 512 steps in 4 s each (128 SPS), ending
        // at 70 s.
        for i in 51..=55 {
            state.apply(&Event::Update(update(i, 50.0 + 4.0 * (i - 50) as f64, 4.0)));
        }
        let now = state.rates_now().unwrap();
        assert_eq!(now.sps, 128.0);
        // The last 10 s hold the updates ending at 70, 66 and 62: 3 × 512 steps in 12 s.
        let ten = state.rates_over(10.0).unwrap();
        assert!((ten.sps - 128.0).abs() < 1e-9, "{ten:?}");
        assert!((ten.env_fps - 256.0).abs() < 1e-9, "{ten:?}");
        // The last 60 s: updates ending at 11..=50 (40 × 1 s) and the five slow ones (20 s).
        let sixty = state.rates_over(60.0).unwrap();
        let expected = 45.0 * 512.0 / (40.0 + 20.0);
        assert!(
            (sixty.sps - expected).abs() < 1e-9,
            "{sixty:?} vs {expected}"
        );
        // An arithmetic mean of the rates would say otherwise.
        let naive = (40.0 * 512.0 + 5.0 * 128.0) / 45.0;
        assert!((sixty.sps - naive).abs() > 50.0);
    }

    #[test]
    fn a_pause_between_updates_does_not_lower_the_rates() {
        let mut state = steady(20);
        // 100 s paused, then one more update at the usual speed.
        state.apply(&Event::Update(update(21, 121.0, 1.0)));
        assert_eq!(state.rates_over(10.0).unwrap().sps, 512.0);
        assert_eq!(state.rates_over(200.0).unwrap().sps, 512.0);
    }

    #[test]
    fn eta_is_remaining_steps_over_the_ten_second_sps() {
        let state = steady(100);
        let (done, total) = state.progress().unwrap();
        assert_eq!((done, total), (51_200, 1_000_000));
        let eta = state.eta_s().unwrap();
        assert!(
            (eta - (1_000_000.0 - 51_200.0) / 512.0).abs() < 1e-6,
            "{eta}"
        );

        let mut finished = state.clone();
        finished.apply(&Event::Finish {
            global_step: 51_200,
            reason: "interrupted".into(),
        });
        assert_eq!(finished.eta_s(), None);
        assert_eq!(finished.phase(), Phase::Finished("interrupted".into()));
    }

    #[test]
    fn eta_of_a_resumed_run_counts_from_the_resume_step() {
        let mut state = DashboardState::default();
        let Event::Start(mut info) = start(20_480) else {
            unreachable!()
        };
        info.global_step = 10_240;
        state.apply(&Event::Start(info));
        assert_eq!(state.progress(), Some((10_240, 20_480)));
        assert_eq!(state.eta_s(), None, "no rate before the first update");
        state.apply(&Event::Update(update(21, 30.0, 2.0)));
        // 512 steps since the resume point at 256 SPS; 9,728 steps to go.
        assert_eq!(state.updates()[0].steps, 512);
        assert_eq!(state.eta_s(), Some(9_728.0 / 256.0));
    }

    #[test]
    fn a_resume_drops_what_came_after_its_checkpoint() {
        let mut state = steady(10);
        state.apply(&Event::Finish {
            global_step: 5120,
            reason: "interrupted".into(),
        });
        let Event::Start(mut info) = start(1_000_000) else {
            unreachable!()
        };
        info.global_step = 8 * 512;
        state.apply(&Event::Start(info));
        assert_eq!(state.updates().len(), 8);
        assert_eq!(state.phase(), Phase::Training, "the kept updates");
        state.apply(&Event::Update(update(9, 9.0, 1.0)));
        assert_eq!(state.updates().back().unwrap().steps, 512);
        assert_eq!(state.finish, None);
    }

    #[test]
    fn no_alerts_on_a_healthy_run() {
        assert_eq!(steady(100).alerts(), vec![]);
    }

    #[test]
    fn non_finite_metrics_raise_a_sticky_alert_naming_them() {
        let mut state = steady(3);
        let mut bad = update(4, 4.0, 1.0);
        bad.losses.value_loss = f64::NAN;
        bad.episodes.return_mean = Some(f64::INFINITY);
        state.apply(&Event::Update(bad));
        state.apply(&Event::Update(update(5, 5.0, 1.0)));
        assert_eq!(
            state.alerts(),
            vec![
                Alert::NonFinite {
                    metric: "value_loss",
                    step: 2048
                },
                Alert::NonFinite {
                    metric: "return_mean",
                    step: 2048
                },
            ]
        );
    }

    #[test]
    fn kl_above_the_threshold_is_an_alert_while_it_lasts() {
        let mut state = steady(3);
        let mut hot = update(4, 4.0, 1.0);
        hot.losses.approx_kl = 0.08;
        state.apply(&Event::Update(hot.clone()));
        hot.update = 5;
        hot.global_step = 5 * 512;
        state.apply(&Event::Update(hot));
        assert_eq!(
            state.alerts(),
            vec![Alert::HighKl {
                approx_kl: 0.08,
                threshold: 0.05,
                updates_over: 2
            }]
        );
        state.apply(&Event::Update(update(6, 6.0, 1.0)));
        assert_eq!(state.alerts(), vec![]);
    }

    #[test]
    fn entropy_below_a_tenth_of_its_start_is_a_collapse() {
        let mut state = steady(3);
        let mut low = update(4, 4.0, 1.0);
        low.losses.entropy = 0.07;
        state.apply(&Event::Update(low.clone()));
        assert_eq!(state.alerts(), vec![], "0.07 is just above 0.069");
        low.losses.entropy = 0.05;
        state.apply(&Event::Update(low));
        assert_eq!(
            state.alerts(),
            vec![Alert::EntropyCollapse {
                entropy: 0.05,
                initial: 0.69
            }]
        );
    }

    #[test]
    fn negative_gaussian_entropies_are_not_judged() {
        let mut state = DashboardState::default();
        state.apply(&start(1000));
        for (i, entropy) in [(1, -0.5), (2, -3.0)] {
            let mut u = update(i, i as f64, 1.0);
            u.losses.entropy = entropy;
            state.apply(&Event::Update(u));
        }
        assert_eq!(state.alerts(), vec![]);
    }

    #[test]
    fn sps_drop_needs_a_baseline_and_a_real_drop() {
        // 25 s of history is too short to judge.
        let mut short = steady(20);
        for i in 21..=22 {
            short.apply(&Event::Update(update(i, 20.0 + 5.0 * (i - 20) as f64, 5.0)));
        }
        assert_eq!(short.alerts(), vec![]);

        let mut state = steady(50);
        for i in 51..=53 {
            state.apply(&Event::Update(update(i, 50.0 + 5.0 * (i - 50) as f64, 5.0)));
        }
        let alerts = state.alerts();
        let [Alert::SpsDrop { recent, baseline }] = alerts[..] else {
            panic!("{alerts:?}")
        };
        assert!((recent - 102.4).abs() < 1e-9, "{recent}");
        assert!(baseline > 2.0 * recent);

        // Back to speed: a few fast updates lift the 10 s rate over half the 60 s one.
        for i in 54..=63 {
            state.apply(&Event::Update(update(i, 65.0 + (i - 53) as f64, 1.0)));
        }
        assert_eq!(state.alerts(), vec![]);
    }

    #[test]
    fn phases_follow_the_events_and_the_controls() {
        let mut state = DashboardState::default();
        assert_eq!(state.phase(), Phase::Waiting);
        state.apply(&start(1000));
        assert_eq!(state.phase(), Phase::Starting);
        state.apply(&Event::Update(update(1, 1.0, 1.0)));
        assert_eq!(state.phase(), Phase::Training);
        state.paused = true;
        assert_eq!(state.phase(), Phase::Paused);
        state.stopping = true;
        assert_eq!(state.phase(), Phase::Stopping);
        state.process_gone = true;
        assert_eq!(state.phase(), Phase::Gone);
        state.apply(&Event::Checkpoint {
            global_step: 512,
            path: "runs/x/checkpoints/step-000000000512".into(),
        });
        state.apply(&Event::Finish {
            global_step: 512,
            reason: "interrupted".into(),
        });
        assert_eq!(state.phase(), Phase::Finished("interrupted".into()));
        assert_eq!(state.checkpoints, 1);
        assert_eq!(state.last_checkpoint.as_ref().unwrap().0, 512);
    }

    #[test]
    fn long_histories_are_thinned_but_keep_their_ends() {
        let mut state = DashboardState::default();
        state.apply(&start(u64::MAX));
        let n = HISTORY_LIMIT as u64 + 1;
        for i in 1..=n {
            state.apply(&Event::Update(update(i, i as f64, 1.0)));
        }
        let updates = state.updates();
        assert!(updates.len() <= HISTORY_LIMIT, "{}", updates.len());
        assert!(updates.len() > HISTORY_LIMIT * 2 / 3);
        assert_eq!(updates.front().unwrap().event.update, 1);
        assert_eq!(updates.back().unwrap().event.update, n);
        // The recent half is untouched, so the windows are exact.
        assert_eq!(state.rates_over(10.0).unwrap().sps, 512.0);
        assert!(
            updates
                .iter()
                .zip(updates.iter().skip(1))
                .all(|(a, b)| a.event.update < b.event.update)
        );
    }

    #[test]
    fn rlhf_steps_drive_progress_eta_and_alerts() {
        let mut state = DashboardState::default();
        let Event::Start(mut info) = start(100) else {
            unreachable!()
        };
        info.algorithm = "remax".into();
        state.apply(&Event::Start(info));
        for step in 1..=10 {
            state.apply(&Event::Rlhf(RlhfEvent {
                step,
                elapsed_s: 2.0 * step as f64,
                reward_mean: 0.1 * step as f64,
                kl_to_reference: 0.01,
                response_length_mean: 40.0,
                tokens_per_s: 800.0,
                ..Default::default()
            }));
        }
        assert!(state.is_rlhf());
        assert_eq!(state.progress(), Some((10, 100)));
        // Half a step a second: 90 steps in 180 s.
        assert!((state.eta_s().unwrap() - 180.0).abs() < 1e-9);
        state.apply(&Event::Rlhf(RlhfEvent {
            step: 11,
            elapsed_s: 22.0,
            kl_to_reference: f64::NAN,
            ..Default::default()
        }));
        assert_eq!(
            state.alerts(),
            vec![Alert::NonFinite {
                metric: "kl_to_reference",
                step: 11
            }]
        );
    }

    #[test]
    fn rlhf_kl_above_the_runs_alert_kl_is_an_alert_while_it_lasts() {
        let mut state = DashboardState::default();
        state.apply(&start(100));
        let step = |n: u64, kl: f64, alert_kl: Option<f64>| {
            Event::Rlhf(RlhfEvent {
                step: n,
                elapsed_s: n as f64,
                kl_to_reference: kl,
                alert_kl,
                ..Default::default()
            })
        };
        // No threshold set: any KL is quiet.
        state.apply(&step(1, 50.0, None));
        assert_eq!(state.alerts(), vec![]);
        // At the threshold is not over it.
        state.apply(&step(2, 0.5, Some(0.5)));
        assert_eq!(state.alerts(), vec![]);
        state.apply(&step(3, 0.75, Some(0.5)));
        state.apply(&step(4, 0.625, Some(0.5)));
        let alerts = state.alerts();
        assert_eq!(
            alerts,
            vec![Alert::KlToReference {
                kl: 0.625,
                threshold: 0.5,
                steps_over: 2
            }]
        );
        assert!(alerts[0].to_string().contains("alert_kl"), "{}", alerts[0]);
        state.apply(&step(5, 0.25, Some(0.5)));
        assert_eq!(state.alerts(), vec![]);
    }
}
