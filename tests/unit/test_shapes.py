import numpy as np
import pytest

from multimodal_kit.data.embedded import embedded_config, load_embedded, shapes
from multimodal_kit.data.embedded.shapes import COLORS, INVERSE, SHAPES, SIZES, ShapesConfig, sample_scene


def test_scenes_are_deterministic() -> None:
    config = ShapesConfig()
    for index in range(20):
        a_pixels, a_objects, a_relation = sample_scene(config, "train", index)
        b_pixels, b_objects, b_relation = sample_scene(config, "train", index)
        assert np.array_equal(a_pixels, b_pixels)
        assert (a_objects, a_relation) == (b_objects, b_relation)
    other = sample_scene(ShapesConfig(seed=1), "train", 0)[0]
    assert not np.array_equal(sample_scene(config, "train", 0)[0], other)


def test_every_caption_reads_back_to_its_scene() -> None:
    config = ShapesConfig()
    for index in range(100):
        _, objects, relation = sample_scene(config, "train", index)
        scene = ([(o.size, o.color, o.shape) for o in objects], relation)
        for k, caption in enumerate(shapes.scene_captions(objects, relation)):
            if len(objects) == 2 and k == 1:  # the other order: "<b> <inverse> <a>"
                assert shapes.read_caption(caption) == (scene[0][::-1], INVERSE[relation])
            else:
                assert shapes.read_caption(caption) == scene
    assert shapes.read_caption("A big red circle.") == ([("large", "red", "circle")], "")
    for other in ("a red circle", "a large red circle left of", "a large pink circle", ""):
        assert shapes.read_caption(other) is None


def test_captions_match_scene_parameters() -> None:
    config = ShapesConfig()
    two = 0
    for index in range(300):
        pixels, objects, relation = sample_scene(config, "train", index)
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
        captions = shapes.scene_captions(objects, relation)
        assert len(captions) >= 3 and len(set(captions)) == len(captions)
        for obj in objects:
            assert obj.shape in SHAPES and obj.color in COLORS and obj.size in SIZES
            assert f"{obj.size} {obj.color} {obj.shape}" in captions[0]
        if len(objects) == 2:
            two += 1
            a, b = objects
            # canonical caption: "<a> <relation> <b>", true of the drawn coordinates
            assert captions[0] == f"{a.phrase()} {relation} {b.phrase()}"
            assert captions[1] == f"{b.phrase()} {INVERSE[relation]} {a.phrase()}"
            if relation == "left of":
                assert a.x < b.x and abs(a.y - b.y) < abs(a.x - b.x)
            elif relation == "above":
                assert a.y < b.y and abs(a.x - b.x) < abs(a.y - b.y)
            else:
                pytest.fail(f"canonical relations are 'left of'/'above', got {relation!r}")
            # the object's colour really is at its centre
            assert tuple(pixels[round(a.y), round(a.x)]) == COLORS[a.color] or a.shape == "triangle"
        else:
            assert relation == ""
    assert two >= 150  # at least half of the scenes carry a relation


def test_load_embedded_generates_once_and_caches(tmp_path, monkeypatch) -> None:
    options = {"num_train": 12, "num_validation": 4, "num_test": 4}
    first = load_embedded("shapes", options, cache_dir=tmp_path, progress=False)
    assert {k: len(v) for k, v in first.items()} == {"train": 12, "validation": 4, "test": 4}
    assert len(first["train"][0]["captions"]) == 4 and first["train"][0]["objects"]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setitem(shapes.__dict__, "generate_split", fail)
    second = load_embedded("shapes", options, cache_dir=tmp_path, progress=False)
    assert second["train"]["text"][:] == first["train"]["text"][:]


def test_unknown_generator_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown key.*num_trian.*known keys"):
        embedded_config("shapes", {"num_trian": 5})


def test_a_scene_is_its_background_and_objects_drawn_and_can_be_redrawn_edited() -> None:
    import dataclasses

    from multimodal_kit.data.embedded.shapes import render_scene, scene_parts

    config = ShapesConfig()
    background, objects, relation = scene_parts(config, "test", 3)
    pixels, same_objects, same_relation = sample_scene(config, "test", 3)
    assert np.array_equal(render_scene(background, objects), pixels) and (objects, relation) == (same_objects,
                                                                                              same_relation)
    recoloured = [dataclasses.replace(objects[0], color="blue" if objects[0].color != "blue" else "red"),
                  *objects[1:]]
    edited = render_scene(background, recoloured)
    changed = np.argwhere((edited != pixels).any(-1))  # (K, 2) rows, columns
    assert len(changed) > 10
    assert np.abs(changed[:, 1] - objects[0].x).max() <= 12 and np.abs(changed[:, 0] - objects[0].y).max() <= 12


def test_a_reading_in_either_order_becomes_the_canonical_one() -> None:
    from multimodal_kit.data.embedded.shapes import canonical_scene, read_caption

    forward = read_caption("a small red circle left of a large blue square")
    backward = read_caption("a large blue square right of a small red circle")
    assert canonical_scene(*backward) == forward and canonical_scene(*forward) == forward
    assert canonical_scene(*read_caption("a big green diamond below a little red circle")) == \
        ([("small", "red", "circle"), ("large", "green", "diamond")], "above")
