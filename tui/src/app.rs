//! The running dashboard: takes events from the trainer (or a metrics file), keys from the
//! terminal, and draws at most `max_fps` times a second.

use std::io::{Stdout, stdout};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hone_telemetry::{MetricsReader, RunControl};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEvent};
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::crossterm::{cursor, execute};

use crate::channel::{EventReceiver, Received};
use crate::log_tail::LogTail;
use crate::state::{AlertThresholds, DashboardState, Phase};
use crate::system::{GpuSampler, ProcessSampler, cuda_index, process_alive};
use crate::ui::{Action, Mode, Tab, UiState};
use crate::{Error, Result, render};

/// Where the events come from.
#[derive(Debug)]
pub enum Source {
    /// From the trainer in this process; closed when the run returns.
    Live(EventReceiver),
    /// A run's `metrics.jsonl`, followed while its process lives.
    File(MetricsReader),
}

impl Source {
    /// Follows `<run_dir>/metrics.jsonl`.
    pub fn follow(run_dir: &Path) -> Result<Source> {
        let path = run_dir.join("metrics.jsonl");
        if !path.is_file() {
            return Err(Error::NotARun(run_dir.to_owned()));
        }
        Ok(Source::File(MetricsReader::open(&path)?))
    }
}

#[derive(Debug, Clone)]
pub struct DashboardOptions {
    pub mode: Mode,
    /// The run directory: its `hone.log` feeds the log pane.
    pub run_dir: Option<PathBuf>,
    /// How keys steer the trainer (`hone train` only).
    pub control: Option<Arc<RunControl>>,
    pub thresholds: AlertThresholds,
    /// Most frames drawn per second (answering keys).
    pub max_fps: f64,
    /// Most frames per second drawn for new data alone: a training dashboard is read at a
    /// glance, and every frame is CPU taken from the trainer on a busy machine.
    pub data_fps: f64,
    /// Set from outside to close the dashboard (the trainer failed, a signal came).
    pub close: Arc<AtomicBool>,
    /// Events of the run before this session (a resumed run's earlier metrics).
    pub history: Vec<hone_telemetry::Event>,
}

impl DashboardOptions {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            run_dir: None,
            control: None,
            thresholds: AlertThresholds::default(),
            max_fps: 15.0,
            data_fps: 4.0,
            close: Arc::new(AtomicBool::new(false)),
            history: Vec::new(),
        }
    }
}

const FILE_POLL: Duration = Duration::from_millis(200);
const LOG_POLL: Duration = Duration::from_millis(250);
const SYSTEM_POLL: Duration = Duration::from_secs(1);
const MESSAGE_SHOWN: Duration = Duration::from_secs(4);

/// Everything the dashboard holds between frames, apart from the terminal.
#[derive(Debug)]
pub struct Dashboard {
    pub state: DashboardState,
    pub ui: UiState,
    /// What is drawn while the display is frozen.
    frozen: Option<DashboardState>,
    source: Source,
    options: DashboardOptions,
    log: Option<LogTail>,
    process: Option<ProcessSampler>,
    gpu: Option<GpuSampler>,
    /// The live source closed: the trainer returned.
    trainer_returned: bool,
    last_event_at: Option<Instant>,
    last_file_poll: Option<Instant>,
    last_log_poll: Option<Instant>,
    last_system_poll: Option<Instant>,
    message_at: Option<Instant>,
    quit: bool,
    /// The RLHF tab has been opened for an RLHF run (once: afterwards the keys decide).
    rlhf_tab_opened: bool,
}

impl Dashboard {
    pub fn new(source: Source, mut options: DashboardOptions) -> Self {
        let mut state = DashboardState::new(options.thresholds);
        for event in std::mem::take(&mut options.history) {
            state.apply(&event);
        }
        let log = options
            .run_dir
            .as_ref()
            .map(|dir| LogTail::new(dir.join("hone.log")));
        // In `hone train` the trainer is this process; a monitor learns the pid from RunInfo.
        let process =
            matches!(source, Source::Live(_)).then(|| ProcessSampler::new(std::process::id()));
        Self {
            state,
            ui: UiState::new(options.mode),
            frozen: None,
            source,
            options,
            log,
            process,
            gpu: None,
            trainer_returned: false,
            last_event_at: None,
            last_file_poll: None,
            last_log_poll: None,
            last_system_poll: None,
            message_at: None,
            quit: false,
            rlhf_tab_opened: false,
        }
    }

