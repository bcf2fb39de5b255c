"""Hard negatives for image–text matching on ``shapes`` captions: the caption of the same scene with one
attribute swapped — an object's colour, shape or size, or the relation's two objects trading places ("a red circle
left of a blue square" → "a blue square left of a red circle") — written in the caption's own words (its
paraphrase, its size synonyms, its relation word), and never two identical objects, so the text alone never says
which is which."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from multimodal_kit.data.embedded.shapes import COLORS, INVERSE, SHAPES, SIZE_SYNONYMS

ATTRIBUTES = ("color", "shape", "size", "relation")
#: each size word and the other size in the same register (small ↔ large, little ↔ big)
OTHER_SIZE = {"small": "large", "large": "small", **{v: SIZE_SYNONYMS["large" if k == "small" else "small"]
                                                     for k, v in SIZE_SYNONYMS.items()}}
_WORDS = {"size": tuple(OTHER_SIZE), "color": tuple(COLORS), "shape": SHAPES}
_OBJECT = re.compile(rf"\b({'|'.join(_WORDS['size'])}) ({'|'.join(_WORDS['color'])}) ({'|'.join(SHAPES)})\b")
_RELATION = re.compile(rf"\b({'|'.join(INVERSE)})\b")


@dataclass(frozen=True)
class Negative:
    """A caption with one attribute swapped, and which."""

    text: str
    attribute: str


def swaps(text: str) -> dict[str, list[tuple[int, int, str]]]:
    """Every single-attribute swap ``text`` allows, by attribute: ``(start, end, replacement)`` spans. Colours and
    shapes may become any other value, sizes the other size, unless the two objects would then read the same; a
    relation's two objects trade places (the relation word stays: turning it around would give it away, the
    embedded captions' canonical form naming only "left of" and "above")."""
    found: dict[str, list[tuple[int, int, str]]] = {name: [] for name in ATTRIBUTES}
    objects = list(_OBJECT.finditer(text))
    for k, match in enumerate(objects):
        others = [o.group(0) for j, o in enumerate(objects) if j != k]
        for group, name in ((1, "size"), (2, "color"), (3, "shape")):
            start, end = match.span(group)
            word = match.group(group)
            choices = [OTHER_SIZE[word]] if name == "size" else [w for w in _WORDS[name] if w != word]
            for choice in choices:
                swapped = match.group(0)[:start - match.start()] + choice + match.group(0)[end - match.start():]
                if not any(_same(swapped, other) for other in others):
                    found[name].append((start, end, choice))
    if len(objects) == 2 and _RELATION.search(text, objects[0].end(), objects[1].start()):
        first, second = objects
        middle = text[first.end():second.start()]
        found["relation"].append((first.start(), second.end(), second.group(0) + middle + first.group(0)))
    return found


def _same(a: str, b: str) -> bool:
    """Whether two object phrases name the same object (size synonyms alike)."""
    canonical = {v: k for k, v in SIZE_SYNONYMS.items()}
    return [canonical.get(w, w) for w in a.split()] == [canonical.get(w, w) for w in b.split()]


def hard_negative(text: str, rng: np.random.Generator,
                  weights: dict[str, float] | None = None) -> Negative | None:
    """``text`` with one attribute swapped: the attribute drawn among those it has (uniformly, or in proportion to
    ``weights``, one per attribute name, 1 for a name left out), then one swap of it; ``None`` for a text with no
    object phrase (not a shapes caption)."""
    options = {name: spans for name, spans in swaps(text).items() if spans}
    if not options:
        return None
    shares = np.array([(weights or {}).get(name, 1.0) for name in options], dtype=float)
    attribute = list(options)[int(rng.choice(len(options), p=shares / shares.sum()))] if weights else \
        list(options)[int(rng.integers(len(options)))]
    start, end, word = options[attribute][int(rng.integers(len(options[attribute])))]
    return Negative(text[:start] + word + text[end:], attribute)


def item_rng(item_id: str, seed: int = 0) -> np.random.Generator:
    """The generator of an evaluation item's negative: the same for an id in every run and on every process."""
    return np.random.default_rng([seed, zlib.crc32(item_id.encode())])
