#!/usr/bin/python3
"""Trains MiniLLaVA from scratch on the procedural dataset (CPU, deterministic seed).

Stage 1 (vision warm-up, like CLIP's pre-training stands in for LLaVA's): the vision
tower alone learns, from every patch of its layer -2 output, what its 56-px grid cell
holds (colour, shape or "number", and the two digits), and from its [CLS] output which
objects the image holds, through throw-away linear heads.
Stage 2 (LLaVA's instruction tuning): the vision tower is frozen; projector and LLaMA
decoder learn from multi-turn LLaVA-1.5 conversations (the first turn is exactly the
inference prompt), cross-entropy on the answer tokens and their </s>, plus an image-word
alignment loss, (--look-weight) attention supervision of a few heads (LookPlan) and
(--where-weight, --compare-weight) throw-away linear probes that keep position readable.

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
import re
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentencepiece as spm  # noqa: E402
from model import DEFAULT_CONFIG, MiniLlava, pixels_from_image  # noqa: E402
import questions as Q  # noqa: E402
from scene import COLOURS, GRID, SHAPES, Obj, Scene  # noqa: E402
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


def scene_object(rec):
    """The stored scene description as a questions.py Scene (pixels are not needed)."""
    objs = [Obj(shape, colour, (r, c), (0, 0), 0, (0, 0, 0)) for shape, colour, r, c in rec["objects"]]
    cell = tuple(rec["number_cell"]) if rec["number_cell"] else None
    return Scene(background=((0, 0, 0), (0, 0, 0)), objects=objs, number=rec["number"], number_cell=cell)


# Question makers for freshly drawn training turns, with how often each is drawn.
FRESH_MAKERS = [
    (Q.colour_q, 2), (Q.shape_q, 2), (Q.count_q, 2), (Q.position_q, 2), (Q.read_q, 3), (Q.mc_q, 4),
    (lambda s, r: Q.exist_q(s, r, True), 3),
    (lambda s, r: Q.exist_q(s, r, False, r.choice(["random", "adversarial"])), 3),
]


def fresh_turns(scene, rng, k):
    """k new (question, answer, cells, type) turns about the scene, drawn with FRESH_MAKERS'
    weights (makers that do not apply to the scene are skipped), so every epoch asks new
    questions. cells: the grid cells the answer depends on (for position, the two objects in
    the order the question names them)."""
    makers = [m for m, _ in FRESH_MAKERS]
    weights = [w for _, w in FRESH_MAKERS]
    turns = []
    for _ in range(8 * k):
        if len(turns) == k:
            break
        q = rng.choices(makers, weights)[0](scene, rng)
        if q is not None:
            turns.append((Q.prompt_text(q), q["answer"], q["cells"], q["type"]))
    return turns


def cell_labels(scene):
    """[4, 9] per-cell targets: colour (8 = none), shape (5 = number, 6 = empty), tens, units (10 = none);
    the last class of each is "nothing there"."""
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
PATCH_ROW, PATCH_COL = PATCH_CELL // GRID, PATCH_CELL % GRID


def grid_position_loss(logits):
    """logits [B, 144, 2 * GRID]: each patch's grid row, then column; the sum of the two
    cross-entropies against the patch's true cell."""
    b = logits.shape[0]
    return sum(F.cross_entropy(logits[..., k * GRID:(k + 1) * GRID].reshape(-1, GRID), tgt.expand(b, -1).reshape(-1))
               for k, tgt in enumerate((PATCH_ROW, PATCH_COL)))


