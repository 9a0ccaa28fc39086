"""Procedural scenes for MiniLLaVA: coloured shapes and a painted number on a 3x3 grid.

A scene is plain data (objects with cell, centre, size; an optional number) so the
question writer can reason about it; render() turns it into a 168x168 RGB image.
"""
import random
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from PIL import Image, ImageDraw, ImageFont

SIZE = 168
GRID = 3
CELL = SIZE // GRID  # 56 px: four 14-px patches per cell side
FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

# Saturated object colours, far from the muted backgrounds below.
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 165, 55),
    "blue": (35, 75, 225),
    "yellow": (245, 225, 25),
    "purple": (140, 45, 195),
    "orange": (250, 135, 15),
    "white": (252, 252, 252),
    "black": (12, 12, 12),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}


@dataclass
class Obj:
    shape: str
    colour: str
    cell: Tuple[int, int]  # (row, col)
    centre: Tuple[int, int]  # (x, y) pixels
    radius: int
    rgb: Tuple[int, int, int]

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    background: Tuple[Tuple[int, int, int], Tuple[int, int, int]]  # top and bottom colours
    objects: List[Obj] = field(default_factory=list)
    number: Optional[str] = None  # two digits painted in number_cell
    number_cell: Optional[Tuple[int, int]] = None
    number_rgb: Tuple[int, int, int] = (0, 0, 0)
    number_offset: Tuple[int, int] = (0, 0)

    def signature(self) -> str:
        objs = ";".join(f"{o.shape},{o.colour},{o.cell},{o.centre},{o.radius}" for o in self.objects)
        return f"{self.background}|{objs}|{self.number}|{self.number_cell}"


def _jitter(rgb, rng, amount):
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def _background(rng):
    # Muted (low-saturation) mid tones: a grey with a slight tint, flat or a vertical gradient.
    def tone():
        base = rng.randint(75, 185)
        return tuple(max(0, min(255, base + rng.randint(-18, 18))) for _ in range(3))

    top = tone()
    bottom = top if rng.random() < 0.4 else tone()
    return top, bottom


def random_scene(rng: random.Random) -> Scene:
    scene = Scene(background=_background(rng))
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    rng.shuffle(cells)
    n = rng.randint(1, 5)
    with_number = rng.random() < 0.6
    # Half the scenes draw from a small pool so shapes and colours repeat (counting).
    shape_pool = rng.sample(SHAPES, 2) if rng.random() < 0.5 else SHAPES
    colour_pool = rng.sample(list(COLOURS), 3) if rng.random() < 0.3 else list(COLOURS)
    for i in range(n):
        r, c = cells[i]
        radius = rng.randint(13, 21)
        cx = c * CELL + CELL // 2 + rng.randint(-(26 - radius) // 2, (26 - radius) // 2)
        cy = r * CELL + CELL // 2 + rng.randint(-(26 - radius) // 2, (26 - radius) // 2)
        colour = rng.choice(colour_pool)
        scene.objects.append(Obj(rng.choice(shape_pool), colour, (r, c), (cx, cy), radius,
                                 _jitter(COLOURS[colour], rng, 12)))
    if with_number:
        scene.number_cell = cells[n]
        scene.number = f"{rng.randint(10, 99)}"
        # Numbers are painted centred in their cell, so each digit's strokes fall on the same
        # pixels of the same patches: with ±4 px of jitter the 3-layer ViT read only about half
        # the digits after 16 min of warm-up. The draws stay so that a seed's scenes (and so
        # its questions and the tokenizer trained on them) are those of the jittered version.
        rng.randint(-4, 4), rng.randint(-4, 4)
        scene.number_offset = (0, 0)
    # Text in black or white, whichever stands out more from the background.
    if sum(scene.background[0]) / 3 > 128:
        scene.number_rgb = _jitter((10, 10, 10), rng, 10)
    else:
        scene.number_rgb = _jitter((250, 250, 250), rng, 5)
    return scene


def _star(cx, cy, r):
    import math
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.45
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _draw(draw: ImageDraw.ImageDraw, o: Obj):
    cx, cy, r = o.centre[0], o.centre[1], o.radius
    if o.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=o.rgb)
    elif o.shape == "square":
        s = int(r * 0.85)
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=o.rgb)
    elif o.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + int(r * 0.8)), (cx - r, cy + int(r * 0.8))], fill=o.rgb)
    elif o.shape == "star":
        draw.polygon(_star(cx, cy, r + 2), fill=o.rgb)
    elif o.shape == "cross":
        w = max(4, r // 3)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=o.rgb)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=o.rgb)
    else:
        raise ValueError(f"unknown shape {o.shape}")


_FONT = None


def render(scene: Scene) -> Image.Image:
    global _FONT
    top, bottom = scene.background
    img = Image.new("RGB", (SIZE, SIZE))
    draw = ImageDraw.Draw(img)
    for y in range(SIZE):
        t = y / (SIZE - 1)
        draw.line([(0, y), (SIZE - 1, y)], fill=tuple(int(round(a + (b - a) * t)) for a, b in zip(top, bottom)))
    for o in scene.objects:
        _draw(draw, o)
    if scene.number is not None:
        if _FONT is None:
            _FONT = ImageFont.truetype(FONT_PATH, 30)
        r, c = scene.number_cell
        cx = c * CELL + CELL // 2 + scene.number_offset[0]
        cy = r * CELL + CELL // 2 + scene.number_offset[1]
        draw.text((cx, cy), scene.number, fill=scene.number_rgb, font=_FONT, anchor="mm")
    return img
