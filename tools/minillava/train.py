#!/usr/bin/python3
"""Trains MiniLLaVA from scratch on the procedural dataset (CPU, deterministic seed).

Stage 1 (vision warm-up, like CLIP's pre-training stands in for LLaVA's): the vision
tower alone learns, from every patch of its layer -2 output, what its 56-px grid cell
holds (colour, shape or "number", and the two digits), through throw-away linear heads.
Stage 2 (LLaVA's instruction tuning): the vision tower is frozen; projector and LLaMA
decoder learn from multi-turn LLaVA-1.5 conversations (the first turn is exactly the
inference prompt), cross-entropy on the answer tokens and their </s>.

Both stages stop at their step count or their time budget, whichever comes first (the
machine is shared: the schedules follow the larger of the two progress fractions, so a
run is reproducible only when it ends by steps). OUT/last.pt holds the weights, config,
tokenizer path and the stage reached; it is rewritten every --save-every steps.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentencepiece as spm  # noqa: E402
from model import DEFAULT_CONFIG, MiniLlava, pixels_from_image  # noqa: E402
from scene import COLOURS, GRID, SHAPES  # noqa: E402
from template import conversation_ids  # noqa: E402

COLOUR_IDS = {c: i for i, c in enumerate(COLOURS)}
SHAPE_IDS = {s: i for i, s in enumerate(SHAPES)}
NUMBER_SHAPE = len(SHAPES)  # "shape" class of the number's cell; len+1 = empty


def load_split(data, split):
    with open(os.path.join(data, f"{split}.json")) as f:
        records = json.load(f)
    out = []
    for r in records:
        conv = r["conversations"]
        turns = [(conv[i]["value"].replace("<image>\n", ""), conv[i + 1]["value"]) for i in range(0, len(conv), 2)]
        out.append({"image": os.path.join(data, r["image"]), "turns": turns, "types": r["types"],
                    "scene": r["scene"]})
    return out


def cell_labels(scene):
    """[4, 9] per-cell targets: colour (8 = none), shape (5 = number, 6 = empty), tens, units (10 = none)."""
    lab = torch.tensor([[len(COLOURS)] * 9, [NUMBER_SHAPE + 1] * 9, [10] * 9, [10] * 9])
    for shape, colour, r, c in scene["objects"]:
        lab[0, r * GRID + c] = COLOUR_IDS[colour]
        lab[1, r * GRID + c] = SHAPE_IDS[shape]
    if scene["number"] is not None:
        r, c = scene["number_cell"]
        lab[1, r * GRID + c] = NUMBER_SHAPE
        lab[2, r * GRID + c] = int(scene["number"][0])
        lab[3, r * GRID + c] = int(scene["number"][1])
    return lab


# Patch index -> grid cell (12x12 patches, 3x3 cells of 4x4 patches).
PATCH_CELL = torch.tensor([(p // 12 // 4) * GRID + (p % 12) // 4 for p in range(144)])


class CellHeads(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, n) for n in (len(COLOURS) + 1, NUMBER_SHAPE + 2, 11, 11)])

    def loss(self, feats, labels):
        """feats [B, 144, D]; labels [B, 4, 9]. Every patch predicts its cell."""
        total, right = 0.0, []
        for k, head in enumerate(self.heads):
            tgt = labels[:, k, PATCH_CELL]  # [B, 144]
            logits = head(feats)
            total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
            right.append((logits.argmax(-1) == tgt).float().mean())
        return total, right


def word_targets(sp):
    """Token ids naming each cell class: colour words, shape words, digit pieces."""
    last = lambda w: sp.encode(w)[-1]  # noqa: E731  ("4" encodes as "▁", "4")
    return ([last(c) for c in COLOURS], [last(s) for s in SHAPES], [last(str(d)) for d in range(10)])


def align_loss(model, features, scenes, targets):
    """Alignment of image tokens with words (LLaVA's stage 1 aligns the projector with the
    LLM; here the LLM is new too): each patch's projected feature, scored against the input
    embedding table, should name its cell's colour and shape (or its number's digits)."""
    proj = model.multi_modal_projector(features)  # [B, 144, D]
    logits = proj @ model.language_model.model.embed_tokens.weight.t()
    colour_ids, shape_ids, digit_ids = targets
    tgts = []
    for lab in (cell_labels(s) for s in scenes):
        rows = []
        for cell in range(GRID * GRID):
            c, sh, tens, units = (int(lab[k, cell]) for k in range(4))
            if sh < NUMBER_SHAPE:
                rows.append([colour_ids[c], shape_ids[sh]])
            elif sh == NUMBER_SHAPE:
                rows.append([digit_ids[tens], digit_ids[units]])
            else:
                rows.append([-100, -100])
        tgts.append(torch.tensor(rows)[PATCH_CELL])  # [144, 2]
    tgt = torch.stack(tgts)
    flat = logits.reshape(-1, logits.shape[-1])
    return sum(F.cross_entropy(flat, tgt[..., k].reshape(-1), ignore_index=-100) for k in range(2)) / 2


def make_batch(samples, sp, image_id, rng, max_turns, single=False, min_turns=1):
    seqs, labs, pix = [], [], []
    for s in samples:
        turns = list(s["turns"])
        rng.shuffle(turns)
        most = min(max_turns, len(turns))
        k = 1 if single else rng.randint(min(min_turns, most), most)
        ids, labels = conversation_ids(sp, turns[:k], image_id)
        p = ids.index(image_id)
        labels = labels[:p] + [-100] * 144 + labels[p + 1:]  # image features take 144 positions
        seqs.append(ids)
        labs.append(labels)
        pix.append(pixels_from_image(Image.open(s["image"])))
    t = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), t), 0, dtype=torch.long)
    lab = torch.full((len(seqs), t + 143), -100, dtype=torch.long)
    for i, (x, y) in enumerate(zip(seqs, labs)):
        ids[i, :len(x)] = torch.tensor(x)
        lab[i, :len(y)] = torch.tensor(y)
    return ids, lab, torch.stack(pix)


def loss_and_acc(model, ids, lab, pix, features=None):
    """Answer-token cross-entropy; lm_head runs only where a label is (the rest is never scored)."""
    h = model.hidden(ids, pix, features)[:, :-1]
    tg = lab[:, 1:]
    where = (tg != -100).nonzero(as_tuple=True)
    logits = model.language_model.lm_head(h[where])
    target = tg[where]
    loss = F.cross_entropy(logits, target)
    wrong = torch.zeros(ids.shape[0], dtype=torch.bool)
    wrong.index_put_((where[0],), logits.argmax(-1) != target, accumulate=True)
    return loss, ~wrong


@torch.no_grad()
def evaluate(model, val, sp, image_id, n, batch):
    """Teacher-forced first-turn exact-answer accuracy (every answer token and </s>)."""
    model.eval()
    rng = random.Random(1234)
    right = total = 0
    for i in range(0, min(n, len(val)), batch):
        chunk = val[i:i + batch]
        ids, lab, pix = make_batch(chunk, sp, image_id, rng, 1, single=True)
        _, ok = loss_and_acc(model, ids, lab, pix)
        right += int(ok.sum())
        total += len(chunk)
    model.train()
    return right / max(total, 1)


def schedule(progress, warm, base):
    return base * min(1.0, warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset directory from make_dataset.py")
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model from train_tokenizer.py")
    ap.add_argument("--out", required=True, help="checkpoint directory")
    ap.add_argument("--vision-steps", type=int, default=600, help="stage 1 steps")
    ap.add_argument("--vision-minutes", type=float, default=1e9, help="stage 1 time budget")
    ap.add_argument("--vision-batch", type=int, default=32)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=3000, help="stage 2 steps")
    ap.add_argument("--minutes", type=float, default=1e9, help="stage 2 time budget")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-turns", type=int, default=8, help="most questions per conversation")
    ap.add_argument("--min-turns", type=int, default=1, help="fewest questions per conversation (if the image has them)")
    ap.add_argument("--align-weight", type=float, default=1.0, help="weight of the image-word alignment loss in stage 2")
    ap.add_argument("--init", help="start from this checkpoint's weights (e.g. with --vision-steps 0 to continue stage 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--config", help="JSON file overriding parts of the model config")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    cfg = json.loads(json.dumps(DEFAULT_CONFIG))
    if a.config:
        with open(a.config) as f:
            cfg.update(json.load(f))
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    image_id = cfg["image_token_index"]
    if sp.get_piece_size() > image_id:
        sys.exit(f"tokenizer has {sp.get_piece_size()} pieces; image_token_index {image_id} must be past them")
    train = load_split(a.data, "train")
    val = load_split(a.data, "val")
    model = MiniLlava(cfg)
    if a.init:
        init = torch.load(a.init)
        if init["config"] != cfg:
            sys.exit(f"{a.init} has a different model config")
        model.load_state_dict(init["model"])
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; "
          f"{len(train)} train / {len(val)} val images", flush=True)
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, "last.pt")

    def save(stage, step):
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "stage": stage, "step": step, "config": cfg,
                    "tokenizer": os.path.abspath(a.tokenizer), "args": vars(a)}, tmp)
        os.replace(tmp, ckpt_path)

    order = []

    def next_batch(n):
        while len(order) < n:
            perm = list(range(len(train)))
            rng.shuffle(perm)
            order.extend(perm)
        out = [train[i] for i in order[:n]]
        del order[:n]
        return out

    # Stage 1: vision tower + cell heads.
    vision = model.vision_tower.vision_model
    heads = CellHeads(cfg["vision"]["hidden_size"])
    params = list(vision.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.vision_lr, betas=(0.9, 0.98), weight_decay=0.05)
    t0 = time.time()
    for step in range(a.vision_steps):
        progress = max(step / a.vision_steps, (time.time() - t0) / 60 / a.vision_minutes)
        if progress >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = schedule(progress, (step + 1) / 50, a.vision_lr)
        batch = next_batch(a.vision_batch)
        pix = torch.stack([pixels_from_image(Image.open(s["image"])) for s in batch])
        labels = torch.stack([cell_labels(s["scene"]) for s in batch])
        loss, right = heads.loss(vision.features(pix), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 10 == 0:
            print(f"vision step {step + 1} loss {float(loss):.4f} patch acc colour/shape/tens/units "
                  + "/".join(f"{float(r) * 100:.1f}" for r in right)
                  + f" {(time.time() - t0) / 60:.1f} min", flush=True)
    save(1, 0)

    # Stage 2: projector + language model on conversations; vision frozen.
    for p in vision.parameters():
        p.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.dim() >= 2]
    no_decay = [p for n, p in trainable if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98))
    targets = word_targets(sp)
    t0 = time.time()
    ema = None
    done = 0
    for step in range(a.steps):
        progress = max(step / a.steps, (time.time() - t0) / 60 / a.minutes)
        if progress >= 1:
            break
        lr = schedule(progress, (step + 1) / a.warmup, a.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = next_batch(a.batch)
        ids, lab, pix = make_batch(batch, sp, image_id, rng, a.max_turns, min_turns=a.min_turns)
        with torch.no_grad():
            feats = vision.features(pix)
        loss, ok = loss_and_acc(model, ids, lab, pix, feats)
        align = align_loss(model, feats, [s["scene"] for s in batch], targets) if a.align_weight > 0 else torch.zeros(())
        total = loss + a.align_weight * align
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        opt.step()
        done = step + 1
        ema = float(loss) if ema is None else 0.95 * ema + 0.05 * float(loss)
        if (step + 1) % 10 == 0:
            el = time.time() - t0
            print(f"step {step + 1} loss {float(loss):.4f} ema {ema:.4f} align {float(align):.3f} lr {lr:.2e} "
                  f"{(step + 1) / el:.2f} steps/s progress {progress * 100:.1f}% {el / 60:.1f} min", flush=True)
        if (step + 1) % a.save_every == 0:
            save(2, step + 1)
        if (step + 1) % a.eval_every == 0:
            print(f"step {step + 1}: val first-turn exact answer accuracy "
                  f"{evaluate(model, val, sp, image_id, 160, 8) * 100:.1f}%", flush=True)
    save(2, done)
    print(f"stage 2 done: {done} steps in {(time.time() - t0) / 60:.1f} min; val accuracy "
          f"{evaluate(model, val, sp, image_id, 200, 8) * 100:.1f}%", flush=True)


if __name__ == "__main__":
    main()