class CellHeads(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, n) for n in (len(COLOURS) + 1, NUMBER_SHAPE + 2, 11, 11)])
        self.where = nn.Linear(d, 2 * GRID)  # the patch's own cell row and column (keeps position in the feature)
        # [CLS]: which of the 40 colour-shape objects and whether a number are in the image.
        # LLaVA never feeds [CLS] to the decoder, but [CLS]-attention reduction methods
        # (FiCoCo-V, EViT, VisionZip, PruMerge) rank patches by it, as CLIP's trained [CLS] allows.
        self.scene = nn.Linear(d, len(COLOURS) * len(SHAPES) + 1)

    def loss(self, feats, labels, cls=None):
        """feats [B, 144, D]; labels [B, 4, 9]; cls [B, D] or None. Every patch predicts its
        cell; [CLS] predicts the image's set of objects. Returns (loss, [occupied-cell patch
        accuracy per head..., share of images whose [CLS] set is exactly right])."""
        total, right = 0.0, []
        for k, head in enumerate(self.heads):
            tgt = labels[:, k, PATCH_CELL]  # [B, 144]
            logits = head(feats)
            total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
            # Accuracy on the patches of occupied cells only (the empty class dominates the rest).
            occupied = tgt != logits.shape[-1] - 1
            right.append(((logits.argmax(-1) == tgt) & occupied).sum() / occupied.sum().clamp(min=1))
        total = total + grid_position_loss(self.where(feats))
        if cls is not None:
            present = torch.zeros(labels.shape[0], self.scene.out_features)
            for b in range(labels.shape[0]):
                for cell in range(GRID * GRID):
                    colour, shape = int(labels[b, 0, cell]), int(labels[b, 1, cell])
                    if shape < NUMBER_SHAPE:
                        present[b, colour * len(SHAPES) + shape] = 1
                    elif shape == NUMBER_SHAPE:
                        present[b, -1] = 1
            logits = self.scene(cls)
            # Weight 2: enough for [CLS] to learn the set within the warm-up, small enough that
            # it does not crowd the patch objectives out of the clipped gradient early on.
            total = total + 2 * F.binary_cross_entropy_with_logits(logits, present)
            right.append(((logits > 0) == (present > 0)).all(-1).float().mean())
        return total, right


def word_targets(sp):
    """Token ids naming each cell class: colour words, shape words, digit pieces."""
    last = lambda w: sp.encode(w)[-1]  # noqa: E731  ("4" encodes as "▁", "4")
    return ([last(c) for c in COLOURS], [last(s) for s in SHAPES], [last(str(d)) for d in range(10)])


def align_loss(model, proj, scenes, targets):
    """Alignment of image tokens with words (LLaVA's stage 1 aligns the projector with the
    LLM; here the LLM is new too): each patch's projected feature proj [B, 144, D], scored
    against the input embedding table, should name its cell's colour and shape (or its
    number's digits)."""
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


def where_loss(where, proj):
    """Each projected patch should still tell its grid row and column through the linear
    probe `where` (trained with it). Without this the projector, trained only to name
    colours and shapes, lost position: a linear probe read the cell column from 100 % of
    the vision features but 68 % of the projected ones, and relative-position answers were
    at chance."""
    return grid_position_loss(where(proj)) / 2


class LookPlan:
    """Which attention heads the look loss supervises (see look_loss); layer -1 = off.
    object_layer: head 0, at each answer's prediction position, on the asked-about cells'
        patches, or on <s> (position 0) when the answer depends on no cell (an absent
        object: existence "no", a count of 0), so that "nothing found" has a place to look.
    option_layer: head 0, at a multiple-choice answer's prediction position, on the
        correct option's text (the tokens after "X.").
    letter_layer: head 1, at every option's text tokens, on that option's letter.
    pair_look: for a relative-position question the object look is split, head 0 on the
        first object the question names and head 1 on the second, so the answer position
        holds both objects' rows and columns apart, ready to compare; and in the layer below,
        the last two heads look at the first and the second name's tokens (what the two
        object heads need in their queries).
    subject_look: in the layer below the object look, the last head looks from the answer
        position at the words naming what to find ("square" in "What color is the
        square?"), for every question that names one: the object head's query then holds
        its subject even when options and context stand between question and answer.
    count_sink: for a counting question (plain or multiple choice) the object look puts
        equal shares on <s> and on each counted cell, 1/(N+1) each, so the head's output
        holds <s>'s value with weight 1/(N+1): the count, readable by the layers above.
    heads: attention heads per decoder layer."""

    def __init__(self, object_layer=-1, option_layer=-1, letter_layer=-1, pair_look=False, heads=4,
                 subject_look=False, count_sink=False):
        self.object_layer, self.option_layer, self.letter_layer = object_layer, option_layer, letter_layer
        self.pair_look, self.heads = pair_look, heads
        self.subject_look, self.count_sink = subject_look, count_sink

    def names_layer(self):
        """The layer whose last heads look at the question's subject words (-1: none)."""
        return self.object_layer - 1 if (self.pair_look or self.subject_look) and self.object_layer >= 1 else -1

    def layers(self):
        return sorted({l for l in (self.object_layer, self.option_layer, self.letter_layer, self.names_layer())
                       if l >= 0})


