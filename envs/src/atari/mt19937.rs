//! envpool's no-op generator: C++'s `std::mt19937` and libstdc++'s
//! `std::uniform_int_distribution<int>`, bit for bit. envpool 1.2.7's Linux wheels are built
//! with GCC 14 (`strings atari_envpool.so`), whose distribution is Lemire's nearly divisionless
//! method (`bits/uniform_int_dist.h`, GCC 11 and later; the same in the GCC 12 headers here).

/// `std::mt19937`: the 32-bit Mersenne Twister (MT19937), seeded as `std::mt19937(seed)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    const N: usize = 624;
    const M: usize = 397;

    /// `std::mt19937(seed)` (a C++ `int` seed converts to the same 32 bits).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; Self::N];
        state[0] = seed;
        for i in 1..Self::N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            state,
            index: Self::N,
        }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..Self::N {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % Self::N] & LOWER);
            let mag = if y & 1 == 0 { 0 } else { 0x9908_b0df };
            self.state[i] = self.state[(i + Self::M) % Self::N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next 32-bit output (`gen()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= Self::N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// The generator's state as 625 words (624 state words and the index), for checkpoints.
    pub fn to_words(&self) -> [u32; 625] {
        let mut words = [0u32; 625];
        words[..Self::N].copy_from_slice(&self.state);
        words[Self::N] = self.index as u32;
        words
    }

    /// The generator [`to_words`](Self::to_words) wrote; `None` if the index is out of range.
    pub fn from_words(words: &[u32; 625]) -> Option<Self> {
        let index = words[Self::N] as usize;
        (index <= Self::N).then(|| {
            let mut state = [0u32; Self::N];
            state.copy_from_slice(&words[..Self::N]);
            Self { state, index }
        })
    }
}

/// `std::uniform_int_distribution<int>(low, high)(gen)` with libstdc++'s algorithm for a
/// generator of exactly 32 bits (`__urngrange == __UINT32_MAX__`). `low <= high`.
pub fn uniform_int(generator: &mut Mt19937, low: i32, high: i32) -> i32 {
    debug_assert!(low <= high);
    let range = high.wrapping_sub(low) as u32;
    let offset = if range == u32::MAX {
        // __urngrange == __urange: the raw output.
        generator.next_u32()
    } else {
        // _S_nd<uint64_t>(urng, range + 1).
        let erange = range + 1;
        let mut product = u64::from(generator.next_u32()) * u64::from(erange);
        let mut low_bits = product as u32;
        if low_bits < erange {
            let threshold = erange.wrapping_neg() % erange;
            while low_bits < threshold {
                product = u64::from(generator.next_u32()) * u64::from(erange);
                low_bits = product as u32;
            }
        }
        (product >> 32) as u32
    };
    low.wrapping_add(offset as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed once by a small C++17 program built with Debian's g++ 12.2.0
    // (libstdc++ 12): `std::mt19937 g(seed); g()` and
    // `std::uniform_int_distribution<> d(a, b); d(g)`.

    #[test]
    fn mt19937_matches_libstdcxx() {
        let mut g = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| g.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
        // The C++ standard's check: the 10000th output of a default-seeded mt19937.
        for _ in 3..9999 {
            g.next_u32();
        }
        assert_eq!(g.next_u32(), 4_123_659_995);

        let cases: [(u32, [u32; 4]); 4] = [
            (
                0,
                [2_357_136_044, 2_546_248_239, 3_071_714_933, 3_626_093_760],
            ),
            (7, [327_741_615, 976_413_892, 3_349_725_721, 1_369_975_286]),
            (
                42,
                [1_608_637_542, 3_421_126_067, 4_083_286_876, 787_846_414],
            ),
            (
                u32::MAX,
                [419_326_371, 479_346_978, 3_918_654_476, 2_416_749_639],
            ),
        ];
        for (seed, expected) in cases {
            let mut g = Mt19937::new(seed);
            let got: Vec<u32> = (0..4).map(|_| g.next_u32()).collect();
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    #[test]
    fn uniform_int_matches_libstdcxx() {
        let draw = |seed: u32, low: i32, high: i32, n: usize| {
            let mut g = Mt19937::new(seed);
            let values: Vec<i32> = (0..n).map(|_| uniform_int(&mut g, low, high)).collect();
            (values, g.next_u32())
        };
        // One raw draw per value (no rejection in these), so the generator ends where C++'s did.
        let after_12 = 249_467_210;
        assert_eq!(draw(42, 0, 0, 12), (vec![0; 12], after_12));
        assert_eq!(
            draw(42, 0, 29, 12),
            (vec![11, 23, 28, 5, 21, 23, 17, 17, 4, 13, 4, 2], after_12)
        );
        assert_eq!(
            draw(42, 0, 5, 12),
            (vec![2, 4, 5, 1, 4, 4, 3, 3, 0, 2, 0, 0], after_12)
        );
        assert_eq!(
            draw(42, 0, 1_000_000, 12).0,
            [
                374_540, 796_543, 950_715, 183_434, 731_994, 779_691, 598_659, 596_850, 156_018,
                445_833, 155_994, 99_975
            ]
        );
        assert_eq!(
            draw(42, 0, i32::MAX - 1, 4).0,
            [804_318_770, 1_710_563_032, 2_041_643_437, 393_923_206]
        );
        assert_eq!(
            draw(1, -5, 5, 12).0,
            [-1, 5, 2, 5, -5, -4, -2, 5, -4, -3, -4, -1]
        );
        // A range of 2^31 + 1 rejects about half the raw draws: the rejection loop is exercised.
        assert_eq!(
            draw(3, i32::MIN, 0, 10),
            (
                vec![
                    -964_654_155,
                    -1_050_489_728,
                    -1_208_900_279,
                    -222_708_891,
                    -2_107_222_603,
                    -1_877_791_236,
                    -2_060_229_804,
                    -1_615_147_574,
                    -2_036_958_661,
                    -655_361_206
                ],
                128_317_356
            )
        );
        // The full range is the raw output.
        assert_eq!(
            draw(3, i32::MIN, i32::MAX, 4).0,
            [218_175_338, -1_843_722_600, 893_988_089, 1_460_070_019]
        );
    }

    #[test]
    fn words_round_trip() {
        let mut g = Mt19937::new(9);
        for _ in 0..700 {
            g.next_u32();
        }
        let mut copy = Mt19937::from_words(&g.to_words()).unwrap();
        assert_eq!(copy.next_u32(), g.next_u32());
        let mut bad = g.to_words();
        bad[624] = 625;
        assert!(Mt19937::from_words(&bad).is_none());
    }
}