    /// Takes in what is new: events, log lines, process measurements, the controls' state.
    pub fn ingest(&mut self) -> Result<bool> {
        let now = Instant::now();
        let mut changed = false;
        let due = |last: Option<Instant>, every: Duration| last.is_none_or(|t| now - t >= every);
        match &mut self.source {
            Source::Live(rx) => {
                loop {
                    match rx.try_next() {
                        Received::Event(event) => {
                            self.state.apply(&event);
                            self.last_event_at = Some(now);
                            changed = true;
                        }
                        Received::Empty => break,
                        Received::Closed => {
                            changed |= !self.trainer_returned;
                            self.trainer_returned = true;
                            break;
                        }
                    }
                }
                let dropped = rx.dropped();
                changed |= dropped != self.state.dropped_events;
                self.state.dropped_events = dropped;
            }
            Source::File(reader) => {
                if due(self.last_file_poll, FILE_POLL) {
                    self.last_file_poll = Some(now);
                    for event in reader.read_new()? {
                        self.state.apply(&event);
                        self.last_event_at = Some(now);
                        changed = true;
                    }
                    let pid = self.state.run.as_ref().map(|r| r.pid);
                    if let Some(pid) = pid {
                        if self.process.is_none() {
                            self.process = Some(ProcessSampler::new(pid));
                        }
                        let gone = self.state.finish.is_none() && !process_alive(pid);
                        changed |= gone != self.state.process_gone;
                        self.state.process_gone = gone;
                    }
                }
            }
        }
        if self.gpu.is_none()
            && let Some(run) = &self.state.run
            && let Some(index) = cuda_index(&run.device)
        {
            self.gpu = Some(GpuSampler::start(run.pid, index));
        }
        if due(self.last_log_poll, LOG_POLL) {
            self.last_log_poll = Some(now);
            if let Some(log) = &mut self.log {
                let lines = log.read_new_lines();
                changed |= !lines.is_empty();
                self.state.push_log_lines(lines);
            }
        }
        if due(self.last_system_poll, SYSTEM_POLL) {
            self.last_system_poll = Some(now);
            let run_over = self.run_over();
            if let Some(process) = &mut self.process {
                let (cpu, rss) = process.sample();
                // A finished monitor target keeps its last figures.
                if !run_over || cpu.is_some() {
                    self.state.system.cpu_percent = cpu;
                    self.state.system.rss_bytes = rss;
                }
            }
            if let Some(gpu) = &self.gpu {
                self.state.system.gpu = gpu.latest();
            }
            changed = true;
        }
        if let Some(control) = &self.options.control {
            let (paused, stopping) = (control.is_paused(), control.stop_requested());
            changed |= paused != self.state.paused || stopping != self.state.stopping;
            self.state.paused = paused;
            self.state.stopping = stopping;
        }
        // The clock runs between events while training.
        self.state.clock_s = match (self.state.phase(), self.last_event_at) {
            (Phase::Training, Some(at)) => self
                .state
                .last_elapsed_s()
                .map(|e| e + at.elapsed().as_secs_f64()),
            _ => None,
        };
        self.ui.run_over = self.run_over();
        // An RLHF run has nothing for the control-task Overview: show its own tab.
        if !self.rlhf_tab_opened
            && self.state.updates().is_empty()
            && !self.state.rlhf_steps().is_empty()
        {
            self.rlhf_tab_opened = true;
            if self.ui.tab == Tab::Overview {
                self.ui.tab = Tab::Rlhf;
                changed = true;
            }
        }
        if self.message_at.is_some_and(|t| t.elapsed() > MESSAGE_SHOWN) {
            self.ui.message = None;
            self.message_at = None;
            changed = true;
        }
        Ok(changed)
    }

