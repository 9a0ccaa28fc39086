#!/usr/bin/env python3
"""Generates the English training corpus for ficoco's demo tokenizer.

The text is synthetic and deterministic (fixed seed, no external data): VQA-style
questions and answers about images of coloured shapes, LLaVA-1.5 prompt pieces
(the vicuna system prompt, "USER:", "ASSISTANT:", "<image>"), multiple-choice
questions with letters A-D, short answers (yes/no, digits, words) and generic
descriptive sentences. One sentence per line (spm_train reads lines; a newline is
never part of a piece, so "\\n" falls back to the byte piece <0x0A> as in LLaMA).

Usage: make_corpus.py OUTPUT [--seed N] [--megabytes M]
"""
import argparse
import random

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black",
           "white", "gray", "grey", "cyan", "magenta", "violet", "teal", "navy", "maroon",
           "olive", "lime", "gold", "silver", "beige", "turquoise", "indigo", "crimson",
           "dark blue", "light green", "dark red", "light blue", "pale yellow", "bright orange"]
SHAPES = ["circle", "square", "triangle", "rectangle", "star", "hexagon", "pentagon",
          "diamond", "oval", "ellipse", "heart", "cross", "octagon", "trapezoid", "rhombus",
          "arrow", "crescent", "ring", "dot", "line", "parallelogram", "semicircle", "cube",
          "sphere", "cylinder", "cone", "pyramid"]
PLURAL = {"cross": "crosses", "sphere": "spheres", "ellipse": "ellipses"}
SIZES = ["small", "large", "tiny", "big", "medium-sized", "huge", "little", "thin", "wide", "tall"]
TEXTURES = ["solid", "striped", "dotted", "outlined", "filled", "shaded", "hollow", "checkered"]
POSITIONS = ["in the top-left corner", "in the top-right corner", "in the bottom-left corner",
             "in the bottom-right corner", "in the center", "near the top edge",
             "near the bottom edge", "on the left side", "on the right side", "in the middle",
             "at the top", "at the bottom", "slightly off-center"]
RELATIONS = [("to the left of", "to the right of"), ("to the right of", "to the left of"),
             ("above", "below"), ("below", "above"), ("next to", "next to"),
             ("inside", "around"), ("on top of", "under"), ("near", "near"),
             ("far from", "far from"), ("between the edge and", "between the edge and")]
