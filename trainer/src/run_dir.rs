//! A run directory: `config.toml` (the resolved config), `metrics.jsonl` (telemetry),
//! `hone.log`, `checkpoints/` (each checkpoint a folder, written atomically) and `hone.lock`,
//! which the one process writing the run holds locked for its life.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use hone_telemetry::Event;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        cause: source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// What every temporary file or folder hone writes has in its name, before the writer's pid.
const TMP_MARK: &str = ".tmp-";
const LOCK_FILE: &str = "hone.lock";
const LOG_FILE: &str = "hone.log";

#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
    /// Held by the process that writes the run (none for readers: eval, monitor).
    lock: Option<Arc<File>>,
}

impl RunDir {
    /// Creates `root` for a new run and locks it; an existing non-empty folder is an error
    /// (nothing saved is overwritten: resume it, or pick another name).
    pub fn create(root: &Path) -> Result<Self> {
        if root.exists()
            && !is_unstarted(root)
            && fs::read_dir(root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(Error::RunDir {
                path: root.to_owned(),
                message: "already exists; resume it with --resume or choose another --name".into(),
            });
        }
        let checkpoints = root.join("checkpoints");
        fs::create_dir_all(&checkpoints).map_err(|source| Error::Io {
            path: checkpoints,
            cause: source,
        })?;
        Ok(Self {
            root: root.to_owned(),
            lock: Some(Arc::new(lock(root)?)),
        })
    }

    /// Creates the run `name` in `runs_dir` (see [`Self::create`]); the name must be one plain
    /// folder name, so a run never lands outside `runs_dir`.
    pub fn create_in(runs_dir: &Path, name: &str) -> Result<Self> {
        let mut parts = Path::new(name).components();
        let plain = matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none();
        if !plain || name.contains(['/', '\\']) {
            return Err(Error::Config(format!(
                "run name {name:?} must be a plain folder name (no `/`, `..` or leading `/`)"
            )));
        }
        Self::create(&runs_dir.join(name))
    }

    /// Opens the run directory of an earlier run to read it (`eval`, `monitor`): no lock.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = Self {
            root: root.to_owned(),
            lock: None,
        };
        if !dir.config_path().is_file() {
            return Err(Error::RunDir {
                path: root.to_owned(),
                message: "is not a hone run directory (no config.toml)".into(),
            });
        }
        Ok(dir)
    }

    /// Opens an earlier run to continue writing it (`--resume`): takes its lock (an error
    /// naming the holder's pid while another process writes it), then removes the temporary
    /// files and folders a killed writer left behind.
    pub fn open_to_continue(root: &Path) -> Result<Self> {
        if is_unstarted(root) {
            return Err(Error::RunDir {
                path: root.to_owned(),
                message: "was stopped before it wrote its config.toml, so there is nothing to \
                          resume; start it again with the same --name"
                    .into(),
            });
        }
        let mut dir = Self::open(root)?;
        dir.lock = Some(Arc::new(lock(root)?));
        for folder in [dir.root.clone(), dir.checkpoints_dir()] {
            remove_leftovers(&folder)?;
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    pub fn read_config(&self) -> Result<String> {
        let path = self.config_path();
        fs::read_to_string(&path).map_err(|source| Error::Io {
            path,
            cause: source,
        })
    }

    /// Keeps the events of `metrics.jsonl` up to `global_step` (what the checkpoint a resume
    /// starts from had seen; `None`: none of them), byte for byte. A line that is not an event
    /// (a torn write, garbage) is dropped with a warning that names its line; returns how many.
    pub fn truncate_metrics(&self, global_step: Option<u64>) -> Result<usize> {
        let path = self.metrics_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(Error::Io {
                    path,
                    cause: source,
                });
            }
        };
        let mut kept = Vec::with_capacity(bytes.len());
        let mut skipped = 0;
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let step = match serde_json::from_slice::<Event>(line) {
                Ok(event) => event_step(&event),
                Err(err) => {
                    tracing::warn!(
                        "{}: line {} is not an event ({err}); dropped",
                        path.display(),
                        index + 1
                    );
                    skipped += 1;
                    continue;
                }
            };
            if global_step.is_some_and(|last| step <= last) {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        if kept != bytes {
            write_atomic(&path, &kept)?;
        }
        Ok(skipped)
    }
}

/// The step an event belongs to.
fn event_step(event: &Event) -> u64 {
    match event {
        Event::Update(u) => u.global_step,
        Event::Checkpoint { global_step, .. } | Event::Finish { global_step, .. } => *global_step,
        Event::Start(info) => info.global_step,
        Event::Rlhf(step) => step.step,
    }
}

