//! The dashboard's own state (tab, plotted metric, window, overlays) and what keys do to it.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Whether the dashboard can steer the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inside `hone train`: keys pause, checkpoint and stop the trainer.
    Train,
    /// `hone monitor`: read-only.
    Monitor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Losses,
    Rlhf,
    Log,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Overview, Tab::Losses, Tab::Rlhf, Tab::Log];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Losses => "Losses",
            Tab::Rlhf => "RLHF",
            Tab::Log => "Log",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }

    fn cycled(self, by: isize) -> Tab {
        let n = Self::ALL.len() as isize;
        Self::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// The metric of the Overview chart (cycled with ←/→).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    EpisodicReturn,
    EpisodeLength,
    PolicyLoss,
    ValueLoss,
    Entropy,
    ApproxKl,
    ClipFrac,
    ExplainedVariance,
    LearningRate,
    GradNorm,
    Sps,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::EpisodicReturn,
        Metric::EpisodeLength,
        Metric::PolicyLoss,
        Metric::ValueLoss,
        Metric::Entropy,
        Metric::ApproxKl,
        Metric::ClipFrac,
        Metric::ExplainedVariance,
        Metric::LearningRate,
        Metric::GradNorm,
        Metric::Sps,
    ];
}

/// The metric of the RLHF tab's main chart (cycled with ←/→).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RlhfMetric {
    Reward,
    KlToReference,
    ResponseLength,
    TokensPerS,
    PolicyLoss,
}

impl RlhfMetric {
    pub const ALL: [RlhfMetric; 5] = [
        RlhfMetric::Reward,
        RlhfMetric::KlToReference,
        RlhfMetric::ResponseLength,
        RlhfMetric::TokensPerS,
        RlhfMetric::PolicyLoss,
    ];
}

fn cycle<T: Copy + PartialEq>(all: &[T], current: T, by: isize) -> T {
    let i = all.iter().position(|&m| m == current).unwrap_or(0) as isize;
    all[(i + by).rem_euclid(all.len() as isize) as usize]
}

/// The span of run time the charts show, narrowed with `-` and widened with `+`.
pub const WINDOWS_S: [Option<f64>; 5] = [Some(60.0), Some(300.0), Some(900.0), Some(3600.0), None];

/// What the caller must do after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Leave the dashboard.
    Quit,
    /// Ask the trainer to stop after this update, with a checkpoint.
    Stop,
    TogglePause,
    Checkpoint,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UiState {
    pub mode: Mode,
    pub tab: Tab,
    pub metric: Metric,
    pub rlhf_metric: RlhfMetric,
    /// Index into [`WINDOWS_S`].
    pub window: usize,
    pub frozen: bool,
    pub help: bool,
    pub confirm_quit: bool,
    /// The training process has ended (or, in `hone train`, the trainer returned).
    pub run_over: bool,
    /// A short note for the status line ("checkpoint requested").
    pub message: Option<String>,
}

