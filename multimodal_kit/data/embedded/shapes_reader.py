"""A geometric reader for ``shapes`` scenes, with no learned parameters: it segments the objects from the grey
background by colour, reads each one's colour (the nearest palette colour), size (its extent), shape (from its
geometry) and the relation between two (from their centroids), and writes the caption in the generator's grammar
(:func:`~multimodal_kit.data.embedded.shapes.scene_captions`' canonical form). A network cannot flatter it: it
scores generated and edited images beside the kit's neural readers.

The background is grey (red = green = blue, noise and all), every palette colour is far from grey, the objects of
a scene never touch, and their extents differ by size: small objects span 11–12 pixels at 64×64, large ones 20–22.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from multimodal_kit.data.embedded.shapes import COLORS, canonical_scene, read_caption

_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)  # (6, 3)
_NAMES = list(COLORS)


@dataclass(frozen=True)
class ReaderConfig:
    """Thresholds, in the pixels of a 64×64 image (scaled with the image).

    Args:
        chroma: a pixel is an object's when its channels spread by more than this (grey: 0).
        min_area: smaller colour blobs are specks, not objects.
        large_extent: an object whose larger side spans at least this many pixels is large.
    """

    chroma: float = 60.0
    min_area: float = 12.0
    large_extent: float = 16.0


@dataclass(frozen=True)
class ReadObject:
    """One object as read: its attributes and centroid (x, y) in pixels."""

    size: str
    color: str
    shape: str
    x: float
    y: float


def object_mask(image: np.ndarray, config: ReaderConfig = ReaderConfig()) -> np.ndarray:
    """Which pixels of an image (H, W, 3) uint8 belong to objects: (H, W) bool."""
    pixels = image.astype(np.float32)
    return (pixels.max(-1) - pixels.min(-1)) > config.chroma


def shape_of(blob: np.ndarray) -> str:
    """The shape of one object's pixels, a (h, w) bool crop to its bounding box: the share of the box it fills
    (square ≈ 1, circle ≈ π/4, triangle and diamond ≈ 1/2), and for the last two where the mass sits (a triangle's
    centroid lies two thirds down, a diamond's in the middle)."""
    fill = blob.mean()
    if fill > 0.9:
        return "square"
    if fill > 0.66:
        return "circle"
    rows = np.nonzero(blob)[0]
    centre = (rows.mean() + 0.5) / blob.shape[0]
    return "triangle" if centre > 0.58 else "diamond"


def read_objects(image: np.ndarray, config: ReaderConfig = ReaderConfig()) -> list[ReadObject]:
    """Every object of an image (H, W, 3) uint8 that covers at least ``min_area`` pixels, largest first."""
    scale = image.shape[0] / 64
    labels, _ = ndimage.label(object_mask(image, config))  # 4-connected: objects a pixel apart stay two
    found = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        blob = labels[box] == k
        if blob.sum() < config.min_area * scale**2:
            continue
        colours = image[box][blob].astype(np.float32)  # (n, 3)
        nearest = ((colours[:, None] - _PALETTE[None]) ** 2).sum(-1).argmin(1)
        colour = _NAMES[int(np.bincount(nearest, minlength=len(_NAMES)).argmax())]
        extent = max(blob.shape)
        ys, xs = np.nonzero(blob)
        found.append((blob.sum(), ReadObject("large" if extent >= config.large_extent * scale else "small", colour,
                                             shape_of(blob), float(xs.mean() + box[1].start),
                                             float(ys.mean() + box[0].start))))
    return [o for _, o in sorted(found, key=lambda item: -item[0])]


def relation_of(a: ReadObject, b: ReadObject) -> str:
    """How ``a`` lies to ``b`` on the axis they differ most on: ``left of``, ``right of``, ``above`` or ``below``."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def read_scene(image: np.ndarray, config: ReaderConfig = ReaderConfig()) -> str:
    """The caption of an image (H, W, 3) uint8 in the generator's canonical grammar ("a small red circle", "a
    large blue square left of a small green triangle": the left or upper object first); ``""`` when it shows no
    object, and the two largest objects' caption when it shows more (:func:`count_objects` tells)."""
    return caption_of(read_objects(image, config))


def caption_of(objects: list[ReadObject]) -> str:
    """The canonical caption of objects read (the first two; ``""`` for none)."""
    if not objects:
        return ""
    if len(objects) == 1:
        return _phrase(objects[0])
    a, b = objects[:2]
    if relation_of(a, b) in ("right of", "below"):
        a, b = b, a
    return f"{_phrase(a)} {relation_of(a, b)} {_phrase(b)}"


def count_objects(image: np.ndarray, config: ReaderConfig = ReaderConfig()) -> int:
    """How many objects an image (H, W, 3) uint8 shows."""
    return len(read_objects(image, config))


#: what :func:`reading_scores` scores; ``relation`` only for prompts with two objects
READING_SCORES = ("exact_match", "colour", "shape", "size", "relation", "count")


def reading_scores(image: np.ndarray, prompt: str, config: ReaderConfig = ReaderConfig()) -> dict[str, bool] | None:
    """Whether an image (H, W, 3) uint8 shows what ``prompt`` (a ``shapes`` caption, any of its forms) asks, by
    :data:`READING_SCORES`: ``count`` (as many objects), ``colour``/``shape``/``size`` (every object's, each
    object paired with the prompt's object it agrees with most), ``relation`` (two-object prompts: the paired
    objects lie as asked) and ``exact_match`` (the whole canonical scene). ``None``: the prompt is no shapes
    caption."""
    wanted = read_caption(prompt)
    if wanted is None:
        return None
    objects, relation = canonical_scene(*wanted)
    found = read_objects(image, config)
    if len(found) != len(objects):
        return {name: False for name in READING_SCORES if name != "relation" or len(objects) == 2}
    scores = {"count": True}
    seen, seen_relation = canonical_scene(*read_caption(caption_of(found)))
    orders = [list(range(len(objects)))] + ([[1, 0]] if len(objects) == 2 else [])
    order = max(orders, key=lambda o: sum(a == b for j, k in enumerate(o) for a, b in zip(seen[k], objects[j],
                                                                                        strict=True)))
    for slot, name in enumerate(("size", "colour", "shape")):
        scores[name] = all(seen[k][slot] == objects[j][slot] for j, k in enumerate(order))
    if len(objects) == 2:
        scores["relation"] = order == [0, 1] and seen_relation == relation
    scores["exact_match"] = seen == objects and seen_relation == relation
    return scores


def _phrase(obj: ReadObject) -> str:
    return f"a {obj.size} {obj.color} {obj.shape}"
