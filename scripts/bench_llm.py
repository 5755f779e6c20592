#!/usr/bin/env python3
"""transformers' side of the LLM speed table (scripts/bench_llm.sh): the same measurements as
rlhf/examples/llm_speed.rs on the same checkpoint folder, float32 on CPU unless told.

    bench_llm.py <checkpoint_dir> [threads] [sft|gen8] [--device cuda] [--dtype bf16]
        sft: only the SFT step; gen8: only cached generation at batch 8, GEN8_RUNS runs;
        --device/--dtype place the model (the SFT step is always float32)
"""
import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

PROMPT, NEW_TOKENS = 64, 32
GEN8_RUNS = 4


def take(args, flag, default):
    if flag in args:
        i = args.index(flag)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return default


ARGS = sys.argv[1:]
DEVICE = take(ARGS, "--device", "cpu")
DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16}[take(ARGS, "--dtype", "f32")]


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def timed(runs, f, warm_up=True):
    if warm_up:
        f()
        sync()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        sync()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main(path, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPE).to(DEVICE).eval()
    vocab = model.config.vocab_size
    mode = ARGS[2] if len(ARGS) > 2 else "all"
    only_sft = mode == "sft"
    if mode == "gen8":
        ids = torch.randint(3, vocab, (8, PROMPT), device=DEVICE)
        mask = torch.ones_like(ids)

        def run():
            t = time.perf_counter()
            with torch.no_grad():
                model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                               max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                               use_cache=True, pad_token_id=0)
            sync()
            return time.perf_counter() - t

        run()
        seconds = [round(run(), 3) for _ in range(GEN8_RUNS)]
        print(json.dumps({"what": "gen8", "tokens": 8 * NEW_TOKENS, "seconds": seconds}))
        return
    for batch in () if only_sft else (1, 8):
        ids = torch.randint(3, vocab, (batch, PROMPT), device=DEVICE)
        mask = torch.ones_like(ids)

        def prefill():
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask, logits_to_keep=1)

        s = timed(3, prefill)
        print(json.dumps({"what": "prefill", "batch": batch, "tokens_per_s": batch * PROMPT / s}))
        for cache in (True, False):
            def gen():
                with torch.no_grad():
                    model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                   max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                   use_cache=cache, pad_token_id=0)

            s = timed(3 if cache else 1, gen, warm_up=cache)
            print(json.dumps({"what": "generate", "batch": batch, "cache": cache,
                              "tokens_per_s": batch * NEW_TOKENS / s}))
    model = model.float().train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-8)
    ids = torch.randint(3, vocab, (8, 256), device=DEVICE)

    # Each step's three phases are timed too (forward with the loss, backward, clipping with
    # Adam), to set beside hone's (rlhf/examples/llm_speed.rs prints the same fields).
    phases = []

    def step():
        laps = [time.perf_counter()]

        def split():
            sync()
            laps.append(time.perf_counter())

        optimiser.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        split()
        loss.backward()
        split()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        split()
        phases.append([b - a for a, b in zip(laps, laps[1:])])

    s = timed(2, step)
    # The mean over the timed steps (the first is the warm-up).
    mean = [round(statistics.mean(p), 3) for p in zip(*phases[1:])]
    print(json.dumps({"what": "sft_step", "batch": 8, "seq": 256, "seconds": s,
                      **dict(zip(("forward", "backward", "update"), mean))}))


if __name__ == "__main__":
    main(ARGS[0], int(ARGS[1]) if len(ARGS) > 1 else 2)
