#!/usr/bin/python3
"""Looks inside a MiniLLaVA training checkpoint on validation scenes, to find out why a
question type fails before changing the recipe (docs/minillava.md, "How the recipe got here").

For fresh questions about the first --images validation scenes (teacher-forced: the answer
predicted token by token from the true prefix, so "right" means every token and </s>):
  count     answers against the true count;
  position  right answers per expected answer (left/right/above/below), and the attention
            mass the supervised heads put on their targets (the checkpoint's LookPlan);
  mc        multiple-choice accuracy by the kind behind the options (colour/shape/count),
            and the look masses (object, option) by kind, on right and on wrong answers;
  plain     the same for colour and shape questions asked plainly (no options);
  probe     how well a linear probe reads each patch's grid row and column from the
            vision features and from the projected image tokens (held-out accuracy).

  diagnose.py --ckpt RUN/last.pt --data DATA [--images 300] [--only count,position,mc,plain,probe]
"""
import argparse
import collections
import os
import random
import sys

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentencepiece as spm  # noqa: E402
import train as T  # noqa: E402
from model import MiniLlava, pixels_from_image  # noqa: E402


def load(ckpt_path):
    ckpt = torch.load(ckpt_path)
    model = MiniLlava(ckpt["config"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    args = ckpt.get("args", {})
    plan = T.LookPlan(args.get("look_layer", -1), args.get("option_layer", -1), args.get("letter_layer", -1),
                      args.get("pair_look", False), ckpt["config"]["text"]["num_attention_heads"],
                      args.get("subject_look", False), args.get("count_sink", False))
    return model, ckpt, plan


def ask(model, sp, image_id, plan, sample, q):
    """One single-turn question: (every answer token right?, predicted text, [(layer, head, mass on targets)])."""
    turn = (T.Q.prompt_text(q), q["answer"], q["cells"], q["type"])
    ids, lab, pix, looks, _ = T.make_batch([dict(sample, turns=[turn])], sp, image_id, None, 1, False,
                                           single_turn=0, plan=plan)
    layers = model.language_model.model.layers
    for layer in layers:
        layer.self_attn.keep_probs = True
    logits = model(ids, pix)
    at = (lab[0, 1:] != -100).nonzero().flatten()  # positions whose next token is an answer token
    pred = logits[0, at].argmax(-1)
    masses = []
    for layer, head, _, query, groups in looks:
        probs = layers[layer].self_attn.probs[0, head, query]
        masses.append((layer, head, float(sum(float(probs[g].sum()) for _, g in groups))))
    for layer in layers:
        layer.self_attn.keep_probs, layer.self_attn.probs, layer.self_attn.heads_out = False, None, None
    # The embedding table is larger than the tokenizer (room for <image>): an untrained model can predict past it.
    ids = pred.tolist()
    text = (sp.decode(ids) if max(ids) < sp.get_piece_size()
            else " ".join(sp.id_to_piece(i) if i < sp.get_piece_size() else f"<id {i}>" for i in ids))
    return bool((pred == lab[0, at + 1]).all()), text, masses


def mean_masses(rows):
    by = collections.defaultdict(list)
    for masses in rows:
        for layer, head, m in masses:
            by[(layer, head)].append(m)
    return ", ".join(f"layer {l} head {h} {sum(v) / len(v):.2f}" for (l, h), v in sorted(by.items())) or "no looks"


def count_report(model, sp, image_id, plan, val, rng):
    table = collections.Counter()
    for s in val:
        q = T.Q.count_q(T.scene_object(s["scene"]), rng)
        _, text, _ = ask(model, sp, image_id, plan, s, q)
        table[(q["answer"], text.strip())] += 1
    print("count: true -> answered (questions)")
    for true in sorted({t for t, _ in table}):
        row = {a: n for (t, a), n in table.items() if t == true}
        print(f"  {true}: " + ", ".join(f"{a!r} {n}" for a, n in sorted(row.items(), key=lambda x: -x[1])))


def position_report(model, sp, image_id, plan, val, rng):
    right, total, masses = collections.Counter(), collections.Counter(), []
    for s in val:
        q = T.Q.position_q(T.scene_object(s["scene"]), rng)
        if q is None:
            continue
        ok, _, m = ask(model, sp, image_id, plan, s, q)
        right[q["answer"]] += ok
        total[q["answer"]] += 1
        masses.append(m)
    print("position: right / asked per expected answer: "
          + ", ".join(f"{a} {right[a]}/{total[a]}" for a in sorted(total)))
    print(f"  look mass on targets: {mean_masses(masses)}")


def by_kind_report(title, model, sp, image_id, plan, val, make):
    """Accuracy and look masses per kind of the questions make(scene) -> (kind, question) draws."""
    right, total = collections.Counter(), collections.Counter()
    masses = collections.defaultdict(list)
    for s in val:
        kind, q = make(T.scene_object(s["scene"]))
        if q is None:
            continue
        ok, _, m = ask(model, sp, image_id, plan, s, q)
        right[kind] += ok
        total[kind] += 1
        masses[(kind, ok)].append(m)
    print(f"{title}: right / asked per kind: " + ", ".join(f"{k} {right[k]}/{total[k]}" for k in sorted(total)))
    for (kind, ok), rows in sorted(masses.items()):
        print(f"  {kind}, {'right' if ok else 'wrong'} answers ({len(rows)}), look mass on targets: {mean_masses(rows)}")


def mc_report(model, sp, image_id, plan, val, rng):
    def make(scene):
        q = T.Q.mc_q(scene, rng)
        if q is None:
            return None, None
        return ("count" if T.is_count(q["question"]) else "colour" if "color" in q["sqa_question"] else "shape"), q
    by_kind_report("multiple choice", model, sp, image_id, plan, val, make)


def plain_report(model, sp, image_id, plan, val, rng):
    def make(scene):
        kind = rng.choice(["colour", "shape"])
        return kind, (T.Q.colour_q if kind == "colour" else T.Q.shape_q)(scene, rng)
    by_kind_report("plain colour/shape", model, sp, image_id, plan, val, make)


def probe_report(model, val):
    with torch.no_grad():
        pix = torch.stack([pixels_from_image(Image.open(s["image"])) for s in val])
        vision = model.vision_tower.vision_model.features(pix)
        projected = model.multi_modal_projector(vision)
    n_fit = len(val) * 2 // 3 * 144
    for name, x in (("vision features", vision), ("projected tokens", projected)):
        x = x.reshape(-1, x.shape[-1])
        x = (x - x.mean(0)) / (x.std(0) + 1e-5)
        scores = []
        for target in (T.PATCH_ROW, T.PATCH_COL):
            y = target.repeat(len(val))
            w = torch.zeros(x.shape[1], T.GRID, requires_grad=True)
            b = torch.zeros(T.GRID, requires_grad=True)
            opt = torch.optim.Adam([w, b], lr=0.05)
            for _ in range(300):
                loss = F.cross_entropy(x[:n_fit] @ w + b, y[:n_fit])
                opt.zero_grad()
                loss.backward()
                opt.step()
            scores.append(float(((x[n_fit:] @ w + b).argmax(-1) == y[n_fit:]).float().mean()))
        print(f"probe: grid row / column from {name}: {scores[0] * 100:.0f} % / {scores[1] * 100:.0f} % (held out)")


REPORTS = {"count": count_report, "position": position_report, "mc": mc_report, "plain": plain_report,
           "probe": None}  # probe needs no questions: main() calls probe_report(model, val)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="checkpoint from train.py (OUT/last.pt)")
    ap.add_argument("--data", required=True, help="dataset directory from make_dataset.py (uses val.json)")
    ap.add_argument("--tokenizer", help="SentencePiece model (default: the one the checkpoint names)")
    ap.add_argument("--images", type=int, default=300, help="validation scenes to ask about")
    ap.add_argument("--only", default="count,position,mc,plain,probe", help="comma-separated reports")
    ap.add_argument("--seed", type=int, default=1, help="seed of the fresh questions")
    a = ap.parse_args()
    unknown = [name for name in a.only.split(",") if name not in REPORTS]
    if unknown:
        sys.exit(f"--only: unknown report {unknown[0]!r} ({', '.join(REPORTS)})")
    if not os.path.isfile(a.ckpt):
        sys.exit(f"--ckpt {a.ckpt}: no such checkpoint (train.py writes OUT/last.pt)")
    if not os.path.isfile(os.path.join(a.data, "val.json")):
        sys.exit(f"--data {a.data}: no val.json there (a dataset directory from make_dataset.py)")
    model, ckpt, plan = load(a.ckpt)
    tokenizer = a.tokenizer or ckpt["tokenizer"]
    if not os.path.exists(tokenizer):
        sys.exit(f"tokenizer {tokenizer} (named by {a.ckpt}) not found: pass --tokenizer")
    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    val = T.load_split(a.data, "val")[:a.images]
    image_id = ckpt["config"]["image_token_index"]
    for name in a.only.split(","):
        if name == "probe":
            probe_report(model, val)
        else:
            with torch.no_grad():
                REPORTS[name](model, sp, image_id, plan, val, random.Random(a.seed))


if __name__ == "__main__":
    main()