/// Locks `root/hone.lock` for this process (released when the file closes, at exit too) and
/// writes its pid there; an error naming the holder's pid when another process has it.
fn lock(root: &Path) -> Result<File> {
    let path = root.join(LOCK_FILE);
    let io = |source| Error::Io {
        path: path.clone(),
        cause: source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.write_all(std::process::id().to_string().as_bytes())
                .map_err(io)?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_owned(),
                pid => format!("process {pid}"),
            };
            Err(Error::RunDir {
                path: root.to_owned(),
                message: format!(
                    "is being written by {holder} (hone.lock); wait for it to finish or stop it \
                     before resuming"
                ),
            })
        }
        Err(TryLockError::Error(source)) => Err(io(source)),
    }
}

/// Whether `root` is a folder that holds at most what a run has before it writes its config
/// (the lock file and an empty `checkpoints/` of [`RunDir::create`], the `hone.log` the CLI
/// opens next): a run killed before it began, whose name a new run may take (once its lock is
/// free).
fn is_unstarted(root: &Path) -> bool {
    let Ok(entries) = fs::read_dir(root) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let path = entry.path();
        let ours = match entry.file_name().to_str() {
            Some(LOCK_FILE | LOG_FILE) => path.is_file(),
            Some("checkpoints") => fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()),
            _ => false,
        };
        if !ours {
            return false;
        }
    }
    true
}

/// Removes what a killed writer left in `folder`: hone's temporary files and folders
/// (`.<name>.tmp-<pid>`, `.tmp-step-…`, `.tmp-best-…`, `.old-best-…`). A writer killed between
/// the two renames that replace `best` left no `best` and the previous one as `.old-best-…`,
/// which is put back. Call it only with the run's lock held, so no live writer owns them.
fn remove_leftovers(folder: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old_best = name.starts_with(".old-best-");
        let ours = name.starts_with('.') && (name.contains(TMP_MARK) || old_best);
        if !ours {
            continue;
        }
        let path = entry.path();
        let best = folder.join(BEST);
        if old_best && !best.exists() {
            tracing::info!(
                "restoring {} (left by an interrupted write)",
                best.display()
            );
            fs::rename(&path, &best).map_err(|source| Error::Io {
                path,
                cause: source,
            })?;
            continue;
        }
        tracing::info!("removing {} (left by an interrupted write)", path.display());
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|source| Error::Io {
            path,
            cause: source,
        })?;
    }
    Ok(())
}

/// The checkpoints of a run: `step-<global step>` folders, the last `keep_last` kept, plus
/// `best` (a copy of the one with the highest score).
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
    keep_last: usize,
}

const BEST: &str = "best";
const SCORE_FILE: &str = "score.txt";

impl CheckpointStore {
    pub fn new(dir: PathBuf, keep_last: usize) -> Self {
        Self {
            dir,
            keep_last: keep_last.max(1),
        }
    }

