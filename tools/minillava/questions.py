"""Questions about a Scene, phrased as LLaVA-1.5's evaluation prompts ask them.

Every question needs one specific region of the image (an object's cell, the number's
cell, or two objects' cells) and has a one-word (or one-letter / digits) answer.
"""
import random
from typing import List, Optional

from scene import COLOURS, PLURALS, SHAPES, Obj, Scene

SHORT_SUFFIX = "\nAnswer the question using a single word or phrase."
MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
MC_CONTEXT = "The picture shows coloured shapes on a plain background."
LETTERS = "ABCD"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _unique(scene: Scene, key) -> List[Obj]:
    counts = {}
    for o in scene.objects:
        counts[key(o)] = counts.get(key(o), 0) + 1
    return [o for o in scene.objects if counts[key(o)] == 1]


def colour_q(scene: Scene, rng: random.Random) -> Optional[dict]:
    cands = _unique(scene, lambda o: o.shape)
    if not cands:
        return None
    o = rng.choice(cands)
    return {"type": "colour", "question": f"What color is the {o.shape}?", "answer": o.colour, "cells": [o.cell]}


def shape_q(scene: Scene, rng: random.Random) -> Optional[dict]:
    cands = _unique(scene, lambda o: o.colour)
    if not cands:
        return None
    o = rng.choice(cands)
    return {"type": "shape", "question": f"What shape is the {o.colour} object?", "answer": o.shape, "cells": [o.cell]}


def count_q(scene: Scene, rng: random.Random) -> dict:
    present = sorted({o.shape for o in scene.objects})
    shape = rng.choice(SHAPES) if rng.random() < 0.2 else rng.choice(present)
    n = sum(o.shape == shape for o in scene.objects)
    return {"type": "count", "question": f"How many {PLURALS[shape]} are there?", "answer": str(n),
            "cells": [o.cell for o in scene.objects if o.shape == shape]}


def position_q(scene: Scene, rng: random.Random) -> Optional[dict]:
    cands = _unique(scene, lambda o: o.name)
    pairs = [(a, b) for a in cands for b in cands if a is not b and (a.cell[0] != b.cell[0] or a.cell[1] != b.cell[1])]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    axes = [ax for ax in (0, 1) if a.cell[ax] != b.cell[ax]]
    ax = rng.choice(axes)
    if ax == 1:
        q = f"Is the {a.name} to the left or to the right of the {b.name}?"
        ans = "left" if a.cell[1] < b.cell[1] else "right"
    else:
        q = f"Is the {a.name} above or below the {b.name}?"
        ans = "above" if a.cell[0] < b.cell[0] else "below"
    return {"type": "position", "question": q, "answer": ans, "cells": [a.cell, b.cell]}


def absent_object(scene: Scene, rng: random.Random, split: str, popular: List[str]) -> str:
    """An object name not in the scene, chosen as POPE's negative sampling does:
    random (any absent object), popular (the most frequent absent one overall),
    adversarial (shares the colour or the shape of a present object)."""
    present = {o.name for o in scene.objects}
    absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in present]
    if split == "popular":
        for name in popular:
            if name not in present:
                return name
    if split == "adversarial":
        near = [n for n in absent if any(n.split()[0] == o.colour or n.split()[1] == o.shape for o in scene.objects)]
        if near:
            return rng.choice(near)
    return rng.choice(absent)


def exist_q(scene: Scene, rng: random.Random, want_yes: bool, split: str = "random",
            popular: Optional[List[str]] = None) -> dict:
    name = rng.choice(scene.objects).name if want_yes else absent_object(scene, rng, split, popular or [])
    return {"type": "exist", "question": f"Is there {article(name)} {name} in the image?",
            "answer": "yes" if want_yes else "no", "split": split,
            "cells": [o.cell for o in scene.objects if o.name == name]}


def read_q(scene: Scene, rng: random.Random) -> Optional[dict]:
    if scene.number is None:
        return None
    return {"type": "read", "question": "What number is written in the image?", "answer": scene.number,
            "cells": [scene.number_cell]}


def mc_q(scene: Scene, rng: random.Random) -> Optional[dict]:
    """ScienceQA-style: a colour/shape/count question with four lettered choices."""
    kinds = ["colour", "shape", "count"]
    rng.shuffle(kinds)
    for kind in kinds:
        base = {"colour": colour_q, "shape": shape_q, "count": count_q}[kind](scene, rng)
        if base is None:
            continue
        pool = {"colour": list(COLOURS), "shape": SHAPES, "count": [str(i) for i in range(6)]}[kind]
        wrong = rng.sample([p for p in pool if p != base["answer"]], 3)
        choices = wrong + [base["answer"]]
        rng.shuffle(choices)
        correct = choices.index(base["answer"])
        text = base["question"].replace("What color", "Which color").replace("What shape", "Which shape")
        body = text + f"\nContext: {MC_CONTEXT}\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        return {"type": "mc", "question": body, "answer": LETTERS[correct], "choices": choices,
                "answer_index": correct, "sqa_question": text, "cells": base["cells"]}
    return None


def prompt_text(q: dict) -> str:
    """The question as the model sees it (LLaVA's benchmark suffix appended)."""
    return q["question"] + (MC_SUFFIX if q["type"] == "mc" else SHORT_SUFFIX)


def all_questions(scene: Scene, rng: random.Random) -> List[dict]:
    """Training questions: one of each type that applies, both existence answers."""
    out = [colour_q(scene, rng), shape_q(scene, rng), count_q(scene, rng), position_q(scene, rng),
           exist_q(scene, rng, True), exist_q(scene, rng, False, rng.choice(["random", "adversarial"])),
           read_q(scene, rng), mc_q(scene, rng)]
    return [q for q in out if q is not None]
