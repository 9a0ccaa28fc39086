#!/usr/bin/env python3
"""Compares one `ficoco run --json --dump` result with one run_with_llamacpp result (standard library only).

    compare.py --ficoco-json F.json --ficoco-dump F.safetensors --llama-json L.json --llama-logits L.f32
               --gguf TEXT.gguf [--max-logit-diff X] [--min-same-tokens K] [--label NAME]

* prompt ids: ficoco prints none, so they are recovered from its dumped `llm.inputs_embeds`: each
  row that equals a row of the GGUF's (F16/F32) token_embd is that token; the other rows are image
  tokens. They must equal llama.cpp's text ids, with the same number of image rows.
* logits at the last prompt position: max |ficoco - llama.cpp|, and both argmaxes.
* greedy tokens: the common prefix of the generated ids.
* with --llama-embd: the image's projected embeddings (llama.cpp's mtmd output vs ficoco's
  projector.image_features), which isolates the vision side.
Exits 1 when the ids differ or the limits given are exceeded; prints one line of JSON.
"""
import argparse
import array
import json
import struct
import sys

from gguf_header import GgufHeader


def read_safetensors(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        meta = header[name]
        if meta["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {meta['dtype']}, expected F32")
        begin, end = meta["data_offsets"]
        f.seek(8 + n + begin)
        a = array.array("f")
        a.frombytes(f.read(end - begin))
        return meta["shape"], a


def gguf_token_embd(path):
    """(n_embd, rows as bytes of f16 values) of token_embd.weight."""
    with open(path, "rb") as f:
        h = GgufHeader(f, path)
        dims, ttype, off = h.tensors["token_embd.weight"]
        n_embd, n_rows = dims[0], dims[1]
        f.seek(h.data_start + off)
        if ttype == 1:  # F16
            raw = f.read(n_embd * n_rows * 2)
            return n_embd, [raw[i * n_embd * 2:(i + 1) * n_embd * 2] for i in range(n_rows)]
        if ttype == 0:  # F32 -> f16 bytes when exact
            a = array.array("f")
            a.frombytes(f.read(n_embd * n_rows * 4))
            return n_embd, [struct.pack(f"<{n_embd}e", *a[i * n_embd:(i + 1) * n_embd]) for i in range(n_rows)]
        raise SystemExit(f"{path}: token_embd.weight has ggml type {ttype}; recover ids from an F16 file")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ficoco-json", required=True)
    p.add_argument("--ficoco-dump", required=True)
    p.add_argument("--llama-json", required=True)
    p.add_argument("--llama-logits", required=True)
    p.add_argument("--llama-embd", help="run_with_llamacpp --embd-out file: compared with projector.image_features")
    p.add_argument("--ficoco-ref-dump", help="ficoco dump of the F16 file: reports how far quantization moves ficoco's logits")
    p.add_argument("--gguf", help="text GGUF whose token_embd identifies ficoco's prompt rows (F16/F32)")
    p.add_argument("--max-logit-diff", type=float)
    p.add_argument("--min-same-tokens", type=int)
    p.add_argument("--label", default="")
    a = p.parse_args()
    fj = json.load(open(a.ficoco_json, encoding="utf-8", errors="replace"))
    lj = json.load(open(a.llama_json, encoding="utf-8", errors="replace"))
    _, fl = read_safetensors(a.ficoco_dump, "llm.logits_last")
    ll = array.array("f")
    ll.frombytes(open(a.llama_logits, "rb").read())
    out = {"label": a.label}
    ok = True
    llama_ids = [i for part in lj["prompt_text_ids"] for i in part]
    if a.gguf:
        n_embd, rows = gguf_token_embd(a.gguf)
        index = {}
        for i, r in enumerate(rows):
            index.setdefault(r, i)
        shape, emb = read_safetensors(a.ficoco_dump, "llm.inputs_embeds")
        ficoco_ids, image_rows = [], 0
        for r in range(shape[-2]):
            key = struct.pack(f"<{n_embd}e", *emb[r * n_embd:(r + 1) * n_embd])
            if key in index and struct.unpack(f"<{n_embd}e", key) == tuple(emb[r * n_embd:(r + 1) * n_embd]):
                ficoco_ids.append(index[key])
            else:
                image_rows += 1
        out["prompt_ids_equal"] = ficoco_ids == llama_ids
        out["image_tokens"] = {"ficoco": image_rows, "llama.cpp": lj["image_tokens"]}
        out["text_tokens"] = len(llama_ids)
        if ficoco_ids != llama_ids or image_rows != lj["image_tokens"]:
            ok = False
            out["ficoco_prompt_ids"] = ficoco_ids
            out["llama_prompt_ids"] = llama_ids
    if a.llama_embd:
        _, fe = read_safetensors(a.ficoco_dump, "projector.image_features")
        le = array.array("f")
        le.frombytes(open(a.llama_embd, "rb").read())
        if len(le) != len(fe):
            out["image_embd"] = f"sizes differ: ficoco {len(fe)}, llama.cpp {len(le)}"
            ok = False
        else:
            d = [abs(x - y) for x, y in zip(fe, le)]
            out["image_embd"] = {"max_abs_diff": round(max(d), 6), "mean_abs_diff": round(sum(d) / len(d), 6),
                                 "max_abs": round(max(abs(x) for x in fe), 4)}
    n = min(len(fl), len(ll))
    diffs = [abs(fl[i] - ll[i]) for i in range(n)]
    md = max(diffs)
    scale = max(abs(x) for x in fl[:n])
    out["n_vocab"] = {"ficoco": len(fl), "llama.cpp": len(ll)}
    out["max_abs_logit_diff"] = round(md, 6)
    out["max_abs_logit"] = round(scale, 4)
    out["mean_abs_logit_diff"] = round(sum(diffs) / n, 6)
    af = max(range(n), key=lambda i: fl[i])
    al = max(range(n), key=lambda i: ll[i])
    out["argmax"] = {"ficoco": af, "llama.cpp": al}
    if a.ficoco_ref_dump:
        _, rl = read_safetensors(a.ficoco_ref_dump, "llm.logits_last")
        out["ficoco_vs_its_f16_max_abs_diff"] = round(max(abs(x - y) for x, y in zip(fl, rl)), 6)
    g1, g2 = fj["generated_ids"], lj["generated_ids"]
    same = 0
    while same < min(len(g1), len(g2)) and g1[same] == g2[same]:
        same += 1
    out["greedy_same_prefix"] = f"{same}/{max(len(g1), len(g2))}"
    out["answers"] = {"ficoco": fj["answer"], "llama.cpp": lj["answer"]}
    if a.max_logit_diff is not None and md > a.max_logit_diff:
        ok = False
    if a.min_same_tokens is not None and same < min(a.min_same_tokens, len(g1), len(g2)):
        ok = False
    out["ok"] = ok
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