impl UiState {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            tab: Tab::Overview,
            metric: Metric::EpisodicReturn,
            rlhf_metric: RlhfMetric::Reward,
            window: WINDOWS_S.len() - 1,
            frozen: false,
            help: false,
            confirm_quit: false,
            run_over: false,
            message: None,
        }
    }

    pub fn window_s(&self) -> Option<f64> {
        WINDOWS_S[self.window.min(WINDOWS_S.len() - 1)]
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'));
        if ctrl_c {
            // Raw mode turns Ctrl-C into a key: it means "quit, I am sure".
            return self.quit_confirmed();
        }
        if self.confirm_quit {
            return match key.code {
                KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => self.quit_confirmed(),
                _ => {
                    self.confirm_quit = false;
                    self.message = Some("still training".into());
                    Action::None
                }
            };
        }
        if self.help && matches!(key.code, KeyCode::Esc | KeyCode::Char('?')) {
            self.help = false;
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') => {
                if self.mode == Mode::Train && !self.run_over {
                    self.confirm_quit = true;
                    Action::None
                } else {
                    Action::Quit
                }
            }
            KeyCode::Char('p') => self.steer(Action::TogglePause),
            KeyCode::Char('s') => self.steer(Action::Checkpoint),
            KeyCode::Char('f') => {
                self.frozen = !self.frozen;
                Action::None
            }
            KeyCode::Char('?') => {
                self.help = true;
                Action::None
            }
            KeyCode::Tab => {
                self.tab = self.tab.cycled(1);
                Action::None
            }
            KeyCode::BackTab => {
                self.tab = self.tab.cycled(-1);
                Action::None
            }
            KeyCode::Right | KeyCode::Left => {
                let by = if key.code == KeyCode::Right { 1 } else { -1 };
                match self.tab {
                    Tab::Rlhf => self.rlhf_metric = cycle(&RlhfMetric::ALL, self.rlhf_metric, by),
                    _ => self.metric = cycle(&Metric::ALL, self.metric, by),
                }
                Action::None
            }
            KeyCode::Char('+' | '=') => {
                self.window = (self.window + 1).min(WINDOWS_S.len() - 1);
                Action::None
            }
            KeyCode::Char('-' | '_') => {
                self.window = self.window.saturating_sub(1);
                Action::None
            }
            _ => Action::None,
        }
    }

    fn quit_confirmed(&mut self) -> Action {
        self.confirm_quit = false;
        if self.mode == Mode::Train && !self.run_over {
            self.message = Some("stopping after this update, then a checkpoint".into());
            Action::Stop
        } else {
            Action::Quit
        }
    }

    fn steer(&mut self, action: Action) -> Action {
        match (self.mode, self.run_over) {
            (Mode::Monitor, _) => {
                self.message = Some("monitor is read-only: p and s work in `hone train`".into());
                Action::None
            }
            (Mode::Train, true) => {
                self.message = Some("the run is over".into());
                Action::None
            }
            (Mode::Train, false) => action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn quitting_training_asks_first_and_then_stops() {
        let mut ui = UiState::new(Mode::Train);
        assert_eq!(ui.handle_key(key(KeyCode::Char('q'))), Action::None);
        assert!(ui.confirm_quit);
        assert_eq!(ui.handle_key(key(KeyCode::Char('n'))), Action::None);
        assert!(!ui.confirm_quit);
        ui.handle_key(key(KeyCode::Char('q')));
        assert_eq!(ui.handle_key(key(KeyCode::Char('y'))), Action::Stop);
        assert!(!ui.confirm_quit);
    }

    #[test]
    fn ctrl_c_is_a_confirmed_quit() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(UiState::new(Mode::Train).handle_key(ctrl_c), Action::Stop);
        assert_eq!(UiState::new(Mode::Monitor).handle_key(ctrl_c), Action::Quit);
        let mut over = UiState::new(Mode::Train);
        over.run_over = true;
        assert_eq!(over.handle_key(ctrl_c), Action::Quit);
    }

    #[test]
    fn a_finished_run_or_a_monitor_quits_at_once() {
        let mut monitor = UiState::new(Mode::Monitor);
        assert_eq!(monitor.handle_key(key(KeyCode::Char('q'))), Action::Quit);
        let mut over = UiState::new(Mode::Train);
        over.run_over = true;
        assert_eq!(over.handle_key(key(KeyCode::Char('q'))), Action::Quit);
    }

    #[test]
    fn steering_keys_work_only_while_training() {
        let mut train = UiState::new(Mode::Train);
        assert_eq!(
            train.handle_key(key(KeyCode::Char('p'))),
            Action::TogglePause
        );
        assert_eq!(
            train.handle_key(key(KeyCode::Char('s'))),
            Action::Checkpoint
        );
        let mut monitor = UiState::new(Mode::Monitor);
        assert_eq!(monitor.handle_key(key(KeyCode::Char('p'))), Action::None);
        assert_eq!(monitor.handle_key(key(KeyCode::Char('s'))), Action::None);
        assert!(monitor.message.as_deref().unwrap().contains("read-only"));
    }

    #[test]
    fn view_keys_cycle_and_clamp() {
        let mut ui = UiState::new(Mode::Monitor);
        ui.handle_key(key(KeyCode::Left));
        assert_eq!(
            ui.metric,
            Metric::Sps,
            "left from the first wraps to the last"
        );
        ui.handle_key(key(KeyCode::Right));
        ui.handle_key(key(KeyCode::Right));
        assert_eq!(ui.metric, Metric::EpisodeLength);

        for _ in 0..4 {
            ui.handle_key(key(KeyCode::Tab));
        }
        assert_eq!(ui.tab, Tab::Overview);
        ui.handle_key(key(KeyCode::BackTab));
        assert_eq!(ui.tab, Tab::Log);
        ui.handle_key(key(KeyCode::BackTab));
        assert_eq!(ui.tab, Tab::Rlhf);
        ui.handle_key(key(KeyCode::Right));
        assert_eq!(ui.rlhf_metric, RlhfMetric::KlToReference);
        assert_eq!(
            ui.metric,
            Metric::EpisodeLength,
            "the RLHF tab cycles its own"
        );

        assert_eq!(ui.window_s(), None);
        ui.handle_key(key(KeyCode::Char('+')));
        assert_eq!(ui.window_s(), None, "all is the widest");
        for _ in 0..10 {
            ui.handle_key(key(KeyCode::Char('-')));
        }
        assert_eq!(ui.window_s(), Some(60.0));
        ui.handle_key(key(KeyCode::Char('+')));
        assert_eq!(ui.window_s(), Some(300.0));

        ui.handle_key(key(KeyCode::Char('f')));
        assert!(ui.frozen);
        ui.handle_key(key(KeyCode::Char('?')));
        assert!(ui.help);
        ui.handle_key(key(KeyCode::Esc));
        assert!(!ui.help, "Esc closes help and does not quit");
    }
}