def option_lines(ids, lo, hi, nl, dot, letter_ids):
    """(letter, letter position, text positions) of each "\nX. text" line in ids[lo:hi]."""
    out = []
    for i in range(lo, hi - 3):
        if ids[i] == nl and ids[i + 1] in letter_ids and ids[i + 2] == dot:
            j = i + 3
            while j < hi and ids[j] != nl:
                j += 1
            out.append((letter_ids.index(ids[i + 1]), i + 1, list(range(i + 3, j))))
    return out


# The words each question type names its subject with (position questions name two objects).
SUBJECT_PATTERNS = [
    re.compile(r"^Is the (.+?) (?:to the left or to the right of|above or below) the (.+?)\?"),
    re.compile(r"^(?:What|Which) color is the (.+?)\?"),
    re.compile(r"^(?:What|Which) shape is the (.+?) object\?"),
    re.compile(r"^How many (.+?) are there\?"),
    re.compile(r"^Is there an? (.+?) in the image\?"),
]


def name_spans(ids, lo, hi, sp, question):
    """Token positions of the subject words of a question in ids[lo:hi], one span per name in
    the order the question names them; [] unless every name is found as whole pieces."""
    m = next((p.match(question) for p in SUBJECT_PATTERNS if p.match(question)), None)
    if not m:
        return []
    spans, start = [], lo
    for name in m.groups():
        piece = sp.encode(name)
        found = next((i for i in range(start, hi - len(piece) + 1) if ids[i:i + len(piece)] == piece), None)
        spans.append([] if found is None else list(range(found, found + len(piece))))
        if found is not None:
            start = found + len(piece)
    return spans if all(spans) else []


def is_count(question):
    """A counting question, plain or as multiple choice."""
    return question.startswith("How many")


def object_look(cells, image_pos, plan, turn):
    """The object head's target as [(share, positions)]: the cells' patches, or <s> (position 0)
    when the answer depends on no cell; with plan.count_sink a count question's <s> and each
    counted cell get equal shares."""
    def patches(group):
        want = {r * GRID + c for r, c in group}
        return [image_pos + k for k in range(144) if int(PATCH_CELL[k]) in want]
    if not cells:
        return [(1.0, [0])]
    if plan.count_sink and is_count(turn[0]):
        share = 1.0 / (len(cells) + 1)
        return [(share, [0])] + [(share, patches([c])) for c in cells]
    return [(1.0, patches(cells))]


