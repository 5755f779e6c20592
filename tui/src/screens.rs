//! Snapshot tests of every tab and overlay, drawn from fixed runs into ratatui's TestBackend.
//! A changed screen fails here; review it with `cargo insta review` (or delete the `.snap` and
//! rerun with `INSTA_UPDATE=always`) and commit the new snapshot.

use hone_telemetry::{
    EpisodeStats, Event, LossStats, PhaseTiming, RlhfEvent, RlhfTiming, RunInfo, UpdateEvent,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::render::render;
use crate::state::{DashboardState, GpuMemory};
use crate::ui::{Metric, Mode, RlhfMetric, Tab, UiState};

fn run_info(algorithm: &str, target: &str, device: &str, total: u64) -> RunInfo {
    RunInfo {
        run: format!("{target}__{algorithm}__1__1700000000"),
        algorithm: algorithm.into(),
        target: target.into(),
        device: device.into(),
        total_steps: total,
        global_step: 0,
        started_at: 1_700_000_000.0,
        pid: 4242,
    }
}

/// A CartPole-like PPO run: 120 updates of 512 steps, returns rising towards 500, losses
/// decaying, a slowdown near the end; deterministic curves, no randomness.
fn ppo_state() -> DashboardState {
    let mut state = DashboardState::default();
    state.apply(&Event::Start(run_info(
        "ppo",
        "CartPole-v1",
        "cpu",
        500_000,
    )));
    let mut elapsed = 0.0;
    for n in 1..=120u64 {
        let k = n as f64;
        let seconds = if n > 110 { 0.2 } else { 0.1 };
        elapsed += seconds;
        let wiggle = (k * 0.7).sin();
        let mean = 480.0 * (1.0 - (-k / 35.0).exp()) + 15.0 + 6.0 * wiggle;
        let update = UpdateEvent {
            update: n,
            global_step: n * 512,
            elapsed_s: elapsed,
            sps: 512.0 / seconds,
            env_fps: 2.5 * 512.0 / seconds,
            episodes: EpisodeStats {
                count: 4,
                return_mean: Some(mean),
                return_min: Some((mean * 0.45).max(9.0)),
                return_max: Some((mean * 1.4).min(500.0)),
                length_mean: Some(mean),
            },
            losses: LossStats {
                policy_loss: -0.012 * (-k / 60.0).exp() + 0.002 * wiggle,
                value_loss: 40.0 * (-k / 40.0).exp() + 0.5,
                entropy: 0.69 - 0.35 * k / 120.0,
                approx_kl: 0.006 + 0.002 * wiggle,
                old_approx_kl: 0.007,
                clipfrac: 0.12 + 0.03 * wiggle,
                explained_variance: 0.9 * (1.0 - (-k / 20.0).exp()),
                learning_rate: 2.5e-4 * (1.0 - k / 977.0),
                grad_norm: 0.5,
            },
            timing: PhaseTiming {
                env_step_s: 0.4 * seconds,
                inference_s: 0.3 * seconds,
                update_s: 0.3 * seconds,
            },
            rss_bytes: Some(412 << 20),
        };
        state.apply(&Event::Update(update));
        if n % 50 == 0 {
            state.apply(&Event::Checkpoint {
                global_step: n * 512,
                path: format!("runs/x/checkpoints/step-{:012}", n * 512),
            });
        }
    }
    state.system.cpu_percent = Some(187.0);
    state.push_log_lines([
        "2023-11-14T22:13:20.000Z  INFO hone_trainer::ppo::run: training run=CartPole-v1__ppo__1__1700000000 env=CartPole-v1 device=cpu step=0".to_owned(),
        "2023-11-14T22:13:25.000Z  INFO hone_trainer::ppo::run: checkpoint written path=runs/x/checkpoints/step-000000025600 step=25600".to_owned(),
        "2023-11-14T22:13:31.000Z  WARN hone_trainer::ppo: slow update".to_owned(),
        "2023-11-14T22:13:32.000Z  INFO hone_trainer::ppo::run: checkpoint written path=runs/x/checkpoints/step-000000051200 step=51200".to_owned(),
    ]);
    state
}

/// A ReMax-like run: 40 RLHF steps with a greedy baseline, on CUDA.
fn rlhf_state() -> DashboardState {
    let mut state = DashboardState::default();
    state.apply(&Event::Start(run_info(
        "remax",
        "SmolLM2-135M-Instruct",
        "cuda:0",
        200,
    )));
    for step in 1..=40u64 {
        let k = step as f64;
        state.apply(&Event::Rlhf(RlhfEvent {
            step,
            elapsed_s: 6.0 * k,
            reward_mean: 0.2 + 0.5 * (1.0 - (-k / 15.0).exp()) + 0.03 * (k * 0.9).sin(),
            reward_std: Some(0.18),
            baseline_reward_mean: Some(0.18 + 0.45 * (1.0 - (-k / 15.0).exp())),
            kl_to_reference: 0.002 * k,
            response_length_mean: 60.0 - 0.4 * k,
            tokens_per_s: 950.0 + 40.0 * (k * 0.5).sin(),
            timing: RlhfTiming {
                generate_s: 3.1,
                reference_s: 0.6,
                reward_s: 0.4,
                update_s: 1.9,
            },
            policy_loss: Some(-0.05 + 0.001 * k),
            learning_rate: Some(1e-6),
            rss_bytes: Some(3 << 30),
            gpu_memory_bytes: Some(7 << 30),
            alert_kl: Some(0.2),
        }));
    }
    state.system.cpu_percent = Some(99.0);
    state
}

fn draw(state: &DashboardState, ui: &UiState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(frame, state, ui)).unwrap();
    terminal
}

