//! Built-in tasks small enough for tiny models trained from scratch on a CPU, and the rule
//! rewards that score them.
//!
//! Each example is a JSONL row `{"prompt", "response", "answer"}`: `hone sft` reads prompt and
//! response, `hone rlhf` reads prompt and answer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_error};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskExample {
    pub prompt: String,
    /// The SFT target (for the decoy task, sometimes a wrong one).
    pub response: String,
    /// The correct answer.
    pub answer: String,
}

/// A seeded SplitMix64 stream: examples are reproducible from the seed alone.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn check_range(name: &'static str, lo: usize, hi: usize) -> Result<()> {
    if lo == 0 || lo > hi || hi > 32 {
        return Err(Error::Parameter {
            name,
            value: format!("{lo}..={hi}"),
            expected: "1 <= min <= max <= 32".into(),
        });
    }
    Ok(())
}

/// Digit sorting: `sort 3142=` → `1234`. Lengths are uniform in `min_digits..=max_digits`.
pub fn sorting(
    count: usize,
    min_digits: usize,
    max_digits: usize,
    seed: u64,
) -> Result<Vec<TaskExample>> {
    check_range("digits", min_digits, max_digits)?;
    let mut rng = SplitMix::new(seed);
    Ok((0..count)
        .map(|_| {
            let len = min_digits + rng.below((max_digits - min_digits + 1) as u64) as usize;
            let digits: Vec<u8> = (0..len).map(|_| b'0' + rng.below(10) as u8).collect();
            let mut sorted = digits.clone();
            sorted.sort_unstable();
            let answer = String::from_utf8(sorted).unwrap_or_default();
            TaskExample {
                prompt: format!("sort {}=", String::from_utf8(digits).unwrap_or_default()),
                response: answer.clone(),
                answer,
            }
        })
        .collect())
}

/// The decoy token the wrong training answers of [`decoy`] begin with.
pub const DECOY_TOKEN: char = '#';

/// The decoy-prefix task on digit sorting: the prompt `sort 3142=` asks for `1234`, but
/// training responses are correct only with probability `p_correct`; otherwise they are the
/// decoy token followed by a random corruption (random digits of the answer's length). After
/// SFT the first greedy token is the decoy (mass 1 − p on it) while the single most likely
/// whole response is the correct one (mass p against corruptions spread over 10^len strings).
pub fn decoy(
    count: usize,
    min_digits: usize,
    max_digits: usize,
    p_correct: f64,
    seed: u64,
) -> Result<Vec<TaskExample>> {
    if !(0.0..=1.0).contains(&p_correct) {
        return Err(Error::Parameter {
            name: "p_correct",
            value: p_correct.to_string(),
            expected: "a probability in [0, 1]".into(),
        });
    }
    let mut examples = sorting(count, min_digits, max_digits, seed)?;
    let mut rng = SplitMix::new(seed.wrapping_add(0xDEC0));
    for example in &mut examples {
        if rng.unit() >= p_correct {
            let corruption: String = (0..example.answer.len())
                .map(|_| (b'0' + rng.below(10) as u8) as char)
                .collect();
            example.response = format!("{DECOY_TOKEN}{corruption}");
        }
    }
    Ok(examples)
}

/// Addition in words, for chat models: `What is 37+58? Answer with just the number.` → `95`,
/// each operand uniform over the numbers of `min_digits..=max_digits` digits (at most 9).
pub fn addition(
    count: usize,
    min_digits: usize,
    max_digits: usize,
    seed: u64,
) -> Result<Vec<TaskExample>> {
    check_range("digits", min_digits, max_digits)?;
    if max_digits > 9 {
        return Err(Error::Parameter {
            name: "digits",
            value: format!("{min_digits}..={max_digits}"),
            expected: "at most 9 digits per operand".into(),
        });
    }
    let mut rng = SplitMix::new(seed);
    let operand = |rng: &mut SplitMix| {
        let digits = min_digits + rng.below((max_digits - min_digits + 1) as u64) as usize;
        let lo = if digits == 1 {
            0
        } else {
            10u64.pow(digits as u32 - 1)
        };
        lo + rng.below(10u64.pow(digits as u32) - lo)
    };
    Ok((0..count)
        .map(|_| {
            let (a, b) = (operand(&mut rng), operand(&mut rng));
            let answer = (a + b).to_string();
            TaskExample {
                prompt: format!("What is {a}+{b}? Answer with just the number."),
                response: answer.clone(),
                answer,
            }
        })
        .collect())
}

/// Writes examples as JSONL (one object a line), atomically.
pub fn write_jsonl(path: &Path, examples: &[TaskExample]) -> Result<()> {
    let mut bytes = Vec::new();
    for example in examples {
        serde_json::to_writer(&mut bytes, example)
            .map_err(|e| crate::error::malformed(path, format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    crate::checkpoint::write_file(path, &bytes)
}

/// The text of a data file (JSONL, one example a line); bytes that are not UTF-8 are an error
/// naming the file and the 1-based line that holds them (the numbering of `str::lines`).
pub fn read_data_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Error::Dataset {
            path: path.to_owned(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            message: format!(
                "not valid UTF-8 (byte {} of the line); save the file as UTF-8",
                valid.len() - line_start + 1
            ),
        }
    })
}

/// Rewards computed from the response text and the dataset's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// 1 when the trimmed response equals the trimmed answer, else 0.
    ExactMatch,
    /// 1 when the last number in the response equals the last number in the answer, else 0.
    LastNumber,
}

