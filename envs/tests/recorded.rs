//! What the replays of gymnasium's recordings share (`conformance`: the classic envs, recorded by
//! `scripts/record_gymnasium.py`; `mujoco`: `scripts/record_gymnasium_mujoco.py`): the tolerance,
//! a reader of the little-endian file format, and the tally of a replay's comparisons.

/// Every compared value agrees to this, relative to the larger magnitude.
pub const RELATIVE_TOLERANCE: f64 = 1e-6;
/// For values that are 0 up to rounding noise (e.g. a sine at a multiple of pi).
pub const ABSOLUTE_FLOOR: f64 = 1e-9;
/// Stop listing mismatches past this many (the first one of each episode is listed).
pub const MAX_REPORTED: usize = 30;

/// How an episode of a recording began.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResetKind {
    /// `reset(seed=...)`: a fresh generator from the seed.
    Seeded,
    /// `reset()`: the generator of the previous episode, continued.
    Continued,
    /// Seeded, then the state set to the recorded one.
    SetState,
}

impl ResetKind {
    /// The kind a recording's byte stands for; `path` names the file in the panic otherwise.
    pub fn from_byte(byte: u8, path: &str) -> Self {
        match byte {
            0 => ResetKind::Seeded,
            1 => ResetKind::Continued,
            2 => ResetKind::SetState,
            kind => panic!("{path}: unknown reset kind {kind}"),
        }
    }
}

/// Reads a recording's fields in order; a field past the end panics, naming the byte.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub fn take(&mut self, len: usize) -> &'a [u8] {
        let end = self.position + len;
        assert!(
            end <= self.bytes.len(),
            "recording truncated at byte {}",
            self.position
        );
        let slice = &self.bytes[self.position..end];
        self.position = end;
        slice
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().expect("N bytes")
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub fn u16(&mut self) -> usize {
        usize::from(u16::from_le_bytes(self.array()))
    }

    pub fn u32(&mut self) -> usize {
        u32::from_le_bytes(self.array()) as usize
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    pub fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.array())
    }

    pub fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.array())
    }

    pub fn f32s(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.f32()).collect()
    }

    pub fn f64s(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.f64()).collect()
    }

    /// Panics unless every byte has been read.
    pub fn assert_finished(&self, path: &str) {
        assert_eq!(self.position, self.bytes.len(), "{path}: trailing bytes");
    }

    /// A u16 length, then that many bytes of UTF-8.
    pub fn text(&mut self) -> String {
        let len = self.u16();
        String::from_utf8(self.take(len).to_vec()).expect("utf-8 text")
    }
}

/// Whether hone's `actual` agrees with gymnasium's `expected` (infinities exactly).
pub fn close(expected: f64, actual: f64) -> bool {
    if expected.is_infinite() || actual.is_infinite() {
        return expected == actual;
    }
    (expected - actual).abs()
        <= RELATIVE_TOLERANCE * expected.abs().max(actual.abs()) + ABSOLUTE_FLOOR
}

/// How a replay went; `mismatches` lists what disagreed (the replays stop an episode at its first).
#[derive(Default)]
pub struct Replay {
    pub mismatches: Vec<String>,
    pub steps: usize,
    /// Values compared.
    pub values: usize,
    /// Of the values compared with `check_exact`: how many, and how many were bit-identical.
    pub exact_of: usize,
    pub exact: usize,
}

impl Replay {
    /// Compares one value within the tolerance; `at` and `field` name it in the mismatch.
    pub fn check(&mut self, at: &str, field: &str, expected: f64, actual: f64) -> bool {
        self.values += 1;
        if close(expected, actual) {
            return true;
        }
        self.mismatches.push(format!(
            "{at}: {field}: gymnasium {expected:e}, hone {actual:e}"
        ));
        false
    }

    /// `check`, also counting whether the two are bit-identical (for values both sides hold in
    /// the same precision).
    pub fn check_exact(&mut self, at: &str, field: &str, expected: f64, actual: f64) -> bool {
        self.exact_of += 1;
        self.exact += usize::from(expected.to_bits() == actual.to_bits());
        self.check(at, field, expected, actual)
    }

    pub fn check_flag(&mut self, at: &str, field: &str, expected: bool, actual: bool) -> bool {
        if expected != actual {
            self.mismatches.push(format!(
                "{at}: {field}: gymnasium {expected}, hone {actual}"
            ));
        }
        expected == actual
    }
}
