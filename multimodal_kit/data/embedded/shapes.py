"""The embedded ``shapes`` image–caption set: synthetic scenes of one or two coloured shapes.

Each 64×64 RGB scene holds one object or two objects in a spatial relation (left of, right of, above, below),
on a noisy grey background with position jitter. Every image has four reference captions (paraphrases and both
orders of a relation) and keeps its scene parameters, so a generated image can be scored against its prompt.

The set is a pure function of its :class:`ShapesConfig`: sample ``i`` of split ``s`` is drawn from its own
``numpy`` generator seeded with ``(seed, s, i)``.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
}
SIZES: dict[str, int] = {"small": 6, "large": 11}  # half-extent in pixels at 64×64
SIZE_SYNONYMS = {"small": "little", "large": "big"}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ShapesConfig:
    """Parameters of the generated set; the cache key is derived from all of them.

    Args:
        num_train: training scenes.
        num_validation: validation scenes.
        num_test: test scenes.
        image_size: side of the square image in pixels (object sizes scale with it).
        two_object_fraction: share of scenes with two objects and a relation (the hard part).
        noise_std: standard deviation of the background's Gaussian pixel noise (0–255 scale).
        seed: the seed every sample is derived from.
    """

    num_train: int = 10_000
    num_validation: int = 1_000
    num_test: int = 1_000
    image_size: int = 64
    two_object_fraction: float = 0.6
    noise_std: float = 10.0
    seed: int = 0
    version: int = field(default=1)  # bump when the generator's output changes

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    x: float
    y: float

    def phrase(self, synonym: bool = False) -> str:
        size = SIZE_SYNONYMS[self.size] if synonym else self.size
        return f"a {size} {self.color} {self.shape}"


def scene_captions(objects: list[SceneObject], relation: str) -> list[str]:
    """Reference captions for a scene: the canonical one first, then paraphrases.

    Args:
        objects: one object, or two with ``objects[0] <relation> objects[1]``.
        relation: one of :data:`RELATIONS`, or ``""`` for a single object.
    """
    if len(objects) == 1:
        (a,) = objects
        return [a.phrase(), f"there is {a.phrase()}", a.phrase(synonym=True), "one" + a.phrase()[1:]]
    a, b = objects
    return [
        f"{a.phrase()} {relation} {b.phrase()}",
        f"{b.phrase()} {INVERSE[relation]} {a.phrase()}",
        f"there is {a.phrase()} {relation} {b.phrase()}",
        f"{a.phrase(synonym=True)} {relation} {b.phrase(synonym=True)}",
    ]


_OBJECT = (rf"(?:a|an) ({'|'.join([*SIZES, *SIZE_SYNONYMS.values()])}) ({'|'.join(COLORS)}) "
           rf"({'|'.join(SHAPES)})")
_CAPTION = re.compile(rf"(?:there is )?{_OBJECT}(?: ({'|'.join(RELATIONS)}) {_OBJECT})?")
_SIZE_WORD = {**{s: s for s in SIZES}, **{v: k for k, v in SIZE_SYNONYMS.items()}}


def canonical_scene(objects: list[tuple[str, str, str]], relation: str) -> tuple[list[tuple[str, str, str]], str]:
    """A reading of :func:`read_caption` in the canonical order of :func:`scene_captions`' first caption: the left
    or upper object first ("b right of a" → "a left of b"), so two readings of one scene compare object by object."""
    if relation in ("right of", "below"):
        return objects[::-1], INVERSE[relation]
    return objects, relation


def read_caption(text: str) -> tuple[list[tuple[str, str, str]], str] | None:
    """The scene a caption of :func:`scene_captions`'s forms describes: ``[(size, colour, shape), …]`` (one or two
    objects, in the caption's order) and the relation (``""`` for one object), or ``None`` for any other text.
    Scores what a captioner reads in a generated image attribute by attribute."""
    text = " ".join(text.lower().replace(".", " ").split())
    if text.startswith("one "):
        text = "a " + text[4:]
    match = _CAPTION.fullmatch(text)
    if match is None:
        return None
    words = match.groups()
    objects = [(_SIZE_WORD[words[0]], words[1], words[2])]
    if words[3]:
        objects.append((_SIZE_WORD[words[4]], words[5], words[6]))
    return objects, words[3] or ""


def _draw(draw: ImageDraw.ImageDraw, obj: SceneObject, scale: float) -> None:
    r = SIZES[obj.size] * scale
    x, y = obj.x, obj.y
    fill = COLORS[obj.color]
    if obj.shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif obj.shape == "square":
        s = r * 0.9
        draw.rectangle([x - s, y - s, x + s, y + s], fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(f"unknown shape {obj.shape!r}")


def _sample_object(rng: np.random.Generator, exclude: tuple[str, str, str] | None = None) -> tuple[str, str, str]:
    while True:
        attrs = (SHAPES[rng.integers(len(SHAPES))], list(COLORS)[rng.integers(len(COLORS))],
                 list(SIZES)[rng.integers(len(SIZES))])
        if attrs != exclude:
            return attrs


def _place(rng: np.random.Generator, half: float, n: int) -> float:
    return float(rng.uniform(half + 1, n - half - 1))


def sample_scene(config: ShapesConfig, split: str, index: int) -> tuple[np.ndarray, list[SceneObject], str]:
    """Draw one scene. Returns the image (H, W, 3) uint8, its objects and the relation ("" for one object)."""
    background, objects, relation = scene_parts(config, split, index)
    return render_scene(background, objects), objects, relation


def render_scene(background: np.ndarray, objects: list[SceneObject]) -> np.ndarray:
    """A scene's background (H, W, 3) uint8 with ``objects`` drawn on it, in order → (H, W, 3) uint8. With the
    parts of :func:`scene_parts` it is :func:`sample_scene`'s image; with edited objects (another colour, shape or
    size at the same place) the same scene edited, noise and all."""
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        _draw(draw, obj, background.shape[0] / 64)
    return np.asarray(image)


def scene_parts(config: ShapesConfig, split: str, index: int) -> tuple[np.ndarray, list[SceneObject], str]:
    """One scene's background (H, W, 3) uint8 (grey with noise), its objects and relation, before drawing."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    n = config.image_size
    scale = n / 64
    background = rng.uniform(95, 140)
    pixels = background + rng.normal(0.0, config.noise_std, size=(n, n, 1)) * np.ones((1, 1, 3))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)

    first = _sample_object(rng)
    if rng.random() >= config.two_object_fraction:
        half = SIZES[first[2]] * scale
        return pixels, [SceneObject(*first, x=_place(rng, half, n), y=_place(rng, half, n))], ""

    second = _sample_object(rng, exclude=first)
    relation = RELATIONS[rng.integers(len(RELATIONS))]
    ha, hb = SIZES[first[2]] * scale, SIZES[second[2]] * scale
    axis = 0 if relation in ("left of", "right of") else 1
    sign = -1.0 if relation in ("left of", "above") else 1.0  # a's coordinate minus b's, on the relation's axis
    while True:  # rejection sampling: the relation holds clearly and the objects do not touch
        a = np.array([_place(rng, ha, n), _place(rng, ha, n)])
        b = np.array([_place(rng, hb, n), _place(rng, hb, n)])
        d = a - b
        major, minor = d[axis] * sign, abs(d[1 - axis])
        if major > ha + hb + 2 * scale and minor < 0.5 * major:
            break
    objects = [SceneObject(*first, x=float(a[0]), y=float(a[1])), SceneObject(*second, x=float(b[0]), y=float(b[1]))]
    if relation in ("right of", "below"):  # canonical caption: the left or upper object first
        objects, relation = objects[::-1], INVERSE[relation]
    return pixels, objects, relation


def generate_split(config: ShapesConfig, split: str, progress: bool = True) -> dict[str, list]:
    """Generate one split as columns: image (PNG bytes), text, captions, id, num_objects, relation, objects."""
    from tqdm.auto import tqdm

    columns: dict[str, list] = {k: [] for k in ("image", "text", "captions", "id", "num_objects", "relation", "objects")}
    size = config.split_sizes()[split]
    for i in tqdm(range(size), desc=f"shapes/{split}", disable=not progress, unit="img", leave=False):
        pixels, objects, relation = sample_scene(config, split, i)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        captions = scene_captions(objects, relation)
        columns["image"].append({"bytes": buffer.getvalue(), "path": None})
        columns["text"].append(captions[0])
        columns["captions"].append(captions)
        columns["id"].append(f"shapes-{split}-{i:06d}")
        columns["num_objects"].append(len(objects))
        columns["relation"].append(relation)
        columns["objects"].append([asdict(o) for o in objects])
    return columns
