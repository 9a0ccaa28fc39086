#!/usr/bin/python3
"""Accuracy of a MiniLLaVA checkpoint on the test split, per benchmark and category,
by greedy decoding in PyTorch (the engine's numbers come from `ficoco eval`).

An answer is right when the decoded text equals the expected answer exactly (after
stripping whitespace and a final '.'), i.e. the strictest form of every scorer.
"""
import argparse
import json
import os
import sys

import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentencepiece as spm  # noqa: E402
from model import MiniLlava, pixels_from_image  # noqa: E402
from template import EOS, inference_ids  # noqa: E402


def test_questions(data):
    """(benchmark, category, image, prompt text, expected answer) for the whole test split."""
    t = os.path.join(data, "test")
    out = []
    gqa_a = json.load(open(os.path.join(t, "gqa_answers.json")))
    for line in open(os.path.join(t, "gqa_questions.jsonl")):
        q = json.loads(line)
        out.append(("gqa", q["category"], q["image"], q["text"], gqa_a[q["question_id"]]["answer"]))
    labels = {}
    for split in ("random", "popular", "adversarial"):
        for line in open(os.path.join(t, f"pope_labels_{split}.jsonl")):
            r = json.loads(line)
            labels[r["question_id"]] = r["label"]
    for line in open(os.path.join(t, "pope_questions.jsonl")):
        q = json.loads(line)
        out.append(("pope", q["category"], q["image"], q["text"], labels[q["question_id"]]))
    text_a = {r["question_id"]: r["answers"][0] for r in json.load(open(os.path.join(t, "textvqa_annotations.json")))["data"]}
    for line in open(os.path.join(t, "textvqa_questions.jsonl")):
        q = json.loads(line)
        out.append(("textvqa", "read", q["image"], q["text"], text_a[q["question_id"]]))
    for r in json.load(open(os.path.join(t, "llava_test_CQM-I.json"))):
        text = r["conversations"][0]["value"].replace("<image>\n", "") + \
            "\nAnswer with the option's letter from the given choices directly."
        out.append(("sqa", "mc", r["image"], text, r["conversations"][1]["value"]))
    return out


@torch.no_grad()
def greedy_batch(model, sp, prompts, pix, image_id, max_new=4):
    """Greedy answers for same-length-or-not prompts, by recomputation (left-aligned,
    each row's next token read at its own last position)."""
    seqs = [list(p) for p in prompts]
    done = [False] * len(seqs)
    outs = [[] for _ in seqs]
    for _ in range(max_new):
        t = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), t), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
        logits = model(ids, pix)
        for i, s in enumerate(seqs):
            if done[i]:
                continue
            nxt = int(logits[i, len(s) - 1 + 143].argmax())
            if nxt == EOS:
                done[i] = True
            else:
                outs[i].append(nxt)
                s.append(nxt)
        if all(done):
            break
    return [sp.decode([i for i in o if i < sp.get_piece_size()]) for o in outs]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=0, help="questions per benchmark (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the per-benchmark results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ck = torch.load(a.ckpt)
    model = MiniLlava(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=ck["tokenizer"])
    image_id = ck["config"]["image_token_index"]
    qs = test_questions(a.data)
    if a.limit:
        seen = {}
        qs = [q for q in qs if seen.setdefault(q[0], []).append(q) or len(seen[q[0]]) <= a.limit]
    res = {}
    for i in range(0, len(qs), 8):
        chunk = qs[i:i + 8]
        pix = torch.stack([pixels_from_image(Image.open(os.path.join(a.data, "images", "test", q[2]))) for q in chunk])
        answers = greedy_batch(model, sp, [inference_ids(sp, q[3], image_id) for q in chunk], pix, image_id)
        for q, ans in zip(chunk, answers):
            ok = ans.strip().rstrip(".").strip().lower() == q[4].lower()
            for key in (q[0], f"{q[0]}/{q[1]}", "overall"):
                r = res.setdefault(key, [0, 0])
                r[0] += ok
                r[1] += 1
    for key in sorted(res):
        print(f"{key:24s} {res[key][0] / res[key][1] * 100:5.1f}%  ({res[key][0]}/{res[key][1]})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({k: {"correct": v[0], "total": v[1], "accuracy": v[0] / v[1]} for k, v in res.items()}, f, indent=2)


if __name__ == "__main__":
    main()
