//! Sharpening (Huang et al., ICLR 2025, "Self-Improvement in Language Models: The Sharpening
//! Mechanism"): the model's own log π(y|x) as the reward. Inference-time best-of-N picks, among
//! N sampled responses, the one the model itself finds most likely; its winners can become SFT
//! data (SFT-sharpening), and `reward.kind = "self"` in a run file is RLHF-sharpening.

use tch::Kind;

use crate::error::{Error, Result};
use crate::generate::{GenerateConfig, generate_repeated};
use crate::model::CausalLm;
use crate::rollout::decode_responses;
use crate::run::{Prompts, Tokens};
use crate::tasks::Rule;
use crate::tokenizer::{Tokenizer, left_pad};

/// N sampled responses of one prompt with their self-rewards, in sampling order.
#[derive(Clone, Debug)]
pub struct Candidates {
    pub texts: Vec<String>,
    /// log π(y|x) (the mean per token when length-normalised).
    pub scores: Vec<f64>,
}

impl Candidates {
    /// The best of the first `n` candidates (the earliest among ties).
    pub fn best_of(&self, n: usize) -> &str {
        let n = n.clamp(1, self.texts.len());
        let mut best = 0;
        for i in 1..n {
            if self.scores[i] > self.scores[best] {
                best = i;
            }
        }
        &self.texts[best]
    }
}

/// Samples `n` responses per prompt from `model` (`config.sampling` must be set) and scores
/// each by the model's own log-probability. Prompts go `batch_prompts` at a time (each
/// continued `n` times from one pass over it).
#[allow(clippy::too_many_arguments)]
pub fn sample_candidates(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &Prompts,
    tokens: &Tokens,
    n: usize,
    config: &GenerateConfig,
    length_normalised: bool,
    batch_prompts: usize,
) -> Result<Vec<Candidates>> {
    if n == 0 {
        return Err(Error::Parameter {
            name: "n",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    if config.sampling.is_none() {
        return Err(Error::Parameter {
            name: "sampling",
            value: "greedy".into(),
            expected: "sampled generation for best-of-N".into(),
        });
    }
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.ids.chunks(batch_prompts.max(1)) {
        // Each prompt is read once; its n samples continue from its cached keys and values.
        let (ids, mask) = left_pad(chunk, tokens.pad, model.device())?;
        let generated = generate_repeated(
            model,
            &ids,
            &mask,
            &tokens.eos,
            tokens.pad,
            &[(config, n as i64)],
        )?
        .remove(0);
        let (_, texts) = decode_responses(tokenizer, &generated)?;
        // The generation's log-probs are the model's own, before temperature and filters.
        let sums = generated
            .logprobs
            .f_sum_dim_intlist(1, false, Kind::Double)?;
        let lengths = generated
            .mask
            .f_sum_dim_intlist(1, false, Kind::Double)?
            .f_clamp_min(1.0)?;
        let scores = if length_normalised {
            sums.f_div(&lengths)?
        } else {
            sums
        };
        let scores = Vec::<f64>::try_from(scores)?;
        for (texts, scores) in texts.chunks(n).zip(scores.chunks(n)) {
            out.push(Candidates {
                texts: texts.to_vec(),
                scores: scores.to_vec(),
            });
        }
    }
    Ok(out)
}

/// Accuracy of best-of-n for each `n` in `ns` (each ≤ the candidates sampled).
pub fn accuracy_vs_n(
    candidates: &[Candidates],
    answers: &[Option<String>],
    rule: Rule,
    ns: &[usize],
) -> Result<Vec<(usize, f64)>> {
    ns.iter()
        .map(|&n| {
            let mut right = 0.0;
            for (c, answer) in candidates.iter().zip(answers) {
                let answer = answer.as_deref().ok_or_else(|| Error::Parameter {
                    name: "answer",
                    value: "missing".into(),
                    expected: "every prompt to have an answer to measure accuracy".into(),
                })?;
                right += rule.score(c.best_of(n), answer);
            }
            Ok((n, right / candidates.len().max(1) as f64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_of_n_takes_the_highest_score_among_the_first_n() {
        let c = Candidates {
            texts: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            scores: vec![-3.0, -1.0, -2.0, -0.5],
        };
        assert_eq!(c.best_of(1), "a");
        assert_eq!(c.best_of(2), "b");
        assert_eq!(c.best_of(3), "b");
        assert_eq!(c.best_of(4), "d");
        assert_eq!(c.best_of(9), "d");
        let answers = vec![Some("d".to_owned())];
        let acc = accuracy_vs_n(&[c], &answers, Rule::ExactMatch, &[1, 2, 4]).unwrap();
        assert_eq!(acc, [(1, 0.0), (2, 0.0), (4, 1.0)]);
    }
}
