//! A PPO run in its run directory: config, metrics, checkpoints, resume, clean stop.

use std::path::PathBuf;
use std::time::Duration;

use hone_telemetry::{Event, MetricsWriter, RunControl, RunInfo, UpdateEvent};

use super::{Ppo, PpoConfig};
use crate::run_dir::{CheckpointStore, RunDir, write_atomic};
use crate::{Error, Result};

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub global_step: u64,
    pub iterations: u64,
    /// Mean return of the episodes finished in the last update that finished any.
    pub last_return_mean: Option<f64>,
    pub interrupted: bool,
    pub last_checkpoint: Option<PathBuf>,
}

/// Receives every event as it is written (the dashboard, a progress printer).
pub type Observer<'a> = &'a mut dyn FnMut(&Event);

/// Starts a new run in `run` (created by the caller with [`RunDir::create`]).
pub fn start(
    run: &RunDir,
    config: PpoConfig,
    control: &RunControl,
    observer: Observer<'_>,
) -> Result<RunSummary> {
    config.validate()?;
    write_atomic(
        &run.config_path(),
        crate::config::to_toml(&config)?.as_bytes(),
    )?;
    let ppo = Ppo::new(config)?;
    drive(run, ppo, control, observer)
}

/// Continues the run in `run` (opened with [`RunDir::open_to_continue`]) from its latest
/// checkpoint, or from the start when it was stopped before its first one. `total_timesteps`,
/// when given, replaces the saved one (to train further; not below the checkpoint's step).
/// Metrics logged after that checkpoint are dropped, so the resumed run's metrics read as if it
/// had never stopped.
pub fn resume(
    run: &RunDir,
    total_timesteps: Option<u64>,
    control: &RunControl,
    observer: Observer<'_>,
) -> Result<RunSummary> {
    let mut config: PpoConfig = toml::from_str(&run.read_config()?)
        .map_err(|e| Error::Config(format!("{}: {e}", run.config_path().display())))?;
    if let Some(total) = total_timesteps {
        config.total_timesteps = total;
    }
    config.validate()?;
    let store = CheckpointStore::new(run.checkpoints_dir(), config.keep_checkpoints);
    let ppo = match store.latest()? {
        Some(latest) => Ppo::load(config, &latest)?,
        None => {
            tracing::info!("no checkpoint yet: the run starts again from its first update");
            Ppo::new(config)?
        }
    };
    if total_timesteps.is_some() && ppo.config.num_iterations() < ppo.iteration {
        return Err(Error::Config(format!(
            "--total-steps {} is below the {} steps the run has already trained; give a larger \
             number to train further",
            ppo.config.total_timesteps, ppo.global_step
        )));
    }
    if total_timesteps.is_some() {
        write_atomic(
            &run.config_path(),
            crate::config::to_toml(&ppo.config)?.as_bytes(),
        )?;
    }
    run.truncate_metrics((ppo.global_step > 0).then_some(ppo.global_step))?;
    drive(run, ppo, control, observer)
}

/// Where events go: the run's metrics file, then the observer.
struct Sink<'o, 'a> {
    metrics: MetricsWriter,
    observer: &'o mut Observer<'a>,
}

impl Sink<'_, '_> {
    fn emit(&mut self, event: Event) -> Result<()> {
        self.metrics.write(&event)?;
        (self.observer)(&event);
        Ok(())
    }
}

/// Episodes since the last checkpoint: their mean return scores it for `best`.
#[derive(Default)]
struct Score {
    sum: f64,
    count: u64,
}

fn save(
    ppo: &Ppo,
    store: &CheckpointStore,
    score: &mut Score,
    sink: &mut Sink<'_, '_>,
) -> Result<PathBuf> {
    let value = (score.count > 0).then(|| score.sum / score.count as f64);
    let path = store.save(ppo.global_step, value, |dir| ppo.save(dir))?;
    *score = Score::default();
    tracing::info!(path = %path.display(), step = ppo.global_step, "checkpoint written");
    sink.emit(Event::Checkpoint {
        global_step: ppo.global_step,
        path: path.display().to_string(),
    })?;
    Ok(path)
}

fn drive(
    run: &RunDir,
    mut ppo: Ppo,
    control: &RunControl,
    mut observer: Observer<'_>,
) -> Result<RunSummary> {
    let mut sink = Sink {
        metrics: MetricsWriter::append(&run.metrics_path())?,
        observer: &mut observer,
    };
    let store = CheckpointStore::new(run.checkpoints_dir(), ppo.config.keep_checkpoints);
    let info = RunInfo {
        run: run.name(),
        algorithm: "ppo".into(),
        target: ppo.config.env_id.clone(),
        device: format!("{:?}", ppo.device()).to_lowercase(),
        total_steps: ppo.config.num_iterations() * ppo.config.batch_size() as u64,
        global_step: ppo.global_step,
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        pid: std::process::id(),
    };
    tracing::info!(run = %info.run, env = %info.target, device = %info.device, step = info.global_step, "training");
    sink.emit(Event::Start(info))?;

    let mut summary = RunSummary {
        run_dir: run.root().to_owned(),
        global_step: ppo.global_step,
        iterations: ppo.iteration,
        last_return_mean: None,
        interrupted: false,
        last_checkpoint: None,
    };
    let mut score = Score::default();
    let mut saved_at = None;
    while !ppo.is_done() {
        while control.is_paused() && !control.stop_requested() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if control.stop_requested() {
            summary.interrupted = true;
            break;
        }
        let event: UpdateEvent = match ppo.iterate() {
            Ok(event) => event,
            Err(err) => {
                let reason = format!("error: {err}");
                tracing::error!("{reason}");
                sink.emit(Event::Finish {
                    global_step: ppo.global_step,
                    reason,
                })?;
                return Err(err);
            }
        };
        if let Some(mean) = event.episodes.return_mean {
            score.sum += mean * event.episodes.count as f64;
            score.count += event.episodes.count;
            summary.last_return_mean = Some(mean);
        }
        sink.emit(Event::Update(event))?;
        let every = ppo.config.checkpoint_every;
        let scheduled = every > 0 && ppo.iteration.is_multiple_of(every);
        if (scheduled || control.take_checkpoint_request()) && !ppo.is_done() {
            summary.last_checkpoint = Some(save(&ppo, &store, &mut score, &mut sink)?);
            saved_at = Some(ppo.global_step);
        }
    }
    if saved_at != Some(ppo.global_step) && ppo.iteration > 0 {
        summary.last_checkpoint = Some(save(&ppo, &store, &mut score, &mut sink)?);
    }
    summary.global_step = ppo.global_step;
    summary.iterations = ppo.iteration;
    let reason = if summary.interrupted {
        "interrupted"
    } else {
        "done"
    };
    sink.emit(Event::Finish {
        global_step: ppo.global_step,
        reason: reason.into(),
    })?;
    Ok(summary)
}
