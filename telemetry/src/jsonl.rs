//! Writing and reading `metrics.jsonl`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Event, Result};

/// Appends events, one JSON object a line, each flushed so readers see whole lines.
#[derive(Debug)]
pub struct MetricsWriter {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
}

impl MetricsWriter {
    /// Opens `path` for appending, creating it if needed.
    pub fn append(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                cause: source,
            })?;
        Ok(Self {
            file,
            path: path.to_owned(),
            line: Vec::with_capacity(1024),
        })
    }

    pub fn write(&mut self, event: &Event) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, event).expect("events always serialise");
        self.line.push(b'\n');
        // One write call per line: with O_APPEND a reader never sees half an event.
        self.file.write_all(&self.line).map_err(|source| Error::Io {
            path: self.path.clone(),
            cause: source,
        })
    }
}

/// Every event in a metrics file.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let mut reader = MetricsReader::open(path)?;
    reader.read_new()
}

/// Reads a metrics file incrementally: each call returns the complete lines added since the
/// last, so a dashboard can follow a live run.
#[derive(Debug)]
pub struct MetricsReader {
    reader: BufReader<File>,
    path: PathBuf,
    offset: u64,
    lines_read: usize,
    partial: Vec<u8>,
}

impl MetricsReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            cause: source,
        })?;
        Ok(Self {
            reader: BufReader::new(file),
            path: path.to_owned(),
            offset: 0,
            lines_read: 0,
            partial: Vec::new(),
        })
    }

    /// The events completed since the last call. A trailing line without its newline is kept
    /// for the next call (the writer may be half-way through it).
    pub fn read_new(&mut self) -> Result<Vec<Event>> {
        let io_err = |source| Error::Io {
            path: self.path.clone(),
            cause: source,
        };
        self.reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(io_err)?;
        let before = self.partial.len();
        let read = self.reader.read_to_end(&mut self.partial);
        read.map_err(|source| Error::Io {
            path: self.path.clone(),
            cause: source,
        })?;
        self.offset += (self.partial.len() - before) as u64;
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut events = Vec::new();
        for line in complete.lines() {
            let line = line.map_err(|source| Error::Io {
                path: self.path.clone(),
                cause: source,
            })?;
            self.lines_read += 1;
            if line.trim().is_empty() {
                continue;
            }
            let event = serde_json::from_str(&line).map_err(|source| Error::Parse {
                path: self.path.clone(),
                line: self.lines_read,
                cause: source,
            })?;
            events.push(event);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, UpdateEvent};

    fn update(n: u64) -> Event {
        Event::Update(UpdateEvent {
            update: n,
            global_step: n * 512,
            ..Default::default()
        })
    }

    #[test]
    fn written_events_read_back_equal() {
        let dir = std::env::temp_dir().join(format!("hone-telemetry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roundtrip.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut writer = MetricsWriter::append(&path).unwrap();
        let events = vec![
            update(1),
            Event::Checkpoint {
                global_step: 512,
                path: "checkpoints/a".into(),
            },
            update(2),
            Event::Finish {
                global_step: 1024,
                reason: "done".into(),
            },
        ];
        for event in &events {
            writer.write(event).unwrap();
        }
        assert_eq!(read_events(&path).unwrap(), events);
    }

    #[test]
    fn reader_follows_appends_and_waits_for_whole_lines() {
        let dir = std::env::temp_dir().join(format!("hone-telemetry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("follow.jsonl");
        std::fs::write(&path, "").unwrap();
        let mut reader = MetricsReader::open(&path).unwrap();
        assert!(reader.read_new().unwrap().is_empty());

        let line = serde_json::to_string(&update(7)).unwrap();
        let (head, tail) = line.split_at(10);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(head.as_bytes()).unwrap();
        assert!(
            reader.read_new().unwrap().is_empty(),
            "half a line is not an event yet"
        );
        file.write_all(format!("{tail}\n").as_bytes()).unwrap();
        assert_eq!(reader.read_new().unwrap(), vec![update(7)]);
        assert!(reader.read_new().unwrap().is_empty());
    }

    #[test]
    fn rlhf_events_round_trip_and_optional_fields_may_be_absent() {
        let event = Event::Rlhf(crate::RlhfEvent {
            step: 3,
            elapsed_s: 12.5,
            reward_mean: 0.25,
            baseline_reward_mean: Some(0.125),
            kl_to_reference: 0.01,
            response_length_mean: 48.0,
            tokens_per_s: 900.0,
            timing: crate::RlhfTiming {
                generate_s: 1.0,
                reference_s: 0.25,
                reward_s: 0.5,
                update_s: 2.0,
            },
            ..Default::default()
        });
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.starts_with(r#"{"event":"rlhf","step":3,"#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);

        // What an RLHF trainer without the optional fields writes still parses.
        let minimal = r#"{"event":"rlhf","step":1,"elapsed_s":1.0,"reward_mean":0.5,"kl_to_reference":0.0,"response_length_mean":10.0,"tokens_per_s":5.0,"timing":{"generate_s":1.0,"reference_s":0.0,"reward_s":0.0,"update_s":0.0}}"#;
        let Event::Rlhf(parsed) = serde_json::from_str::<Event>(minimal).unwrap() else {
            panic!("not an rlhf event");
        };
        assert_eq!(parsed.baseline_reward_mean, None);
        assert_eq!(parsed.gpu_memory_bytes, None);
        assert_eq!(parsed.response_length_mean, 10.0);
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_file_and_line() {
        let dir = std::env::temp_dir().join(format!("hone-telemetry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.jsonl");
        let good = serde_json::to_string(&update(1)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"event\":\"bogus\"}}\n")).unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl, line 2: not a telemetry event"),
            "{err}"
        );
    }
}