def make_batch(samples, sp, image_id, rng, turns_per_image, fresh, single_turn=None, pixels=True, plan=None):
    """Token ids, labels and (if pixels) pixel tensors for conversations about `samples`,
    plus the attention targets of `plan` (a LookPlan): (layer, head, row, query, groups),
    groups = [(share, positions)]: the attention mass that should fall on each set of positions;
    and, with plan.pair_look, each relative-position answer's (row, query, first cell, second
    cell) for compare_loss.
    fresh: turns_per_image new questions drawn from each scene; otherwise the stored
    conversation's turns, shuffled. single_turn=i: sample r asks only its stored turn
    (i + r) mod (its turn count) (evaluation: consecutive images cover every type)."""
    seqs, labs, pix, looks, compares = [], [], [], [], []
    plan = plan or LookPlan()
    nl, dot = sp.piece_to_id("<0x0A>"), sp.piece_to_id(".")
    letter_ids = [sp.piece_to_id(c) for c in Q.LETTERS]
    for row, s in enumerate(samples):
        if single_turn is not None:
            turns = [s["turns"][(single_turn + row) % len(s["turns"])]]
        elif fresh:
            turns = fresh_turns(scene_object(s["scene"]), rng, turns_per_image)
        else:
            turns = list(s["turns"])
            rng.shuffle(turns)
            turns = turns[:turns_per_image]
        cells = [t[2] if len(t) > 2 else [] for t in turns]
        ids, labels = conversation_ids(sp, [t[:2] for t in turns], image_id)
        p = ids.index(image_id)
        labels = labels[:p] + [-100] * 144 + labels[p + 1:]  # image features take 144 positions
        expanded = ids[:p] + [image_id] * 144 + ids[p + 1:]
        # Where each answer starts: the position before it is the one that must look at the image.
        starts = [t for t in range(1, len(labels)) if labels[t] != -100 and labels[t - 1] == -100]
        prompt_from = 0
        for t, turn_cells, turn in zip(starts, cells, turns):
            # The question starts after the previous answer (whose words must not count as its subject).
            ask_from = next(i for i in range(prompt_from, t) if labels[i] == -100)
            if plan.object_layer >= 0 and len(turn) > 2:  # fresh turns know their cells
                cell_groups = [turn_cells]
                pair = plan.pair_look and turn[3] == "position"
                if pair:
                    cell_groups = [[turn_cells[0]], [turn_cells[1]]]
                for head, group in enumerate(cell_groups):
                    looks.append((plan.object_layer, head, row, t - 1, object_look(group, p, plan, turn)))
                if pair:
                    compares.append((row, t - 1, tuple(turn_cells[0]), tuple(turn_cells[1])))
                spans = name_spans(expanded, ask_from, t, sp, turn[0]) if plan.names_layer() >= 0 else []
                if pair and len(spans) == 2:
                    # The layer below fetches the two names, in order, for the two object heads.
                    for head, span in zip((plan.heads - 2, plan.heads - 1), spans):
                        looks.append((plan.names_layer(), head, row, t - 1, [(1.0, span)]))
                elif plan.subject_look and spans:
                    looks.append((plan.names_layer(), plan.heads - 1, row, t - 1, [(1.0, sum(spans, []))]))
            if turn[0].endswith(Q.MC_SUFFIX) and (plan.option_layer >= 0 or plan.letter_layer >= 0):
                answer = Q.LETTERS.index(turn[1])
                for letter, letter_pos, text in option_lines(expanded, prompt_from, t, nl, dot, letter_ids):
                    if letter == answer and plan.option_layer >= 0 and text:
                        looks.append((plan.option_layer, 0, row, t - 1, [(1.0, text)]))
                    if plan.letter_layer >= 0:
                        looks.extend((plan.letter_layer, 1, row, q, [(1.0, [letter_pos])]) for q in text)
            prompt_from = t
        seqs.append(ids)
        labs.append(labels)
        if pixels:
            pix.append(pixels_from_image(Image.open(s["image"])))
    t = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), t), 0, dtype=torch.long)
    lab = torch.full((len(seqs), t + 143), -100, dtype=torch.long)
    for i, (x, y) in enumerate(zip(seqs, labs)):
        ids[i, :len(x)] = torch.tensor(x)
        lab[i, :len(y)] = torch.tensor(y)
    return ids, lab, (torch.stack(pix) if pixels else None), looks, compares


def look_loss(model, looks, length):
    """Attention supervision (LookPlan): each (layer, head, row, query, groups) asks that
    head's attention at that query position to put each group's share of its mass on the
    group's positions (cross-entropy of the shares against the masses there: -log of the
    mass for one group), averaged per supervised head and summed over heads. Teaches the
    lookups (which cells, which option, which letter) that the answer loss alone finds only
    slowly or, for existence and multiple choice, not at all in our budget."""
    total = torch.zeros(())
    for layer, head in sorted({(l, h) for l, h, _, _, _ in looks}):
        mine = [x for x in looks if x[0] == layer and x[1] == head]
        probs = model.language_model.model.layers[layer].self_attn.probs  # [B, H, n, n]
        rows = probs[[b for _, _, b, _, _ in mine], head, [q for _, _, _, q, _ in mine]]  # [S, n]
        width = max(len(x[4]) for x in mine)
        masks = torch.zeros(len(mine), width, length)  # [S, G, n]: group g's positions
        shares = torch.zeros(len(mine), width)
        for i, (_, _, _, _, groups) in enumerate(mine):
            for g, (share, positions) in enumerate(groups):
                masks[i, g, positions] = 1.0
                shares[i, g] = share
        mass = (masks * rows[:, None, :]).sum(-1)  # [S, G]
        total = total + -(shares * torch.log(mass + 1e-6)).sum(-1).mean()
    return total