fn screen_text(terminal: &Terminal<TestBackend>) -> String {
    terminal.backend().to_string()
}

fn ui(mode: Mode, tab: Tab) -> UiState {
    let mut ui = UiState::new(mode);
    ui.tab = tab;
    ui
}

#[test]
fn overview_of_a_ppo_run() {
    let terminal = draw(&ppo_state(), &ui(Mode::Train, Tab::Overview), 140, 44);
    let text = screen_text(&terminal);
    // The numbers that must be there, whatever the layout becomes.
    for expected in [
        "CartPole-v1__ppo__1__1700000000",
        "12.3%  61,440 / 500,000 steps",
        "episodic return (mean, min–max band)",
        "2.56k", // SPS now (the slow tail: 512 / 0.2 s)
        "187%",
        "412.0 MiB",
        "step 51,200 (2 checkpoints)",
        "checkpoint written",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    insta::assert_snapshot!("overview", terminal.backend());
}

#[test]
fn overview_with_alerts_pause_freeze_and_drops() {
    let mut state = ppo_state();
    let mut bad = state.last_update().unwrap().clone();
    bad.update += 1;
    bad.global_step += 512;
    bad.elapsed_s += 0.2;
    bad.losses.approx_kl = 0.09;
    bad.losses.value_loss = f64::NAN;
    bad.losses.entropy = 0.03;
    state.apply(&Event::Update(bad));
    state.paused = true;
    state.dropped_events = 3;
    let mut ui = ui(Mode::Train, Tab::Overview);
    ui.frozen = true;
    ui.metric = Metric::ApproxKl;
    let terminal = draw(&state, &ui, 140, 44);
    let text = screen_text(&terminal);
    for expected in [
        "PAUSED",
        "FROZEN",
        "dropped events 3",
        "Health: 3 alerts",
        "value_loss is NaN/Inf",
        "approx_kl 0.0900 > 0.0500",
        "entropy collapse",
        "phase paused",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    insta::assert_snapshot!("overview_alerts", terminal.backend());
}

#[test]
fn losses_tab() {
    let terminal = draw(&ppo_state(), &ui(Mode::Train, Tab::Losses), 140, 44);
    let text = screen_text(&terminal);
    for expected in [
        "policy loss",
        "value loss",
        "entropy",
        "approx_kl",
        "clipfrac",
        "learning rate",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    insta::assert_snapshot!("losses", terminal.backend());
}

#[test]
fn rlhf_tab() {
    let terminal = draw(&rlhf_state(), &ui(Mode::Monitor, Tab::Rlhf), 140, 44);
    let text = screen_text(&terminal);
    for expected in [
        "reward: sampled vs baseline",
        "sampled",
        "baseline",
        "20.0%  40 / 200 RLHF steps",
        "KL to ref",
        "generate",
        "reference",
        "Time per phase (last step: 6.00 s)",
        "monitor: read-only",
        "model SmolLM2-135M-Instruct",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    insta::assert_snapshot!("rlhf", terminal.backend());
}

#[test]
fn rlhf_tab_cycled_to_kl_and_overview_shows_gpu_memory() {
    let state = rlhf_state();
    let mut ui = ui(Mode::Monitor, Tab::Rlhf);
    ui.rlhf_metric = RlhfMetric::KlToReference;
    let terminal = draw(&state, &ui, 120, 36);
    insta::assert_snapshot!("rlhf_kl", terminal.backend());
    let overview = screen_text(&draw(
        &state,
        &self::ui(Mode::Monitor, Tab::Overview),
        120,
        36,
    ));
    assert!(overview.contains("7.0 GiB"), "{overview}");
}

#[test]
fn rlhf_tab_shows_the_kl_alert_when_a_step_passes_alert_kl() {
    let mut state = rlhf_state();
    let quiet = screen_text(&draw(&state, &ui(Mode::Monitor, Tab::Rlhf), 140, 44));
    assert!(!quiet.contains("alert"), "{quiet}");
    let mut hot = state.last_rlhf().unwrap().clone();
    hot.step = 41;
    hot.elapsed_s += 6.0;
    hot.kl_to_reference = 0.35;
    state.apply(&Event::Rlhf(hot));
    let text = screen_text(&draw(&state, &ui(Mode::Monitor, Tab::Rlhf), 140, 44));
    for expected in [
        "Health: 1 alert",
        "KL to reference 0.3500 > alert_kl 0.2000 (1 step over)",
        "0.3500 > 0.2000",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn rlhf_tab_of_a_control_run_says_why_it_is_empty() {
    let terminal = draw(&ppo_state(), &ui(Mode::Train, Tab::Rlhf), 100, 30);
    let text = screen_text(&terminal);
    assert!(text.contains("no RLHF events in this run"), "{text}");
}

#[test]
fn log_tab() {
    let terminal = draw(&ppo_state(), &ui(Mode::Train, Tab::Log), 140, 20);
    insta::assert_snapshot!("log", terminal.backend());
}

#[test]
fn help_and_quit_confirmation_overlays() {
    let state = ppo_state();
    let mut help = ui(Mode::Train, Tab::Overview);
    help.help = true;
    insta::assert_snapshot!("help_train", draw(&state, &help, 120, 36).backend());
    let mut help = ui(Mode::Monitor, Tab::Overview);
    help.help = true;
    let text = screen_text(&draw(&state, &help, 120, 36));
    assert!(!text.contains("pause / resume"), "{text}");
    let mut confirm = ui(Mode::Train, Tab::Overview);
    confirm.confirm_quit = true;
    insta::assert_snapshot!("confirm_quit", draw(&state, &confirm, 120, 36).backend());
}

#[test]
fn a_run_before_its_first_update_and_a_gpu_sample() {
    let mut state = DashboardState::default();
    state.apply(&Event::Start(run_info(
        "ppo",
        "Pendulum-v1",
        "cuda",
        1_000_000,
    )));
    state.system.gpu = Some(GpuMemory {
        used_bytes: 1 << 30,
        total_bytes: Some(80 << 30),
        per_process: false,
    });
    let terminal = draw(&state, &ui(Mode::Train, Tab::Overview), 120, 30);
    let text = screen_text(&terminal);
    assert!(text.contains("waiting for the first update"), "{text}");
    assert!(text.contains("1.0 GiB / 80.0 GiB dev"), "{text}");
    assert!(text.contains("phase starting"), "{text}");
    insta::assert_snapshot!("starting", terminal.backend());
}

#[test]
fn rendering_is_a_pure_function_of_the_state() {
    let (state, ui) = (ppo_state(), ui(Mode::Train, Tab::Overview));
    let a = draw(&state, &ui, 120, 40);
    let b = draw(&state, &ui, 120, 40);
    assert_eq!(a.backend().buffer(), b.backend().buffer());
}

#[test]
fn every_tab_draws_in_small_terminals_without_panicking() {
    let states = [DashboardState::default(), ppo_state(), rlhf_state()];
    for state in &states {
        for tab in Tab::ALL {
            for (w, h) in [(80, 24), (40, 12), (10, 4), (1, 1)] {
                let mut ui = ui(Mode::Train, tab);
                ui.help = w > 40;
                draw(state, &ui, w, h);
            }
        }
    }
    // The window narrows the chart to the last minute of run time.
    let mut narrow = ui(Mode::Train, Tab::Overview);
    narrow.window = 0;
    let text = screen_text(&draw(&ppo_state(), &narrow, 120, 40));
    assert!(text.contains("window 1:00"), "{text}");
}