BACKGROUNDS = ["white", "black", "light gray", "dark gray", "beige", "pale blue", "cream",
               "dark green", "plain", "textured", "gradient", "checkered", "noisy"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve"]
LETTERS = ["A", "B", "C", "D"]

# A broader everyday vocabulary for the generic sentences.
NOUNS = """apple banana orange grape lemon cherry bread cake cookie sandwich pizza cup mug
glass bottle plate bowl spoon fork knife table chair sofa bed lamp window door wall floor
ceiling roof house building street road car bus truck bicycle train boat plane bird dog cat
horse cow sheep fish tree flower grass leaf garden park river lake mountain hill beach sea
sky cloud sun moon rain snow book paper pen pencil box bag basket ball toy clock phone
computer screen keyboard picture photo painting drawing map sign letter number word child
man woman person people student teacher doctor friend family group team city village
kitchen room office school market shop forest field road bridge tower fence gate shadow
light color shape pattern line edge corner border surface object item thing scene view
image frame camera canvas board grid tile block stone rock sand water fire wood metal
plastic glass cloth shirt hat shoe coat dress umbrella candle mirror bench kite balloon
elephant giraffe zebra lion tiger bear monkey rabbit mouse squirrel duck chicken goat pig
deer fox wolf owl eagle parrot turtle frog snake butterfly bee spider whale dolphin shark
carrot potato tomato onion pepper cucumber salad soup rice noodle cheese egg milk coffee tea
juice butter sugar salt chocolate dessert breakfast lunch dinner restaurant menu waiter
airport station harbor hospital library museum church castle palace stadium theater cinema
hotel apartment garage basement attic balcony staircase hallway bathroom bedroom carpet
curtain pillow blanket towel shelf drawer cabinet refrigerator oven stove sink faucet
microwave television radio speaker headphone camera laptop tablet printer cable battery
helmet glove scarf jacket sweater trousers skirt boot sandal backpack wallet watch ring
necklace bracelet glasses uniform costume mask flag banner poster label ticket receipt
envelope package parcel present gift card calendar notebook magazine newspaper novel
guitar piano violin drum trumpet flute song music dance game puzzle chess soccer tennis
baseball basketball football hockey skateboard surfboard ski sled tent campfire lantern
ladder hammer nail screw wrench shovel bucket hose wheel engine tire mirror seat handle
island desert jungle valley canyon cliff cave volcano waterfall meadow farm orchard
vineyard pond stream ocean wave shore harbor pier lighthouse horizon sunset sunrise storm
thunder lightning rainbow fog wind breeze season spring summer autumn winter morning
afternoon evening night weekend holiday birthday wedding party festival concert parade
doctor nurse pilot farmer chef artist singer dancer soldier police officer firefighter
driver worker engineer scientist athlete player coach baby boy girl grandmother grandfather
""".split()
ADJECTIVES = """happy bright dark shiny dull smooth rough soft hard heavy light warm cold
quiet loud busy empty full clean dirty new old young modern simple complex colorful plain
round flat sharp curved straight narrow broad deep shallow clear blurry sunny cloudy wet dry
open closed early late fast slow strong weak beautiful ugly pretty neat messy crowded
peaceful calm strange familiar common rare similar different identical symmetric
elegant ancient tiny enormous gigantic miniature fluffy furry wooden metallic glossy
transparent opaque striped spotted wrinkled polished rusty dusty muddy sandy rocky snowy
frozen foggy rainy windy stormy sunlit shady cozy spacious cramped tidy cluttered vivid
faded pastel neon golden silvery wild tame friendly curious sleepy hungry thirsty tired
excited nervous serious funny gentle brave careful famous ordinary unusual delicious fresh
ripe rotten sweet sour bitter salty spicy crispy creamy juicy narrow vertical horizontal
diagonal circular rectangular triangular square-shaped irregular
""".split()
VERBS = """shows contains depicts includes displays features presents holds shows has
""".split()
ACTIONS = """sitting standing walking running jumping flying swimming reading writing
eating drinking playing sleeping waiting looking smiling talking working cooking painting
drawing holding carrying pushing pulling climbing riding driving watching listening
throwing catching kicking hitting building cleaning washing fixing opening closing
dancing singing laughing crying shouting whispering jogging skiing surfing skating
fishing hiking camping shopping studying teaching learning planting picking pouring
cutting folding stacking sorting counting pointing waving hugging resting leaning
""".split()
ADVERBS = """clearly slightly mostly nearly almost quite very rather fairly partly fully
directly exactly roughly probably certainly evenly neatly""".split()
CONNECTIVES = ["However,", "In addition,", "Overall,", "Also,", "Meanwhile,", "Finally,",
               "For example,", "In fact,", "As a result,", "On the other hand,", "Therefore,"]

SHORT_ANSWER = "Answer the question using a single word or phrase."
MC_SUFFIX = "Answer with the option's letter from the given choices directly."


def plural(shape):
    return PLURAL.get(shape, shape + "es" if shape.endswith(("s", "x", "sh", "ch")) else shape + "s")


def article(word):
    return "an" if word[0] in "aeiou" else "a"


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def pick(self, seq):
        return self.r.choice(seq)

    def obj(self):
        parts = []
        if self.r.random() < 0.4:
            parts.append(self.pick(SIZES))
        if self.r.random() < 0.15:
            parts.append(self.pick(TEXTURES))
        parts.append(self.pick(COLOURS))
        parts.append(self.pick(SHAPES))
        return " ".join(parts)

    def count(self):
        n = self.r.choice([0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 20, 24, 37])
        return n

    def number_text(self, n):
        if n < len(NUMBER_WORDS) and self.r.random() < 0.5:
            return NUMBER_WORDS[n]
        return str(n)

    def cap(self, s):
        return s[0].upper() + s[1:]

    # --- question/answer pairs -------------------------------------------------
    def qa(self):
        kind = self.r.randrange(12)
        c, s = self.pick(COLOURS), self.pick(SHAPES)
        c2, s2 = self.pick(COLOURS), self.pick(SHAPES)
        rel, inv = self.pick(RELATIONS)
        if kind == 0:
            return f"What color is the {s}?", self.cap(c) + "."
        if kind == 1:
            n = self.count()
            return (f"How many {c} {plural(s)} are in the image?",
                    self.pick([str(n), f"There are {n} {c} {plural(s)}.",
                               f"I can count {self.number_text(n)} {plural(s)}."]))
        if kind == 2:
            yes = self.r.random() < 0.5
            return (f"Is there {article(c)} {c} {s} in the picture?",
                    self.pick(["Yes", "Yes."]) if yes else self.pick(["No", "No."]))
        if kind == 3:
            return (f"Where is the {c} {s}?",
                    f"The {c} {s} is {self.pick(POSITIONS)}.")
        if kind == 4:
            yes = self.r.random() < 0.5
            return (f"Is the {c} {s} {rel} the {c2} {s2}?",
                    ("Yes, the " + f"{c} {s} is {rel} the {c2} {s2}.") if yes else
                    ("No, it is " + f"{inv} the {c2} {s2}."))
        if kind == 5:
            return (f"What shape is {rel} the {c} {s}?",
                    self.pick([self.cap(s2), f"It is {article(s2)} {s2}.", f"{article(c2).capitalize()} {c2} {s2}."]))
        if kind == 6:
            return (f"What is the color of the object {self.pick(POSITIONS)}?",
                    self.pick([c, self.cap(c), f"It is {c}."]))
        if kind == 7:
            n = self.count()
            return (f"How many shapes are there in total? {SHORT_ANSWER}", str(n))
        if kind == 8:
            return (f"Which shape is the largest?", f"The {self.obj()} is the largest shape in the image.")
        if kind == 9:
            yes = self.r.random() < 0.5
            return (f"Are all the {plural(s)} {c}? {SHORT_ANSWER}", "yes" if yes else "no")
        if kind == 10:
            return ("Describe the image.", self.description())
        return (f"What is the background color of the image? {SHORT_ANSWER}", self.pick(BACKGROUNDS))

    def mc(self):
        c, s = self.pick(COLOURS), self.pick(SHAPES)
        kind = self.r.randrange(3)
        if kind == 0:
            q, opts = f"Which shape is {self.pick(RELATIONS)[0]} the {c} {s}?", self.r.sample(SHAPES, 4)
        elif kind == 1:
            q, opts = f"What color is the {s}?", self.r.sample(COLOURS, 4)
        else:
            q, opts = f"How many {plural(s)} can you see?", [str(x) for x in self.r.sample(range(0, 13), 4)]
        lines = [q] + [f"{L}. {o}" for L, o in zip(LETTERS, opts)] + [MC_SUFFIX]
        return lines, self.pick(LETTERS)

    # --- descriptions --------------------------------------------------------
    def description(self):
        k = self.r.randint(1, 4)
        objs = [self.obj() for _ in range(k)]
        bg = self.pick(BACKGROUNDS)
        parts = [f"The image {self.pick(VERBS)} {self.number_text(k)} shape{'s' if k != 1 else ''} on a {bg} background."]
        for o in objs:
            parts.append(self.pick([
                f"There is {article(o)} {o} {self.pick(POSITIONS)}.",
                f"{self.cap(article(o))} {o} is {self.pick(POSITIONS)}.",
                f"{self.cap(article(o))} {o} appears {self.pick(RELATIONS)[0]} {article(self.pick(SHAPES))} {self.pick(SHAPES)}.",
            ]))
        return " ".join(parts)

    def generic(self):
        n1, n2, n3 = self.pick(NOUNS), self.pick(NOUNS), self.pick(NOUNS)
        a1, a2 = self.pick(ADJECTIVES), self.pick(ADJECTIVES)
        act, adv = self.pick(ACTIONS), self.pick(ADVERBS)
        forms = [
            f"The {a1} {n1} is {self.pick(RELATIONS)[0]} the {n2}.",
            f"A {a1} {n1} is {act} near the {a2} {n2}.",
            f"In this picture, we can see {article(a1)} {a1} {n1} and {article(n2)} {n2}.",
            f"The photo {self.pick(VERBS)} {article(a1)} {a1} {n1} with {article(n2)} {n2} in the background.",
            f"{self.pick(CONNECTIVES)} the {n1} looks {adv} {a1}.",
            f"There are {self.number_text(self.count())} {n1}s on the {n2}.",
            f"Someone is {act} next to the {n1}, which is {a1} and {a2}.",
            f"The {n1} and the {n2} are {adv} {a1}, while the {n3} is {a2}.",
            f"This is {article(a1)} {a1} scene with {article(n1)} {n1}, {article(n2)} {n2} and {article(n3)} {n3}.",
            f"It is {adv} hard to tell whether the {n1} is {a1} or {a2}.",
            f"The {n1} on the left is {a1}, and the {n2} on the right is {a2}.",
            f"Please look at the {n1} and tell me what you see.",
            f"I think the {n1} is {a1} because of the light.",
        ]
        return self.pick(forms)

    # --- full LLaVA-style conversations (one line each, no newline inside) ----
    def conversation(self):
        q, a = self.qa()
        img = self.r.random() < 0.7
        user = ("<image> " if img else "") + q
        line = f"{SYSTEM} USER: {user} ASSISTANT: {a}"
        return line

    def lines(self, target_bytes):
        out, size = [], 0
        while size < target_bytes:
            r = self.r.random()
            if r < 0.30:
                q, a = self.qa()
                batch = [q, a]
            elif r < 0.40:
                qlines, ans = self.mc()
                batch = qlines + [ans, f"ASSISTANT: {ans}"]
            elif r < 0.50:
                batch = [self.conversation()]
            elif r < 0.55:
                batch = [SYSTEM]
            elif r < 0.75:
                batch = [self.description()]
            else:
                batch = [self.generic()]
            for line in batch:
                out.append(line)
                size += len(line.encode("utf-8")) + 1
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--megabytes", type=float, default=4.0)
    args = ap.parse_args()
    lines = Gen(args.seed).lines(int(args.megabytes * 1024 * 1024))
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