class CompareProbes(nn.Module):
    """Throw-away linear probes for --compare-weight (see compare_loss)."""

    def __init__(self, d, heads):
        super().__init__()
        self.coords = nn.Linear(d // heads, 2 * GRID)  # one head's output -> its object's row and column
        self.order = nn.Linear(d, 2 * 3)  # the layer's output -> row order and column order of the two objects


def compare_loss(model, probes, layer, layer_out, compares):
    """Relative position, supervised in two steps at the answer position of each position
    question (pair look on): the outputs of the two object heads of `layer` each tell their
    object's grid row and column (so the values carry where the objects are), and the
    layer's output tells whether the first object's row and column are smaller, equal to or
    larger than the second's (so the comparison is made by then; the layer above only has
    to pick the asked axis). Runs with the pair look alone, and with --where-weight too
    (docs/minillava.md), showed the looks land and the image tokens hold position, but the
    answer followed the axis alone: the comparison was not learned from the answer loss."""
    heads = model.language_model.model.layers[layer].self_attn.heads_out  # [B, H, n, D/H]
    rows = [c[0] for c in compares]
    queries = [c[1] for c in compares]
    total = torch.zeros(())
    for head in (0, 1):
        logits = probes.coords(heads[rows, head, queries])  # [S, 6]
        cells = torch.tensor([c[2 + head] for c in compares])  # [S, 2] (row, col)
        for k in range(2):
            total = total + F.cross_entropy(logits[:, k * GRID:(k + 1) * GRID], cells[:, k])
    order = probes.order(layer_out[rows, queries])  # [S, 6]
    first, second = torch.tensor([c[2] for c in compares]), torch.tensor([c[3] for c in compares])
    sign = torch.sign(first - second) + 1  # 0: smaller, 1: equal, 2: larger
    for k in range(2):
        total = total + F.cross_entropy(order[:, k * 3:(k + 1) * 3], sign[:, k])
    return total / 6


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
    """Teacher-forced exact-answer accuracy (every answer token and </s>) on single-turn
    prompts: val image i asks its stored question i mod (its question count), so every
    type is covered. Returns (overall, {type: accuracy})."""
    model.eval()
    right, total = {}, {}
    val = val[:n]
    for i in range(0, len(val), batch):
        chunk = val[i:i + batch]
        ids, lab, pix, _, _ = make_batch(chunk, sp, image_id, None, 1, False, single_turn=i)
        _, ok = loss_and_acc(model, ids, lab, pix)
        for j, s in enumerate(chunk):
            kind = s["types"][(i + j) % len(s["types"])]
            right[kind] = right.get(kind, 0) + int(ok[j])
            total[kind] = total.get(kind, 0) + 1
    model.train()
    overall = sum(right.values()) / max(sum(total.values()), 1)
    return overall, {k: right[k] / total[k] for k in sorted(total)}


def describe_accuracy(overall, per_type):
    return f"{overall * 100:.1f}% (" + ", ".join(f"{k} {v * 100:.0f}" for k, v in per_type.items()) + ")"


def schedule(progress, warm, base):
    return base * min(1.0, warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset directory from make_dataset.py")
    ap.add_argument("--tokenizer", required=True, help="SentencePiece model from train_tokenizer.py")
    ap.add_argument("--out", required=True, help="checkpoint directory")
    ap.add_argument("--vision-steps", type=int, default=600, help="stage 1 steps")
    ap.add_argument("--vision-minutes", type=float, default=1e9, help="stage 1 time budget")
    ap.add_argument("--vision-batch", type=int, default=32, help="stage 1 images per step (per process)")
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=3000, help="stage 2 steps")
    ap.add_argument("--minutes", type=float, default=1e9, help="stage 2 time budget")
    ap.add_argument("--batch", type=int, default=8, help="stage 2 conversations per step (per process)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--turns", type=int, default=4,
                    help="questions per training conversation, drawn fresh from the scene every time "
                         "(0: the dataset's stored conversation, all its turns)")
    ap.add_argument("--look-weight", type=float, default=0.0,
                    help="weight of the attention supervision (LookPlan: which heads look where)")
    ap.add_argument("--look-layer", type=int, default=2,
                    help="decoder layer whose head 0 looks at the answer's cells (or <s> if none); -1 = off")
    ap.add_argument("--option-layer", type=int, default=-1,
                    help="decoder layer whose head 0 looks at the correct option of a multiple-choice question; -1 = off")
    ap.add_argument("--letter-layer", type=int, default=-1,
                    help="decoder layer whose head 1 looks, from each option's text, at its letter; -1 = off")
    ap.add_argument("--pair-look", action="store_true",
                    help="for relative-position questions, the object look (--look-layer) is split: head 0 "
                         "on the first object named, head 1 on the second; the layer below's last two heads "
                         "look at the two names")
    ap.add_argument("--subject-look", action="store_true",
                    help="in the layer below --look-layer, the last head looks from the answer position at the "
                         "words naming the question's subject (every question that names one)")
    ap.add_argument("--count-sink", action="store_true",
                    help="for counting questions the object look puts equal shares on <s> and on each counted "
                         "cell, so the head's output holds 1/(count+1) of <s>'s value")
    ap.add_argument("--compare-weight", type=float, default=0.0,
                    help="with --pair-look: weight of probes asking the two object heads' outputs for their "
                         "objects' rows and columns and the look layer's output for their order")
    ap.add_argument("--where-weight", type=float, default=0.0,
                    help="weight of a stage-2 loss keeping each image token's grid row and column readable "
                         "by a linear probe (the projector otherwise drops position)")
    ap.add_argument("--align-weight", type=float, default=1.0, help="weight of the image-word alignment loss in stage 2")
    ap.add_argument("--init", help="start from this checkpoint's weights (e.g. with --vision-steps 0 to continue stage 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--procs", type=int, default=1,
                    help="data-parallel processes (one thread each works best here: torch's intra-op "
                         "threads do not speed up these small matrices)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--eval-images", type=int, default=400, help="validation images per evaluation")
    ap.add_argument("--config", help="JSON file overriding parts of the model config")
    return ap.parse_args()


class Reducer:
    """Averages gradients (and a few scalars) over the data-parallel processes; a no-op for one."""

    def __init__(self, world):
        self.world = world

    def average(self, params, scalars):
        if self.world == 1:
            return scalars
        import torch.distributed as dist
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [torch.tensor(scalars, dtype=torch.float32)])
        dist.all_reduce(flat)
        flat /= self.world
        o = 0
        for p, g in zip(params, grads):
            n = g.numel()
            if p.grad is None:
                p.grad = g
            p.grad.copy_(flat[o:o + n].view_as(g))
            o += n
        return flat[o:].tolist()


