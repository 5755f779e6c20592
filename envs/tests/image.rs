//! `hone_envs::image` against OpenCV: the INTER_AREA resize equals `cv2.resize(...,
//! interpolation=cv2.INTER_AREA)` of opencv-python-headless (pinned in scripts/setup_python.sh)
//! byte for byte, on random, constant, gradient and checkerboard frames of many shapes: envpool's
//! 210×160 and 250×160 to 84×84, integer factors (resizeAreaFast_), non-integer ones
//! (resizeArea_), one-row and one-column images and the same-size copy.
//!
//! The reference runs in hone's Python (HONE_PYTHON, written by scripts/setup.sh into
//! .cargo/config.toml); without it these tests fail, unless HONE_SKIP_PYTHON_TESTS=1 (as for
//! hone-rlhf's reference tests), which skips them with a printed reason.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use hone_envs::image::{AreaResize, max_pool_u8, resize_area_u8};

/// Set to 1 to skip, with a printed reason, the tests that need Python with OpenCV.
const SKIP_VAR: &str = "HONE_SKIP_PYTHON_TESTS";

/// Reads the cases (per case: src_h, src_w, dst_h, dst_w as little-endian u32, then the
/// src_h*src_w bytes) from argv[1] and writes each cv2.resize result, concatenated, to argv[2].
const REFERENCE: &str = r#"
import sys
import cv2
import numpy as np

data = open(sys.argv[1], "rb").read()
pos = 0
with open(sys.argv[2], "wb") as out:
    while pos < len(data):
        sh, sw, dh, dw = (int(v) for v in np.frombuffer(data, "<u4", 4, pos))
        pos += 16
        img = np.frombuffer(data, np.uint8, sh * sw, pos).reshape(sh, sw)
        pos += sh * sw
        res = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA)
        assert res.shape == (dh, dw) and res.dtype == np.uint8, (res.shape, res.dtype)
        out.write(res.tobytes())
print(cv2.__version__)
"#;

/// The Python of hone's environment if it imports cv2 and numpy; `None` only when SKIP_VAR
/// says to skip, otherwise a missing reference fails the test with the reason.
fn reference_python(test: &str) -> Option<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let python = std::env::var("HONE_PYTHON").map_err(|_| {
            "HONE_PYTHON is not set (run scripts/setup.sh, which writes it into .cargo/config.toml)"
                .to_owned()
        })?;
        let out = Command::new(&python)
            .args(["-c", "import cv2, numpy"])
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{python} cannot import cv2 (scripts/setup_python.sh installs \
                 opencv-python-headless): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PathBuf::from(python))
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED {test}: {why} ({SKIP_VAR}=1)");
            None
        }
        Err(why) => panic!("{test} needs Python with OpenCV: {why} (set {SKIP_VAR}=1 to skip)"),
    }
}

/// One frame to resize: its shape, its bytes, the shape to resize to, and a name for messages.
struct Case {
    name: String,
    src: Vec<u8>,
    src_hw: (usize, usize),
    dst_hw: (usize, usize),
}

/// cv2.resize of every case, in one Python process.
fn opencv_resize(python: &PathBuf, test: &str, cases: &[Case]) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("hone-envs-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.bin"), dir.join("out.bin"));
    let mut data = Vec::new();
    for case in cases {
        let (sh, sw) = case.src_hw;
        let (dh, dw) = case.dst_hw;
        for v in [sh, sw, dh, dw] {
            data.extend_from_slice(&u32::try_from(v).unwrap().to_le_bytes());
        }
        data.extend_from_slice(&case.src);
    }
    std::fs::write(&input, data).unwrap();
    let out = Command::new(python)
        .args(["-c", REFERENCE])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("starting the reference Python");
    assert!(
        out.status.success(),
        "the cv2.resize reference failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{test}: against OpenCV {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let results = std::fs::read(&output).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut pos = 0;
    let split = cases
        .iter()
        .map(|case| {
            let n = case.dst_hw.0 * case.dst_hw.1;
            pos += n;
            results[pos - n..pos].to_vec()
        })
        .collect();
    assert_eq!(
        pos,
        results.len(),
        "the reference wrote {} bytes",
        results.len()
    );
    split
}

