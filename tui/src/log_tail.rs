//! Follows a growing text file (the run's `hone.log`) line by line.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// On first opening, only this much of the end of the file is read: the pane shows a tail.
const FIRST_READ_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    offset: Option<u64>,
    partial: Vec<u8>,
}

impl LogTail {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: None,
            partial: Vec::new(),
        }
    }

    /// Complete lines added since the last call. A missing file is no lines yet; a file that
    /// shrank (rotated, truncated) is read again from its start.
    pub fn read_new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return Vec::new();
        };
        let mut skip_first_line = false;
        let start = match self.offset {
            Some(offset) if offset <= len => offset,
            Some(_) => {
                self.partial.clear();
                0
            }
            None if len > FIRST_READ_BYTES => {
                // Starting mid-file: the first (cut) line is dropped.
                skip_first_line = true;
                len - FIRST_READ_BYTES
            }
            None => 0,
        };
        if file.seek(SeekFrom::Start(start)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset = Some(start + bytes.len() as u64);
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut lines: Vec<String> = String::from_utf8_lossy(&complete)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        if skip_first_line && !lines.is_empty() {
            lines.remove(0);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_appends_and_waits_for_whole_lines() {
        let dir = std::env::temp_dir().join(format!("hone-tui-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("follow.log");
        let _ = std::fs::remove_file(&path);
        let mut tail = LogTail::new(&path);
        assert!(tail.read_new_lines().is_empty(), "no file yet");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        assert_eq!(tail.read_new_lines(), ["one", "two"]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"ee\n").unwrap();
        assert_eq!(tail.read_new_lines(), ["three"]);
        assert!(tail.read_new_lines().is_empty());
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(
            tail.read_new_lines(),
            ["new"],
            "a truncated file is read again"
        );
    }

    #[test]
    fn a_long_file_is_read_from_its_tail() {
        let dir = std::env::temp_dir().join(format!("hone-tui-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("long.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let lines = LogTail::new(&path).read_new_lines();
        assert_eq!(lines.last().unwrap(), "line 19999");
        assert!(lines.len() < 20_000);
        assert!(lines[0].starts_with("line "), "no cut line: {}", lines[0]);
        let first: usize = lines[0][5..].parse().unwrap();
        assert_eq!(first + lines.len(), 20_000, "contiguous to the end");
    }
}