    fn run_over(&self) -> bool {
        let finished = self.state.finish.is_some();
        match self.options.mode {
            Mode::Train => self.trainer_returned || finished,
            Mode::Monitor => finished || self.state.process_gone,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        let message_before = self.ui.message.clone();
        let was_frozen = self.ui.frozen;
        let action = self.ui.handle_key(key);
        if self.ui.frozen && !was_frozen {
            self.frozen = Some(self.state.clone());
        } else if !self.ui.frozen {
            self.frozen = None;
        }
        let control = self.options.control.as_deref();
        match (action, control) {
            (Action::None, _) => {}
            (Action::Quit, _) => self.quit = true,
            (Action::Stop, Some(control)) => {
                control.request_stop();
                // A paused trainer must see the stop too: the run loop checks it while paused.
            }
            (Action::TogglePause, Some(control)) => {
                let paused = !control.is_paused();
                control.set_paused(paused);
                self.ui.message = Some(if paused {
                    "pausing after this update (p resumes)".into()
                } else {
                    "resumed".into()
                });
            }
            (Action::Checkpoint, Some(control)) => {
                control.request_checkpoint();
                self.ui.message = Some("checkpoint after this update".into());
            }
            // Steering without a control (cannot happen in Train mode as wired): leave.
            (Action::Stop, None) => self.quit = true,
            (Action::TogglePause | Action::Checkpoint, None) => {}
        }
        if self.ui.message != message_before {
            self.message_at = Some(Instant::now());
        }
    }

    /// Whether the loop should end now.
    pub fn should_exit(&self) -> bool {
        if self.quit || self.options.close.load(Ordering::SeqCst) {
            return true;
        }
        // After a stop (a key or a signal), leave once the trainer has checkpointed and
        // returned; a run that ends by itself stays on screen until `q`.
        let stop_asked = self
            .options
            .control
            .as_deref()
            .is_some_and(RunControl::stop_requested);
        self.options.mode == Mode::Train && self.trainer_returned && stop_asked
    }

    /// The state to draw: the frozen copy while frozen.
    pub fn shown(&self) -> &DashboardState {
        self.frozen.as_ref().unwrap_or(&self.state)
    }
}

/// The terminal in raw mode on the alternate screen; restored when dropped.
struct TerminalSession {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalSession {
    fn enter() -> Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        let entered = execute!(stdout(), EnterAlternateScreen, cursor::Hide)
            .map_err(Error::from)
            .and_then(|()| Ok(Terminal::new(CrosstermBackend::new(stdout()))?));
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(err) => {
                restore_terminal();
                Err(err)
            }
        }
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The width of the terminal on stdout, if it is one.
pub fn terminal_columns() -> Option<u16> {
    ratatui::crossterm::terminal::size().ok().map(|(w, _)| w)
}

/// Leaves raw mode and the alternate screen. Safe to call more than once and from any thread
/// (a signal handler thread before exiting, the panic hook).
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}

/// A panic anywhere restores the terminal before the message prints, so it is readable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

fn run_in(session: &mut TerminalSession, dashboard: &mut Dashboard) -> Result<()> {
    let options = &dashboard.options;
    let frame_interval = Duration::from_secs_f64(1.0 / options.max_fps.max(0.1));
    let data_interval =
        Duration::from_secs_f64(1.0 / options.data_fps.clamp(0.1, options.max_fps.max(0.1)));
    // Redraw at least this often even with nothing new (the clock, the CPU figures).
    let idle_redraw = Duration::from_secs(1);
    let mut last_draw: Option<Instant> = None;
    // New data waits for `data_interval`; a key is answered after `frame_interval`.
    let (mut new_data, mut keyed) = (true, true);
    loop {
        new_data |= dashboard.ingest()?;
        if dashboard.should_exit() {
            return Ok(());
        }
        let since_draw = last_draw.map_or(Duration::MAX, |t| t.elapsed());
        let due = (keyed && since_draw >= frame_interval)
            || (new_data && since_draw >= data_interval)
            || since_draw >= idle_redraw;
        if due {
            let (state, ui) = (dashboard.shown(), &dashboard.ui);
            session
                .terminal
                .draw(|frame| render::render(frame, state, ui))?;
            last_draw = Some(Instant::now());
            (new_data, keyed) = (false, false);
        }
        // Sleep in the terminal's event poll until a key comes or the next frame may be due.
        let since_draw = last_draw.map_or(Duration::ZERO, |t| t.elapsed());
        let next = if keyed {
            frame_interval
        } else if new_data {
            data_interval
        } else {
            idle_redraw
        };
        let wait = next
            .saturating_sub(since_draw)
            .clamp(Duration::from_millis(10), FILE_POLL);
        if event::poll(wait)? {
            match event::read()? {
                TermEvent::Key(key) => {
                    // Judge the key on the latest events (q on a run that just finished
                    // leaves without asking).
                    dashboard.ingest()?;
                    dashboard.on_key(key);
                    keyed = true;
                }
                TermEvent::Resize(..) => {
                    session.terminal.autoresize()?;
                    keyed = true;
                }
                _ => {}
            }
        }
    }
}

/// Runs the dashboard on this thread until it is left (`q`, or the run stopped by a key or
/// signal ended), then restores the terminal.
pub fn run(source: Source, options: DashboardOptions) -> Result<DashboardState> {
    let mut session = TerminalSession::enter()?;
    let mut dashboard = Dashboard::new(source, options);
    let result = run_in(&mut session, &mut dashboard);
    drop(session);
    result.map(|()| dashboard.state)
}

/// A dashboard on its own thread, for `hone train` (the trainer keeps the main thread).
#[derive(Debug)]
pub struct DashboardThread {
    handle: JoinHandle<Result<DashboardState>>,
    close: Arc<AtomicBool>,
}

impl DashboardThread {
    /// Takes the terminal now (so a terminal error is reported before training starts) and
    /// runs the dashboard on a new thread.
    pub fn spawn(source: Source, options: DashboardOptions) -> Result<Self> {
        let mut session = TerminalSession::enter()?;
        let close = Arc::clone(&options.close);
        let handle = std::thread::Builder::new()
            .name("hone-tui".into())
            .spawn(move || {
                let mut dashboard = Dashboard::new(source, options);
                let result = run_in(&mut session, &mut dashboard);
                drop(session);
                result.map(|()| dashboard.state)
            })?;
        Ok(Self { handle, close })
    }

