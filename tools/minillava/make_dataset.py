#!/usr/bin/python3
"""Generates the MiniLLaVA procedural VQA dataset (deterministic for a given seed).

OUT/images/{train,val,test}/*.png   168x168 scenes; no scene appears in two splits
OUT/train.json, OUT/val.json        LLaVA training format (multi-question conversations)
OUT/test/                           the test split in LLaVA-1.5's evaluation formats:
  gqa_questions.jsonl + gqa_answers.json             colour / shape / count / position
  pope_questions.jsonl + pope_labels_<split>.jsonl   existence (random/popular/adversarial)
  textvqa_questions.jsonl + textvqa_annotations.json reading the painted number
  llava_test_CQM-I.json + problems.json              multiple choice, answer by letter
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import questions as Q  # noqa: E402
from scene import random_scene, render  # noqa: E402


def make_scenes(split, count, seed, seen):
    rng = random.Random(f"minillava-{seed}-{split}")
    scenes = []
    while len(scenes) < count:
        s = random_scene(rng)
        sig = s.signature()
        if sig in seen:  # keep splits (and images within a split) distinct
            continue
        seen.add(sig)
        scenes.append(s)
    return scenes, rng


def save_images(out, split, scenes):
    d = os.path.join(out, "images", split)
    os.makedirs(d, exist_ok=True)
    names = []
    for i, s in enumerate(scenes):
        name = f"{split}_{i:06d}.png"
        render(s).save(os.path.join(d, name), format="PNG")
        names.append(name)
    return names


def write_json(path, obj, indent=1):
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def training_split(out, split, scenes, rng):
    names = save_images(out, split, scenes)
    records = []
    for i, (s, name) in enumerate(zip(scenes, names)):
        qs = Q.all_questions(s, rng)
        rng.shuffle(qs)
        conv = []
        for k, q in enumerate(qs):
            text = Q.prompt_text(q)
            conv.append({"from": "human", "value": ("<image>\n" if k == 0 else "") + text})
            conv.append({"from": "gpt", "value": q["answer"]})
        # The scene itself (for the vision tower's warm-up objective in train.py).
        scene = {"objects": [[o.shape, o.colour, o.cell[0], o.cell[1]] for o in s.objects],
                 "number": s.number, "number_cell": list(s.number_cell) if s.number_cell else None}
        records.append({"id": f"{split}_{i:06d}", "image": f"images/{split}/{name}",
                        "types": [q["type"] for q in qs], "scene": scene, "conversations": conv})
    write_json(os.path.join(out, f"{split}.json"), records, indent=None)


def test_split(out, scenes, rng):
    names = save_images(out, "test", scenes)
    d = os.path.join(out, "test")
    os.makedirs(d, exist_ok=True)
    # POPE's "popular" negatives: the object names most frequent in this split.
    freq = {}
    for s in scenes:
        for o in s.objects:
            freq[o.name] = freq.get(o.name, 0) + 1
    popular = sorted(freq, key=lambda n: (-freq[n], n))
    gqa_q, gqa_a, pope_q, pope_l, text_q, text_a, sqa_q, sqa_p = [], {}, [], {}, [], [], [], {}
    gqa_makers = [Q.colour_q, Q.shape_q, Q.count_q, Q.position_q]
    splits = ["random", "popular", "adversarial"]
    for i, (s, name) in enumerate(zip(scenes, names)):
        for k in range(len(gqa_makers)):  # rotate through GQA-style types, skip inapplicable
            q = gqa_makers[(i + k) % len(gqa_makers)](s, rng)
            if q is not None:
                break
        qid = f"{i:06d}"
        gqa_q.append({"question_id": qid, "image": name, "text": Q.prompt_text(q), "category": q["type"]})
        # GQA's own annotations carry the question's structure in types.structural; here it
        # is the question type, so the scorer reports accuracy per type.
        gqa_a[qid] = {"answer": q["answer"], "types": {"structural": q["type"]}}

        split = splits[i % 3]
        q = Q.exist_q(s, rng, want_yes=(i // 3) % 2 == 0, split=split, popular=popular)
        pope_q.append({"question_id": i, "image": name, "text": Q.prompt_text(q), "category": split})
        pope_l.setdefault(split, []).append({"question_id": i, "label": q["answer"]})

        q = Q.read_q(s, rng)
        if q is not None:
            text_q.append({"question_id": i, "image": name, "text": Q.prompt_text(q), "category": "read"})
            text_a.append({"question_id": i, "answers": [q["answer"]] * 10})

        q = Q.mc_q(s, rng)
        if q is not None:
            pid = f"{i:06d}"
            sqa_q.append({"id": pid, "image": name, "conversations": [
                {"from": "human", "value": "<image>\n" + q["question"]},
                {"from": "gpt", "value": q["answer"]}]})
            sqa_p[pid] = {"question": q["sqa_question"], "choices": q["choices"], "answer": q["answer_index"],
                          "hint": Q.MC_CONTEXT, "image": name, "split": "test"}
    write_jsonl(os.path.join(d, "gqa_questions.jsonl"), gqa_q)
    write_json(os.path.join(d, "gqa_answers.json"), gqa_a)
    write_jsonl(os.path.join(d, "pope_questions.jsonl"), pope_q)
    for split in splits:
        write_jsonl(os.path.join(d, f"pope_labels_{split}.jsonl"), pope_l.get(split, []))
    write_jsonl(os.path.join(d, "textvqa_questions.jsonl"), text_q)
    write_json(os.path.join(d, "textvqa_annotations.json"), {"data": text_a})
    write_json(os.path.join(d, "llava_test_CQM-I.json"), sqa_q)
    write_json(os.path.join(d, "problems.json"), sqa_p)
    return {"gqa": len(gqa_q), "pope": len(pope_q), "textvqa": len(text_q), "sqa": len(sqa_q)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="dataset seed (same seed => identical files)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--train", type=int, default=20000, help="training images")
    ap.add_argument("--val", type=int, default=500, help="validation images")
    ap.add_argument("--test", type=int, default=600, help="test images")
    a = ap.parse_args()
    if min(a.train, a.val, a.test) < 0:
        ap.error("split sizes must be >= 0")
    os.makedirs(a.out, exist_ok=True)
    seen = set()
    for split, n in (("train", a.train), ("val", a.val)):
        scenes, rng = make_scenes(split, n, a.seed, seen)
        training_split(a.out, split, scenes, rng)
    scenes, rng = make_scenes("test", a.test, a.seed, seen)
    counts = test_split(a.out, scenes, rng)
    print(f"wrote {a.train} train, {a.val} val, {a.test} test images to {a.out}; test questions: {counts}")


if __name__ == "__main__":
    main()