/// Resizes every case with hone and with OpenCV and lists every case that differs.
fn check_against_opencv(test: &str, cases: &[Case]) {
    let Some(python) = reference_python(test) else {
        return;
    };
    let expected = opencv_resize(&python, test, cases);
    let mut failures = Vec::new();
    for (case, want) in cases.iter().zip(&expected) {
        let ((sh, sw), (dh, dw)) = (case.src_hw, case.dst_hw);
        let resize = AreaResize::new(sh, sw, dh, dw);
        let mut got = vec![0u8; dh * dw];
        resize.apply(&case.src, &mut got);
        // Twice, into a dirty buffer: apply keeps no state between calls.
        got.fill(0xA5);
        resize.apply(&case.src, &mut got);
        let mut once = vec![0u8; dh * dw];
        resize_area_u8(&case.src, sh, sw, &mut once, dh, dw);
        assert_eq!(
            got, once,
            "{}: resize_area_u8 differs from AreaResize",
            case.name
        );
        if got != *want {
            let diffs: Vec<_> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
            let i = diffs[0];
            failures.push(format!(
                "{} ({sh}×{sw} → {dh}×{dw}): {} of {} pixels differ, first at ({}, {}): hone {} \
                 OpenCV {}",
                case.name,
                diffs.len(),
                got.len(),
                i / dw,
                i % dw,
                got[i],
                want[i]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from cv2.resize:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// SplitMix64, for reproducible frames.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn frame(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The shapes every kind of frame is resized through: (src_h, src_w, dst_h, dst_w).
const SHAPES: &[(usize, usize, usize, usize)] = &[
    // envpool's Atari frames (the 250-row ones are a few games' screens).
    (210, 160, 84, 84),
    (250, 160, 84, 84),
    // Integer factors (resizeAreaFast_): 2×2 with its rounding, then 3, 4, 5, 6, 7 and mixed.
    (168, 168, 84, 84),
    (210, 160, 105, 80),
    (252, 252, 84, 84),
    (210, 160, 70, 40),
    (420, 320, 84, 64),
    (255, 255, 85, 51),
    (504, 84, 84, 84),
    (588, 84, 84, 12),
    (84, 168, 84, 84),
    // Non-integer factors (resizeArea_), including one axis integer and the other not.
    (210, 160, 84, 160),
    (210, 160, 210, 84),
    (210, 160, 100, 100),
    (211, 163, 83, 79),
    (85, 85, 84, 84),
    (100, 37, 13, 29),
    (160, 210, 84, 84),
    (10, 7, 3, 3),
    (3, 3, 2, 2),
    // Edge shapes: one row or column, a single pixel, the same size (a copy).
    (1, 160, 1, 84),
    (210, 1, 84, 1),
    (7, 5, 1, 1),
    (1, 1, 1, 1),
    (210, 160, 210, 160),
];

fn cases_for(name: &str, make: &mut dyn FnMut(usize, usize) -> Vec<u8>) -> Vec<Case> {
    SHAPES
        .iter()
        .map(|&(sh, sw, dh, dw)| Case {
            name: format!("{name} {sh}x{sw}->{dh}x{dw}"),
            src: make(sh, sw),
            src_hw: (sh, sw),
            dst_hw: (dh, dw),
        })
        .collect()
}

#[test]
fn area_resize_matches_opencv_on_random_frames() {
    let mut rng = Rng(23);
    let mut cases = Vec::new();
    for seed in 0..3 {
        cases.extend(cases_for(&format!("random#{seed}"), &mut |h, w| {
            rng.frame(h * w)
        }));
    }
    // Random shapes (downscales, as the port covers), a few with integer factors.
    for i in 0..60 {
        let (dh, dw) = (1 + rng.below(90), 1 + rng.below(90));
        let (sh, sw) = if i % 6 == 0 {
            (dh * (1 + rng.below(4)), dw * (1 + rng.below(4)))
        } else {
            (dh + rng.below(200), dw + rng.below(200))
        };
        cases.push(Case {
            name: format!("random shape #{i}"),
            src: rng.frame(sh * sw),
            src_hw: (sh, sw),
            dst_hw: (dh, dw),
        });
    }
    // Frames with few distinct values, like Atari screens after grayscale.
    for (i, &(sh, sw, dh, dw)) in SHAPES.iter().enumerate().take(4) {
        let palette = [0u8, 87, 142, 214, 255];
        let src = (0..sh * sw)
            .map(|_| palette[rng.below(palette.len())])
            .collect();
        cases.push(Case {
            name: format!("palette #{i}"),
            src,
            src_hw: (sh, sw),
            dst_hw: (dh, dw),
        });
    }
    check_against_opencv("area_resize_matches_opencv_on_random_frames", &cases);
}

#[test]
fn area_resize_matches_opencv_on_constant_and_gradient_frames() {
    let mut cases = Vec::new();
    for value in [0u8, 1, 127, 128, 254, 255] {
        cases.extend(cases_for(&format!("constant {value}"), &mut |h, w| {
            vec![value; h * w]
        }));
    }
    cases.extend(cases_for("horizontal ramp", &mut |h, w| {
        (0..h * w)
            .map(|i| ((i % w) * 255 / (w - 1).max(1)) as u8)
            .collect()
    }));
    cases.extend(cases_for("vertical ramp", &mut |h, w| {
        (0..h * w)
            .map(|i| ((i / w) * 255 / (h - 1).max(1)) as u8)
            .collect()
    }));
    cases.extend(cases_for("diagonal", &mut |h, w| {
        (0..h * w).map(|i| (i / w + i % w) as u8).collect()
    }));
    // Checkerboards: sums that land on halves, where the rounding rule shows.
    for (name, lo, hi) in [
        ("checkerboard 0/255", 0u8, 255u8),
        ("checkerboard 0/1", 0, 1),
    ] {
        cases.extend(cases_for(name, &mut |h, w| {
            (0..h * w)
                .map(|i| if (i / w + i % w) % 2 == 0 { lo } else { hi })
                .collect()
        }));
    }
    cases.extend(cases_for("stripes", &mut |h, w| {
        (0..h * w)
            .map(|i| if (i % w) % 3 == 0 { 255 } else { 0 })
            .collect()
    }));
    check_against_opencv(
        "area_resize_matches_opencv_on_constant_and_gradient_frames",
        &cases,
    );
}

#[test]
fn area_resize_rounds_as_opencv_does() {
    // 2×2 blocks (ResizeAreaFastVec): (0 + 0 + 0 + 2 + 2) >> 2 = 1, half up.
    let mut out = [0u8; 1];
    resize_area_u8(&[0, 0, 0, 2], 2, 2, &mut out, 1, 1);
    assert_eq!(out, [1]);
    // Other integer blocks: saturate_cast<uchar>(sum * 0.125f), half to even: 20/8 = 2.5 → 2,
    // 12/8 = 1.5 → 2.
    let mut out = [0u8; 2];
    let src = [2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 2, 2, 2, 2];
    resize_area_u8(&src, 2, 8, &mut out, 1, 2);
    assert_eq!(out, [2, 2]);
    // Constant frames stay constant through the weighted path.
    let resize = AreaResize::new(210, 160, 84, 84);
    assert_eq!(
        (resize.src_shape(), resize.dst_shape()),
        ((210, 160), (84, 84))
    );
    let mut out = vec![0u8; 84 * 84];
    for value in [0u8, 1, 77, 255] {
        resize.apply(&vec![value; 210 * 160], &mut out);
        assert!(out.iter().all(|&v| v == value), "constant {value}");
    }
}

#[test]
#[should_panic(expected = "upscales")]
fn area_resize_rejects_upscaling() {
    AreaResize::new(84, 84, 210, 84);
}

#[test]
#[should_panic(expected = "source of")]
fn area_resize_rejects_a_source_of_the_wrong_length() {
    AreaResize::new(210, 160, 84, 84).apply(&[0; 100], &mut [0; 84 * 84]);
}

#[test]
fn max_pool_takes_the_elementwise_maximum() {
    let a = [0u8, 5, 255, 7, 128];
    let b = [1u8, 5, 0, 200, 127];
    let mut out = [0u8; 5];
    max_pool_u8(&a, &b, &mut out);
    assert_eq!(out, [1, 5, 255, 200, 128]);
}