    /// Waits until the user leaves the dashboard.
    pub fn join(self) -> Result<DashboardState> {
        self.handle.join().map_err(|_| Error::Panicked)?
    }

    /// Closes the dashboard now and waits for the terminal to be restored.
    pub fn close(self) -> Result<DashboardState> {
        self.close.store(true, Ordering::SeqCst);
        self.join()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::event_channel;
    use crate::state::tests::{start, update};
    use hone_telemetry::Event;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn train_dashboard() -> (crate::channel::EventSender, Arc<RunControl>, Dashboard) {
        let (tx, rx) = event_channel(16);
        let control = Arc::new(RunControl::default());
        let mut options = DashboardOptions::new(Mode::Train);
        options.control = Some(Arc::clone(&control));
        (tx, control, Dashboard::new(Source::Live(rx), options))
    }

    #[test]
    fn an_rlhf_run_opens_on_the_rlhf_tab_once() {
        let (tx, _control, mut dash) = train_dashboard();
        tx.send(&start(10));
        dash.ingest().unwrap();
        assert_eq!(dash.ui.tab, Tab::Overview, "nothing to tell yet");
        tx.send(&Event::Rlhf(hone_telemetry::RlhfEvent {
            step: 1,
            ..Default::default()
        }));
        dash.ingest().unwrap();
        assert_eq!(dash.ui.tab, Tab::Rlhf);
        dash.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
        tx.send(&Event::Rlhf(hone_telemetry::RlhfEvent {
            step: 2,
            ..Default::default()
        }));
        dash.ingest().unwrap();
        assert_eq!(dash.ui.tab, Tab::Log, "the user's choice stands");
    }

    #[test]
    fn keys_steer_the_trainer_through_its_run_control() {
        let (tx, control, mut dash) = train_dashboard();
        tx.send(&start(10_000));
        tx.send(&Event::Update(update(1, 1.0, 1.0)));
        dash.ingest().unwrap();
        assert_eq!(dash.state.updates().len(), 1);

        dash.on_key(key('p'));
        assert!(control.is_paused());
        dash.ingest().unwrap();
        assert_eq!(dash.state.phase(), Phase::Paused);
        dash.on_key(key('p'));
        assert!(!control.is_paused());

        dash.on_key(key('s'));
        assert!(control.take_checkpoint_request());

        dash.on_key(key('q'));
        assert!(!control.stop_requested(), "q only asks");
        dash.on_key(key('y'));
        assert!(control.stop_requested());
        dash.ingest().unwrap();
        assert_eq!(dash.state.phase(), Phase::Stopping);
        assert!(!dash.should_exit(), "waits for the trainer's checkpoint");
        tx.send(&Event::Finish {
            global_step: 512,
            reason: "interrupted".into(),
        });
        drop(tx);
        dash.ingest().unwrap();
        assert!(dash.should_exit());
    }

    #[test]
    fn q_right_after_the_finish_event_leaves_without_asking() {
        let (tx, _control, mut dash) = train_dashboard();
        tx.send(&start(512));
        tx.send(&Event::Finish {
            global_step: 512,
            reason: "done".into(),
        });
        // The trainer has not returned yet (its sender lives on).
        dash.ingest().unwrap();
        dash.on_key(key('q'));
        assert!(!dash.ui.confirm_quit);
        assert!(dash.should_exit());
    }

    #[test]
    fn a_run_that_ends_by_itself_stays_until_q() {
        let (tx, _control, mut dash) = train_dashboard();
        tx.send(&start(512));
        tx.send(&Event::Update(update(1, 1.0, 1.0)));
        tx.send(&Event::Finish {
            global_step: 512,
            reason: "done".into(),
        });
        drop(tx);
        dash.ingest().unwrap();
        assert!(!dash.should_exit());
        assert!(dash.ui.run_over);
        dash.on_key(key('q'));
        assert!(dash.should_exit(), "no confirmation once the run is over");
    }

    #[test]
    fn dropped_events_reach_the_state_and_freezing_holds_the_picture() {
        let (tx, _control, mut dash) = train_dashboard();
        tx.send(&start(1_000_000));
        for i in 1..=20 {
            tx.send(&Event::Update(update(i, i as f64, 1.0)));
        }
        dash.ingest().unwrap();
        assert_eq!(dash.state.dropped_events, 21 - 16);
        assert_eq!(dash.state.updates().len(), 15);

        dash.on_key(key('f'));
        tx.send(&Event::Update(update(21, 21.0, 1.0)));
        dash.ingest().unwrap();
        assert_eq!(dash.state.updates().len(), 16, "events still flow in");
        assert_eq!(dash.shown().updates().len(), 15, "the picture holds");
        dash.on_key(key('f'));
        assert_eq!(dash.shown().updates().len(), 16);
    }

    #[test]
    fn a_monitor_follows_a_file_and_notices_the_end() {
        let dir = std::env::temp_dir().join(format!("hone-tui-app-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(Source::follow(&dir), Err(Error::NotARun(_))));
        let path = dir.join("metrics.jsonl");
        let mut writer = hone_telemetry::MetricsWriter::append(&path).unwrap();
        // This test process stands in for the trainer: alive.
        let Event::Start(mut info) = start(2048) else {
            unreachable!()
        };
        info.pid = std::process::id();
        writer.write(&Event::Start(info.clone())).unwrap();
        writer.write(&Event::Update(update(1, 1.0, 1.0))).unwrap();
        std::fs::write(dir.join("hone.log"), "INFO training\n").unwrap();

        let mut options = DashboardOptions::new(Mode::Monitor);
        options.run_dir = Some(dir.clone());
        let mut dash = Dashboard::new(Source::follow(&dir).unwrap(), options);
        dash.ingest().unwrap();
        assert_eq!(dash.state.phase(), Phase::Training);
        assert_eq!(dash.state.log, ["INFO training"]);
        assert!(!dash.ui.run_over);
        dash.on_key(key('p'));
        assert!(dash.ui.message.as_deref().unwrap().contains("read-only"));

        writer
            .write(&Event::Finish {
                global_step: 512,
                reason: "done".into(),
            })
            .unwrap();
        std::thread::sleep(FILE_POLL);
        dash.ingest().unwrap();
        assert_eq!(dash.state.phase(), Phase::Finished("done".into()));
        assert!(dash.ui.run_over);

        // A run whose process is gone without a finish line.
        info.pid = u32::MAX;
        let gone = dir.join("gone");
        std::fs::create_dir_all(&gone).unwrap();
        let mut writer =
            hone_telemetry::MetricsWriter::append(&gone.join("metrics.jsonl")).unwrap();
        writer.write(&Event::Start(info)).unwrap();
        let mut dash = Dashboard::new(
            Source::follow(&gone).unwrap(),
            DashboardOptions::new(Mode::Monitor),
        );
        dash.ingest().unwrap();
        assert_eq!(dash.state.phase(), Phase::Gone);
        dash.on_key(key('q'));
        assert!(dash.should_exit());
    }
}
