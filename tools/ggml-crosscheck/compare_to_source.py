#!/usr/bin/python3
"""Compares the tensors ggml dequantized from a `ficoco quantize` text GGUF (DUMP_DIR/<gguf name>.f32,
written by dump_with_ggml) with the llava-hf source checkpoint they came from (SRC_DIR/model.safetensors).

q/k rows are compared in llama.cpp's permuted order (what its converter writes and its RoPE expects);
vocabulary rows beyond the tokenizer's are not in the GGUF. Prints the relative RMS error per tensor
and exits non-zero when any exceeds --max-rel-err.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def load_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__" or v["dtype"] not in DTYPES:
            continue
        start, end = v["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + start:8 + n + end], dtype=DTYPES[v["dtype"]]).astype(np.float32).reshape(v["shape"])
    return out


def llama_cpp_rows(w, heads):
    """HF q/k rows -> llama.cpp's order (each head's two rotary halves interleaved)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("src", help="llava-hf directory (model.safetensors, config.json)")
    ap.add_argument("dump", help="directory of <tensor>.f32 files from dump_with_ggml")
    ap.add_argument("--max-rel-err", type=float, required=True)
    a = ap.parse_args()
    weights = load_safetensors(os.path.join(a.src, "model.safetensors"))
    cfg = json.load(open(os.path.join(a.src, "config.json")))["text_config"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    pre = "language_model.model."
    names = {"token_embd.weight": pre + "embed_tokens.weight", "output.weight": "language_model.lm_head.weight",
             "output_norm.weight": pre + "norm.weight"}
    for i in range(cfg["num_hidden_layers"]):
        for gguf, hf in [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
                         ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                         ("ffn_down", "mlp.down_proj"), ("attn_norm", "input_layernorm"),
                         ("ffn_norm", "post_attention_layernorm")]:
            names[f"blk.{i}.{gguf}.weight"] = f"{pre}layers.{i}.{hf}.weight"
    worst, bad = 0.0, []
    for gguf, hf in names.items():
        path = os.path.join(a.dump, gguf + ".f32")
        if not os.path.exists(path):
            bad.append(f"{gguf}: not in the GGUF")
            continue
        ref = weights[hf]
        if ".attn_q." in gguf:
            ref = llama_cpp_rows(ref, heads)
        elif ".attn_k." in gguf:
            ref = llama_cpp_rows(ref, kv_heads)
        got = np.fromfile(path, dtype=np.float32)
        if ref.ndim == 2:
            ref = ref[:got.size // ref.shape[1]]  # the GGUF holds the tokenizer's rows only
        if got.size != ref.size:
            bad.append(f"{gguf}: {got.size} values, source has {ref.size}")
            continue
        rel = float(np.sqrt(((got.reshape(ref.shape) - ref) ** 2).mean() / max(float((ref ** 2).mean()), 1e-30)))
        worst = max(worst, rel)
        print(f"{gguf:28s} relative RMS error {rel:.4f}")
        if rel > a.max_rel_err:
            bad.append(f"{gguf}: relative RMS error {rel:.4f} > {a.max_rel_err}")
    print(f"worst relative RMS error {worst:.4f} over {len(names)} tensors")
    for b in bad:
        print("PROBLEM:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
