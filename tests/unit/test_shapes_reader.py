"""The geometric reader of ``shapes`` scenes: hand-drawn cases (every shape, colour and size; each relation; no
object; specks), and the generator's own scenes read back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal_kit.data.embedded.shapes import (
    COLORS,
    SHAPES,
    SceneObject,
    ShapesConfig,
    render_scene,
    sample_scene,
    scene_captions,
)
from multimodal_kit.data.embedded.shapes_reader import count_objects, read_objects, read_scene, reading_scores


def grey(n: int = 64, seed: int = 0) -> np.ndarray:
    """A noisy grey background like the generator's: the same noise in every channel."""
    rng = np.random.default_rng(seed)
    level = 120 + rng.normal(0, 10, size=(n, n, 1))
    return np.clip(level * np.ones((1, 1, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", ["small", "large"])
def test_one_object_of_each_shape_and_size_in_every_colour(shape: str, size: str) -> None:
    for colour in COLORS:
        image = render_scene(grey(), [SceneObject(shape, colour, size, 30.0, 33.0)])
        assert read_scene(image) == f"a {size} {colour} {shape}"


@pytest.mark.parametrize(("a", "b", "caption"), [
    ((14.0, 32.0), (48.0, 30.0), "a small red circle left of a large blue square"),
    ((48.0, 32.0), (14.0, 30.0), "a large blue square left of a small red circle"),  # the left object first
    ((32.0, 12.0), (30.0, 46.0), "a small red circle above a large blue square"),
    ((32.0, 48.0), (30.0, 14.0), "a large blue square above a small red circle"),
])
def test_the_relation_comes_from_the_centroids_in_canonical_order(a: tuple, b: tuple, caption: str) -> None:
    image = render_scene(grey(), [SceneObject("circle", "red", "small", *a), SceneObject("square", "blue", "large", *b)])
    assert read_scene(image) == caption


def test_no_object_specks_and_a_third_object() -> None:
    assert read_scene(grey()) == "" and count_objects(grey()) == 0
    specked = grey()
    specked[10:12, 10:12] = (220, 40, 40)  # 4 red pixels: noise, not an object
    assert read_scene(specked) == "" and count_objects(specked) == 0
    three = render_scene(grey(), [SceneObject("circle", "red", "small", 12.0, 12.0),
                                  SceneObject("square", "blue", "large", 45.0, 45.0),
                                  SceneObject("triangle", "green", "small", 12.0, 50.0)])
    assert count_objects(three) == 3
    assert [o.shape for o in read_objects(three)] == ["square", "circle", "triangle"]  # largest first


@pytest.mark.parametrize("size", [64, 128])
def test_the_generators_own_scenes_read_back_exactly(size: int) -> None:
    config = ShapesConfig(image_size=size)
    for i in range(150 if size == 64 else 40):
        image, objects, relation = sample_scene(config, "validation", i)
        assert read_scene(image) == scene_captions(objects, relation)[0], i


def test_reading_scores_by_hand() -> None:
    prompt = "a small red circle left of a large blue square"
    circle, square = SceneObject("circle", "red", "small", 14.0, 32.0), SceneObject("square", "blue", "large", 46.0, 30.0)
    right = render_scene(grey(), [circle, square])
    assert reading_scores(right, prompt) == dict.fromkeys(
        ("count", "size", "colour", "shape", "relation", "exact_match"), True)
    assert reading_scores(right, "a large blue square right of a small red circle") == reading_scores(right, prompt)
    swapped = render_scene(grey(), [SceneObject("circle", "red", "small", 46.0, 32.0),
                                    SceneObject("square", "blue", "large", 14.0, 30.0)])
    assert reading_scores(swapped, prompt) == {"count": True, "size": True, "colour": True, "shape": True,
                                               "relation": False, "exact_match": False}  # the objects right, not where
    recoloured = render_scene(grey(), [SceneObject("circle", "blue", "small", 14.0, 32.0), square])
    assert reading_scores(recoloured, prompt) == {"count": True, "size": True, "colour": False, "shape": True,
                                                  "relation": True, "exact_match": False}
    alone = render_scene(grey(), [circle])
    assert reading_scores(alone, prompt) == dict.fromkeys(
        ("exact_match", "colour", "shape", "size", "relation", "count"), False)
    assert reading_scores(alone, "one small red circle") == dict.fromkeys(
        ("count", "size", "colour", "shape", "exact_match"), True)  # no relation to score for one object
    assert reading_scores(right, "a photo of a dog") is None


def test_the_generated_samples_grid_shows_what_the_reader_reads_under_each_prompt() -> None:
    from types import SimpleNamespace

    import torch

    from multimodal_kit.callbacks import GeneratedSamples

    drawn = render_scene(grey(), [SceneObject("square", "blue", "large", 30.0, 33.0)])
    media = [torch.from_numpy(drawn).permute(2, 0, 1), torch.from_numpy(grey(seed=1)).permute(2, 0, 1)]  # (3, S, S)
    prompts = ["a large blue square", "a small red circle"]
    reading = SimpleNamespace(hparams={"geometric_reader": True})
    assert GeneratedSamples.captions(reading, prompts, media) == [
        "a large blue square\nreads: a large blue square", "a small red circle\nreads: (nothing)"]
    assert GeneratedSamples.captions(SimpleNamespace(hparams={}), prompts, media) == prompts  # no reader: prompts
