//! Logging: `tracing` events go to the run's `hone.log` once a run directory exists (the
//! terminal belongs to progress output or the dashboard); before that, warnings and errors go
//! to stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);

/// Installs the subscriber; call once at start-up.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .with_ansi(false)
        .with_writer(Destination)
        .try_init();
}

/// From now on, log into `path` (appending).
pub fn log_to(path: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

struct Destination;

enum Writer {
    File,
    Stderr,
    Discard,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Writer::File => match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                Some(file) => file.write(buf),
                None => Ok(buf.len()),
            },
            Writer::Stderr => io::stderr().write(buf),
            Writer::Discard => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Destination {
    type Writer = Writer;

    fn make_writer(&'a self) -> Writer {
        Writer::Stderr
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Writer {
        if LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            Writer::File
        } else if *meta.level() <= Level::WARN {
            Writer::Stderr
        } else {
            Writer::Discard
        }
    }
}
