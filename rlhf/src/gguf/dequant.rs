//! GGML's block formats, dequantised to f32.

/// GGML tensor types hone dequantises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Bf16,
}

impl GgmlType {
    pub(super) fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// Elements per block and bytes per block.
    pub(super) fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q8_0 => (32, 34),
        }
    }
}

fn f16(bytes: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f32()
}

/// GGML's reference dequantisation (ggml-quants.c) of whole blocks.
pub fn dequantize_blocks(kind: GgmlType, bytes: &[u8], numel: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(numel);
    match kind {
        GgmlType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        GgmlType::F16 => out.extend(bytes.chunks_exact(2).map(f16)),
        GgmlType::Bf16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)),
        ),
        GgmlType::Q8_0 => {
            for block in bytes.chunks_exact(34) {
                let d = f16(&block[..2]);
                out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for block in bytes.chunks_exact(18) {
                let d = f16(&block[..2]);
                let qs = &block[2..];
                out.extend(qs.iter().map(|&q| (f32::from(q & 0x0F) - 8.0) * d));
                out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for block in bytes.chunks_exact(20) {
                let d = f16(&block[..2]);
                let m = f16(&block[2..4]);
                let qs = &block[4..];
                out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
                out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float64 dequantisation written from the block layouts, for the kernels above.
    fn reference(kind: GgmlType, bytes: &[u8]) -> Vec<f64> {
        let h = |b: &[u8]| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64();
        let mut out = Vec::new();
        match kind {
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let size = if kind == GgmlType::Q4_0 { 18 } else { 20 };
                for block in bytes.chunks(size) {
                    let d = h(&block[0..2]);
                    let (m, qs) = if kind == GgmlType::Q4_0 {
                        (None, &block[2..])
                    } else {
                        (Some(h(&block[2..4])), &block[4..])
                    };
                    for j in 0..32 {
                        let nibble = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 } as f64;
                        out.push(match m {
                            None => (nibble - 8.0) * d,
                            Some(m) => nibble * d + m,
                        });
                    }
                }
            }
            GgmlType::Q8_0 => {
                for block in bytes.chunks(34) {
                    let d = h(&block[0..2]);
                    out.extend(block[2..].iter().map(|&q| (q as i8) as f64 * d));
                }
            }
            _ => unreachable!(),
        }
        out
    }

    fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn quantised_blocks_match_the_reference() {
        for (kind, size) in [
            (GgmlType::Q4_0, 18),
            (GgmlType::Q4_1, 20),
            (GgmlType::Q8_0, 34),
        ] {
            let mut bytes = pseudo_random_bytes(size * 5, size as u64);
            for block in bytes.chunks_mut(size) {
                // Finite scales: f16 0.0123 and -0.5.
                block[0..2].copy_from_slice(&half::f16::from_f32(0.0123).to_bits().to_le_bytes());
                if kind == GgmlType::Q4_1 {
                    block[2..4].copy_from_slice(&half::f16::from_f32(-0.5).to_bits().to_le_bytes());
                }
            }
            let got = dequantize_blocks(kind, &bytes, 160);
            let want = reference(kind, &bytes);
            assert_eq!(got.len(), 160);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{kind:?}: {g} vs {w}"
                );
            }
        }
    }
}