impl Rule {
    pub fn score(self, response: &str, answer: &str) -> f64 {
        let hit = match self {
            Rule::ExactMatch => response.trim() == answer.trim(),
            Rule::LastNumber => match (last_number(response), last_number(answer)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        };
        if hit { 1.0 } else { 0.0 }
    }
}

/// The last number in `text` (an optional minus sign, digits, an optional decimal part), with
/// thousands separators removed and trailing zeros of a decimal part dropped, so `1,000.50`
/// and `1000.5` compare equal.
pub fn last_number(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    while end > 0 && !bytes[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return None;
    }
    let mut start = end;
    while start > 0 {
        let c = bytes[start - 1];
        let digit_follows = start < end && bytes[start].is_ascii_digit();
        let digit_before = start >= 2 && bytes[start - 2].is_ascii_digit();
        if c.is_ascii_digit() || ((c == b'.' || c == b',') && digit_follows && digit_before) {
            start -= 1;
        } else {
            break;
        }
    }
    let negative = start > 0 && bytes[start - 1] == b'-';
    let mut number: String = text[start..end].chars().filter(|&c| c != ',').collect();
    if number.contains('.') {
        number = number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned();
    }
    let trimmed = number.trim_start_matches('0');
    let number = if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    };
    Some(if negative && number != "0" {
        format!("-{number}")
    } else {
        number
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_answers_are_the_sorted_digits() {
        let examples = sorting(50, 3, 6, 1).unwrap();
        for ex in &examples {
            let digits = ex
                .prompt
                .strip_prefix("sort ")
                .unwrap()
                .strip_suffix('=')
                .unwrap();
            assert!((3..=6).contains(&digits.len()), "{}", ex.prompt);
            let mut sorted: Vec<char> = digits.chars().collect();
            sorted.sort();
            assert_eq!(ex.answer, sorted.into_iter().collect::<String>());
            assert_eq!(ex.response, ex.answer);
        }
        assert_eq!(examples, sorting(50, 3, 6, 1).unwrap());
        assert_ne!(examples, sorting(50, 3, 6, 2).unwrap());
        assert!(sorting(1, 0, 3, 0).is_err());
    }

    #[test]
    fn decoy_responses_are_right_with_probability_p() {
        let examples = decoy(4000, 3, 5, 0.4, 3).unwrap();
        assert_eq!(
            examples.iter().map(|e| &e.answer).collect::<Vec<_>>(),
            sorting(4000, 3, 5, 3)
                .unwrap()
                .iter()
                .map(|e| &e.answer)
                .collect::<Vec<_>>()
        );
        let right = examples.iter().filter(|e| e.response == e.answer).count();
        let frac = right as f64 / examples.len() as f64;
        assert!((frac - 0.4).abs() < 0.03, "{frac}");
        for ex in examples.iter().filter(|e| e.response != e.answer) {
            assert!(ex.response.starts_with(DECOY_TOKEN), "{}", ex.response);
            assert_eq!(ex.response.len(), ex.answer.len() + 1);
        }
        assert!(decoy(1, 3, 5, 1.5, 0).is_err());
    }

    #[test]
    fn addition_has_operands_of_the_asked_digits_and_their_sum() {
        let examples = addition(500, 2, 2, 7).unwrap();
        for ex in &examples {
            let rest = ex.prompt.strip_prefix("What is ").unwrap();
            let (sum, tail) = rest.split_once('?').unwrap();
            assert_eq!(tail, " Answer with just the number.");
            let (a, b) = sum.split_once('+').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((10..100).contains(&a) && (10..100).contains(&b), "{a} {b}");
            assert_eq!(ex.answer, (a + b).to_string());
            assert_eq!(ex.response, ex.answer);
        }
        assert_ne!(examples[0].prompt, examples[1].prompt);
        assert_eq!(addition(3, 2, 2, 7).unwrap(), examples[..3]);
        assert!(addition(1, 2, 10, 0).is_err());
    }

    #[test]
    fn rules_score_answers() {
        assert_eq!(Rule::ExactMatch.score(" 123 ", "123"), 1.0);
        assert_eq!(Rule::ExactMatch.score("1234", "123"), 0.0);
        assert_eq!(Rule::LastNumber.score("The answer is 42.", "42"), 1.0);
        assert_eq!(Rule::LastNumber.score("41 or 42", "42"), 1.0);
        assert_eq!(Rule::LastNumber.score("42 or 41", "42"), 0.0);
        assert_eq!(Rule::LastNumber.score("no number", "42"), 0.0);
        assert_eq!(Rule::LastNumber.score("total: 1,000.50", "1000.5"), 1.0);
        assert_eq!(Rule::LastNumber.score("it is -7", "-7"), 1.0);
        assert_eq!(Rule::LastNumber.score("it is 7", "-7"), 0.0);
        assert_eq!(last_number("a 007 b"), Some("7".into()));
        assert_eq!(last_number("3.0"), Some("3".into()));
        assert_eq!(last_number("end."), None);
    }

    #[test]
    fn data_files_that_are_not_utf8_name_the_line() {
        let dir = std::env::temp_dir().join(format!("hone-tasks-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prompts.jsonl");
        std::fs::write(&path, b"{\"prompt\": \"a\"}\r\n\n{\"prompt\": \"b\xff\"}\n").unwrap();
        let err = read_data_file(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3: not valid UTF-8 (byte 14 of the line)",
                path.display()
            )),
            "{err}"
        );
        std::fs::write(&path, "{\"prompt\": \"é\"}\n").unwrap();
        assert_eq!(read_data_file(&path).unwrap(), "{\"prompt\": \"é\"}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