@torch.no_grad()
def cache_features(vision, samples, batch=64):
    """Layer -2 features of a frozen vision tower for every sample, computed once."""
    out = []
    for i in range(0, len(samples), batch):
        pix = torch.stack([pixels_from_image(Image.open(s["image"])) for s in samples[i:i + batch]])
        out.append(vision.features(pix))
    return torch.cat(out)


def worker(rank, a):
    world = a.procs
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="file://" + os.path.join(os.path.abspath(a.out), ".ddp_rendezvous"),
                                rank=rank, world_size=world)
    lead = rank == 0
    log = (lambda *x: print(*x, flush=True)) if lead else (lambda *x: None)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)  # same initial weights in every process
    rng = random.Random(f"{a.seed}-{rank}")
    cfg = json.loads(json.dumps(DEFAULT_CONFIG))
    if a.config:
        with open(a.config) as f:
            cfg.update(json.load(f))
    plan = (LookPlan(a.look_layer, a.option_layer, a.letter_layer, a.pair_look, cfg["text"]["num_attention_heads"],
                     a.subject_look, a.count_sink)
            if a.look_weight > 0 else LookPlan())
    if a.compare_weight > 0 and not (a.pair_look and a.look_weight > 0 and a.look_layer >= 0):
        sys.exit("--compare-weight needs --pair-look, --look-weight > 0 and a --look-layer")
    for name, layer in (("--look-layer", a.look_layer), ("--option-layer", a.option_layer), ("--letter-layer", a.letter_layer)):
        if a.look_weight > 0 and not -1 <= layer < cfg["text"]["num_hidden_layers"]:
            sys.exit(f"{name} {layer} is not a layer of the {cfg['text']['num_hidden_layers']}-layer decoder")
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    image_id = cfg["image_token_index"]
    if sp.get_piece_size() > image_id:
        sys.exit(f"tokenizer has {sp.get_piece_size()} pieces; image_token_index {image_id} must be past them")
    train = load_split(a.data, "train")[rank::world]  # each process its own images
    val = load_split(a.data, "val")
    model = MiniLlava(cfg)
    if a.init:
        init = torch.load(a.init)
        if init["config"] != cfg:
            sys.exit(f"{a.init} has a different model config")
        model.load_state_dict(init["model"])
    log(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; "
        f"{len(train) * world} train / {len(val)} val images; {world} process(es)")
    ckpt_path = os.path.join(a.out, "last.pt")
    reducer = Reducer(world)

    def save(stage, step):
        if not lead:
            return
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "stage": stage, "step": step, "config": cfg,
                    "tokenizer": os.path.abspath(a.tokenizer), "args": vars(a)}, tmp)
        os.replace(tmp, ckpt_path)

    order = []

    def next_indices(n):
        while len(order) < n:
            perm = list(range(len(train)))
            rng.shuffle(perm)
            order.extend(perm)
        out = order[:n]
        del order[:n]
        return out

    def progress_of(step, steps, t0, minutes):
        return max(step / steps, (time.time() - t0) / 60 / minutes)

    # Stage 1: vision tower + cell heads.
    vision = model.vision_tower.vision_model
    heads = CellHeads(cfg["vision"]["hidden_size"])
    params = list(vision.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.vision_lr, betas=(0.9, 0.98), weight_decay=0.05)
    t0 = time.time()
    progress = 0.0
    for step in range(a.vision_steps):
        if progress >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = schedule(progress, (step + 1) / 50, a.vision_lr)
        batch = [train[i] for i in next_indices(a.vision_batch)]
        pix = torch.stack([pixels_from_image(Image.open(s["image"])) for s in batch])
        labels = torch.stack([cell_labels(s["scene"]) for s in batch])
        feats, cls = vision.features(pix, with_cls=True)
        loss, right = heads.loss(feats, labels, cls)
        opt.zero_grad()
        loss.backward()
        (progress,) = reducer.average(params, [progress_of(step + 1, a.vision_steps, t0, a.vision_minutes)])
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 10 == 0:
            log(f"vision step {step + 1} loss {float(loss):.4f} occupied-cell patch acc colour/shape/tens/units "
                + "/".join(f"{float(r) * 100:.1f}" for r in right[:4]) + f", [CLS] object set {float(right[4]) * 100:.1f}"
                + f" {(time.time() - t0) / 60:.1f} min")
    save(1, 0)
    if a.steps == 0:
        return

    # Stage 2: projector + language model on conversations; vision frozen (its features cached).
    for p in vision.parameters():
        p.requires_grad_(False)
    t0 = time.time()
    feats_all = cache_features(vision, train)
    log(f"cached vision features of {len(train)} images per process in {time.time() - t0:.0f} s")
    torch.manual_seed(a.seed + 1)  # the same probes in every process
    where = nn.Linear(cfg["text"]["hidden_size"], 2 * GRID)  # throw-away probe for --where-weight
    probes = CompareProbes(cfg["text"]["hidden_size"], cfg["text"]["num_attention_heads"])  # for --compare-weight
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if a.where_weight > 0:
        trainable += [("where." + n, p) for n, p in where.named_parameters()]
    if a.compare_weight > 0:
        trainable += [("compare." + n, p) for n, p in probes.named_parameters()]
    layer_out = {}
    if a.compare_weight > 0:
        model.language_model.model.layers[a.look_layer].register_forward_hook(
            lambda module, inputs, output: layer_out.__setitem__("x", output))
    params = [p for _, p in trainable]
    decay = [p for n, p in trainable if p.dim() >= 2]
    no_decay = [p for n, p in trainable if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98))
    targets = word_targets(sp)
    t0 = time.time()
    ema = None
    done = 0
    progress = 0.0
    for step in range(a.steps):
        if progress >= 1:
            break
        lr = schedule(progress, (step + 1) / a.warmup, a.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = next_indices(a.batch)
        batch = [train[i] for i in idx]
        ids, lab, _, looks, compares = make_batch(batch, sp, image_id, rng, a.turns, a.turns > 0, pixels=False,
                                                  plan=plan)
        feats = feats_all[idx]
        supervised = [model.language_model.model.layers[l].self_attn for l in plan.layers()]
        for attn in supervised:
            attn.keep_probs = True
        loss, ok = loss_and_acc(model, ids, lab, None, feats)
        look = look_loss(model, looks, lab.shape[1]) if looks else torch.zeros(())
        compare = (compare_loss(model, probes, a.look_layer, layer_out["x"], compares)
                   if a.compare_weight > 0 and compares else torch.zeros(()))
        for attn in supervised:
            attn.keep_probs, attn.probs, attn.heads_out = False, None, None
        proj = model.multi_modal_projector(feats) if a.align_weight > 0 or a.where_weight > 0 else None
        align = align_loss(model, proj, [s["scene"] for s in batch], targets) if a.align_weight > 0 else torch.zeros(())
        place = where_loss(where, proj) if a.where_weight > 0 else torch.zeros(())
        total = loss + a.align_weight * align + a.look_weight * look + a.where_weight * place + a.compare_weight * compare
        opt.zero_grad()
        total.backward()
        progress, mean_loss = reducer.average(params, [progress_of(step + 1, a.steps, t0, a.minutes), float(loss)])
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        done = step + 1
        ema = mean_loss if ema is None else 0.95 * ema + 0.05 * mean_loss
        if (step + 1) % 10 == 0:
            el = time.time() - t0
            log(f"step {step + 1} loss {mean_loss:.4f} ema {ema:.4f} align {float(align):.3f} look {float(look):.3f} where {float(place):.3f} compare {float(compare):.3f} lr {lr:.2e} "
                f"{(step + 1) / el:.2f} steps/s progress {progress * 100:.1f}% {el / 60:.1f} min")
        if (step + 1) % a.save_every == 0:
            save(2, step + 1)
        if (step + 1) % a.eval_every == 0 and lead:
            log(f"step {step + 1}: val accuracy " + describe_accuracy(*evaluate(model, val, sp, image_id, a.eval_images, 16)))
    save(2, done)
    if lead:
        log(f"stage 2 done: {done} steps in {(time.time() - t0) / 60:.1f} min; val accuracy "
            + describe_accuracy(*evaluate(model, val, sp, image_id, len(val), 16)))
    if world > 1:
        import torch.distributed as dist
        dist.destroy_process_group()


def main():
    a = parse_args()
    os.makedirs(a.out, exist_ok=True)
    rendezvous = os.path.join(a.out, ".ddp_rendezvous")
    if os.path.exists(rendezvous):
        os.remove(rendezvous)
    if a.procs > 1:
        import torch.multiprocessing as mp
        mp.spawn(worker, args=(a,), nprocs=a.procs)
    else:
        worker(0, a)


if __name__ == "__main__":
    main()