    /// Writes a checkpoint for `global_step`: `write` fills a temporary folder, which is then
    /// renamed into place. Older checkpoints beyond `keep_last` are removed afterwards, so a
    /// failure never leaves fewer complete checkpoints than before.
    pub fn save(
        &self,
        global_step: u64,
        score: Option<f64>,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io {
                path,
                cause: source,
            }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = self
            .dir
            .join(format!(".tmp-step-{global_step}-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io(&tmp))?;
        if let Err(err) = write(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(err);
        }
        if let Some(score) = score {
            fs::write(tmp.join(SCORE_FILE), score.to_string()).map_err(io(&tmp))?;
        }
        let dest = self.dir.join(format!("step-{global_step:012}"));
        if dest.exists() {
            fs::remove_dir_all(&dest).map_err(io(&dest))?;
        }
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        if let Some(score) = score {
            self.update_best(&dest, score)?;
        }
        self.prune()?;
        Ok(dest)
    }

    /// Checkpoint folders by step, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    cause: source,
                });
            }
        };
        let mut steps: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let step = name.strip_prefix("step-")?.parse().ok()?;
                Some((step, e.path()))
            })
            .collect();
        steps.sort();
        Ok(steps)
    }

    pub fn latest(&self) -> Result<Option<PathBuf>> {
        Ok(self.list()?.pop().map(|(_, path)| path))
    }

    pub fn best(&self) -> Option<PathBuf> {
        let best = self.dir.join(BEST);
        best.is_dir().then_some(best)
    }

    fn update_best(&self, checkpoint: &Path, score: f64) -> Result<()> {
        let best = self.dir.join(BEST);
        let best_score = fs::read_to_string(best.join(SCORE_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok());
        if best_score.is_some_and(|b| b >= score) {
            return Ok(());
        }
        let tmp = self.dir.join(format!(".tmp-best-{}", std::process::id()));
        copy_dir(checkpoint, &tmp)?;
        let old = self.dir.join(format!(".old-best-{}", std::process::id()));
        if best.exists() {
            fs::rename(&best, &old).map_err(|source| Error::Io {
                path: best.clone(),
                cause: source,
            })?;
        }
        fs::rename(&tmp, &best).map_err(|source| Error::Io {
            path: best.clone(),
            cause: source,
        })?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|source| Error::Io {
                path: old,
                cause: source,
            })?;
        }
        Ok(())
    }

    fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep_last);
        for (_, path) in &all[..excess] {
            fs::remove_dir_all(path).map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })?;
        }
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io {
            path,
            cause: source,
        }
    };
    if to.exists() {
        fs::remove_dir_all(to).map_err(io(to))?;
    }
    fs::create_dir_all(to).map_err(io(to))?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        fs::copy(entry.path(), to.join(entry.file_name())).map_err(io(&entry.path()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hone-rundir-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn write_marker(text: &str) -> impl FnOnce(&Path) -> Result<()> + '_ {
        move |dir| {
            fs::write(dir.join("model.bin"), text).unwrap();
            Ok(())
        }
    }

    #[test]
    fn create_refuses_an_existing_run() {
        let root = temp_dir("exists");
        RunDir::create(&root).unwrap();
        fs::write(root.join("config.toml"), "x = 1").unwrap();
        let err = RunDir::create(&root).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(
            fs::read_to_string(root.join("config.toml")).unwrap(),
            "x = 1"
        );
        assert!(RunDir::open(&root).is_ok());
        assert!(
            RunDir::open(&temp_dir("missing"))
                .unwrap_err()
                .to_string()
                .contains("no config.toml")
        );
    }

    /// A run killed after `create` but before its config.toml (found by the kill -9 test):
    /// `--resume` says to start it again, and a new run takes its name; a folder that holds
    /// anything more is never taken.
    #[test]
    fn a_run_killed_before_its_config_can_be_started_again_by_name() {
        let root = temp_dir("unstarted");
        let first = RunDir::create(&root).unwrap();
        let err = RunDir::create(&root).unwrap_err().to_string();
        assert!(err.contains("is being written by process"), "{err}");
        fs::write(root.join("hone.log"), "started\n").unwrap();
        drop(first);
        let err = RunDir::open_to_continue(&root).unwrap_err().to_string();
        assert!(err.contains("start it again with the same --name"), "{err}");
        let again = RunDir::create(&root).unwrap();
        fs::write(again.config_path(), "x = 1").unwrap();
        drop(again);
        assert!(RunDir::open_to_continue(&root).is_ok());

        let other = temp_dir("unstarted-with-a-file");
        drop(RunDir::create(&other).unwrap());
        fs::write(other.join("notes.txt"), "mine").unwrap();
        let err = RunDir::create(&other).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn keeps_the_last_k_and_the_best() {
        let store = CheckpointStore::new(temp_dir("keep").join("checkpoints"), 2);
        store.save(100, Some(5.0), write_marker("a")).unwrap();
        store.save(200, Some(9.0), write_marker("b")).unwrap();
        store.save(300, Some(7.0), write_marker("c")).unwrap();
        store.save(400, None, write_marker("d")).unwrap();
        let steps: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [300, 400]);
        let best = store.best().unwrap();
        assert_eq!(fs::read_to_string(best.join("model.bin")).unwrap(), "b");
        assert_eq!(
            store.latest().unwrap().unwrap().file_name().unwrap(),
            "step-000000000400"
        );
    }

    #[test]
    fn a_failed_write_leaves_earlier_checkpoints_intact() {
        let store = CheckpointStore::new(temp_dir("fail").join("checkpoints"), 1);
        store.save(100, None, write_marker("a")).unwrap();
        let err = store.save(200, None, |dir| {
            fs::write(dir.join("model.bin"), "partial").unwrap();
            Err(Error::Config("disk full".into()))
        });
        assert!(err.is_err());
        let all = store.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(fs::read_to_string(all[0].1.join("model.bin")).unwrap(), "a");
        let leftovers: Vec<_> = fs::read_dir(&store.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary folder is left behind");
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid() {
        let root = temp_dir("lock");
        let run = RunDir::create(&root).unwrap();
        fs::write(run.config_path(), "x = 1").unwrap();
        let err = RunDir::open_to_continue(&root).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(
            err.contains(&format!("is being written by process {pid}")),
            "{err}"
        );
        let clone = run.clone();
        drop(run);
        assert!(
            RunDir::open_to_continue(&root).is_err(),
            "a clone keeps the lock"
        );
        assert!(RunDir::open(&root).is_ok(), "readers take no lock");
        drop(clone);
        let again = RunDir::open_to_continue(&root).unwrap();
        assert_eq!(fs::read_to_string(root.join(LOCK_FILE)).unwrap(), pid);
        drop(again);
    }

    #[test]
    fn run_names_stay_inside_the_runs_folder() {
        let runs = temp_dir("names");
        for bad in ["../x", "..", ".", "/tmp/x", "a/b", "", "a\\b"] {
            let err = RunDir::create_in(&runs, bad).unwrap_err().to_string();
            assert!(err.contains("plain folder name"), "{bad:?}: {err}");
        }
        assert!(!runs.parent().unwrap().join("x").exists());
        let run = RunDir::create_in(&runs, "cartpole__1").unwrap();
        assert_eq!(run.root(), runs.join("cartpole__1"));
    }

    #[test]
    fn truncating_metrics_keeps_earlier_lines_byte_for_byte_and_drops_garbage() {
        let root = temp_dir("truncate");
        let run = RunDir::create(&root).unwrap();
        // Floats as another writer may spell them: kept as written, not re-serialised.
        let update = |n: u64, elapsed: &str| {
            let event = Event::Update(hone_telemetry::UpdateEvent {
                update: n,
                global_step: 100 * n,
                elapsed_s: 7.0,
                ..Default::default()
            });
            let line = serde_json::to_string(&event).unwrap();
            line.replace("\"elapsed_s\":7.0", &format!("\"elapsed_s\":{elapsed}"))
        };
        let (first, second) = (update(1, "0.1000000000000000055511"), update(2, "2E-1"));
        let lines = [
            r#"{"event":"start","run":"r","algorithm":"ppo","target":"t","device":"cpu","total_steps":9,"global_step":0,"started_at":1.50,"pid":1}"#,
            &first,
            "garbage {",
            r#"{"event":"checkpoint","global_step":100,"path":"p"}"#,
            &second,
        ];
        fs::write(run.metrics_path(), lines.join("\n") + "\n").unwrap();
        assert_eq!(run.truncate_metrics(Some(100)).unwrap(), 1);
        let want = [lines[0], lines[1], lines[3]].join("\n") + "\n";
        assert_eq!(fs::read_to_string(run.metrics_path()).unwrap(), want);
        assert_eq!(run.truncate_metrics(Some(100)).unwrap(), 0);
        assert_eq!(fs::read_to_string(run.metrics_path()).unwrap(), want);
        run.truncate_metrics(None).unwrap();
        assert_eq!(fs::read_to_string(run.metrics_path()).unwrap(), "");
    }

    #[test]
    fn continuing_a_run_removes_only_hones_leftovers() {
        let root = temp_dir("leftovers");
        let run = RunDir::create(&root).unwrap();
        fs::write(run.config_path(), "x = 1").unwrap();
        let checkpoints = run.checkpoints_dir();
        for dir in [
            ".tmp-step-100-4242",
            ".tmp-best-4242",
            ".old-best-4242",
            "step-000000000100",
        ] {
            fs::create_dir_all(checkpoints.join(dir)).unwrap();
        }
        // Killed between its renames of `best`: the previous best is put back.
        fs::write(checkpoints.join(".old-best-4242/score.txt"), "7").unwrap();
        fs::write(root.join(".metrics.jsonl.tmp-4242"), "x").unwrap();
        fs::write(root.join("notes.txt"), "mine").unwrap();
        drop(run);
        let run = RunDir::open_to_continue(&root).unwrap();
        let mut left: Vec<String> = fs::read_dir(run.checkpoints_dir())
            .unwrap()
            .chain(fs::read_dir(&root).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "best",
                "checkpoints",
                "config.toml",
                "hone.lock",
                "notes.txt",
                "step-000000000100"
            ]
        );
        let score = fs::read_to_string(run.checkpoints_dir().join("best/score.txt")).unwrap();
        assert_eq!(score, "7");
        // With a `best` in place, a leftover `.old-best-…` is removed.
        fs::create_dir_all(run.checkpoints_dir().join(".old-best-4243")).unwrap();
        drop(run);
        let run = RunDir::open_to_continue(&root).unwrap();
        assert!(!run.checkpoints_dir().join(".old-best-4243").exists());
        assert!(run.checkpoints_dir().join("best/score.txt").exists());
    }

    #[test]
    fn write_atomic_replaces_whole_files() {
        let dir = temp_dir("atomic");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }
}
