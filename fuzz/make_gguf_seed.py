"""Writes fuzz/corpus/gguf/tiny-llama.gguf, the GGUF seed of the fuzzers, with llama.cpp's own
writer (the package gguf 0.19.0, in hone's Python environment): one llama layer (hidden 8, 2
heads of 4, 1 key/value head, MLP 32), an 8-token byte-level BPE tokenizer, tensors in F32, F16
and Q8_0.

    ~/.cache/hone/python-torch-2.11.0/bin/python fuzz/make_gguf_seed.py
"""

from pathlib import Path

import gguf
import numpy as np

HIDDEN, HEADS, KV_HEADS, FFN, VOCAB = 8, 2, 1, 32, 8
OUT = Path(__file__).parent / "corpus" / "gguf" / "tiny-llama.gguf"


def weights(*shape: int) -> np.ndarray:
    n = int(np.prod(shape))
    return (np.sin(np.arange(n, dtype=np.float32) * 0.37) * 0.1).reshape(shape)


def main() -> None:
    w = gguf.GGUFWriter(str(OUT), "llama")
    w.add_context_length(32)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_block_count(1)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(["<|endoftext|>", "a", "b", "c", "ab", "Ġ", "Ġa", "abc"])
    w.add_token_merges(["a b", "Ġ a", "ab c"])
    w.add_token_types([3, 1, 1, 1, 1, 1, 1, 1])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    head_dim = HIDDEN // HEADS
    w.add_tensor("token_embd.weight", weights(VOCAB, HIDDEN).astype(np.float16))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", weights(HIDDEN, HIDDEN))
    w.add_tensor("blk.0.attn_k.weight", weights(KV_HEADS * head_dim, HIDDEN))
    w.add_tensor("blk.0.attn_v.weight", weights(KV_HEADS * head_dim, HIDDEN))
    w.add_tensor("blk.0.attn_output.weight", weights(HIDDEN, HIDDEN))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", weights(FFN, HIDDEN))
    w.add_tensor("blk.0.ffn_up.weight", weights(FFN, HIDDEN))
    down = gguf.quants.quantize(weights(HIDDEN, FFN), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor(
        "blk.0.ffn_down.weight",
        down,
        raw_shape=down.shape,
        raw_dtype=gguf.GGMLQuantizationType.Q8_0,
    )
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{OUT}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
