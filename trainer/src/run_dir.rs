//! A run directory: `config.toml` (the resolved config), `metrics.jsonl` (telemetry),
//! `hone.log` and `checkpoints/` (each checkpoint a folder, written atomically).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates `root` for a new run; an existing non-empty folder is an error (nothing saved is
    /// overwritten: resume it, or pick another name).
    pub fn create(root: &Path) -> Result<Self> {
        if root.exists()
            && fs::read_dir(root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(Error::RunDir {
                path: root.to_owned(),
                message: "already exists; resume it with --resume or choose another --name".into(),
            });
        }
        let dir = Self {
            root: root.to_owned(),
        };
        fs::create_dir_all(dir.checkpoints_dir()).map_err(|source| Error::Io {
            path: dir.checkpoints_dir(),
            source,
        })?;
        Ok(dir)
    }

    /// Opens the run directory of an earlier run (for `--resume`, `eval`, `monitor`).
    pub fn open(root: &Path) -> Result<Self> {
        let dir = Self {
            root: root.to_owned(),
        };
        if !dir.config_path().is_file() {
            return Err(Error::RunDir {
                path: root.to_owned(),
                message: "is not a hone run directory (no config.toml)".into(),
            });
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
        self.root.join("hone.log")
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    pub fn read_config(&self) -> Result<String> {
        let path = self.config_path();
        fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
    }
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
            move |source| Error::Io { path, source }
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
                    source,
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
                source,
            })?;
        }
        fs::rename(&tmp, &best).map_err(|source| Error::Io {
            path: best.clone(),
            source,
        })?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|source| Error::Io { path: old, source })?;
        }
        Ok(())
    }

    fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep_last);
        for (_, path) in &all[..excess] {
            fs::remove_dir_all(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
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
