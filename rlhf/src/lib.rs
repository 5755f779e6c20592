//! hone-rlhf: Llama-family models, generation, SFT and reward models, PPO-RLHF, ReMax and sharpening.
