"""Text-guided image editing: the generated edits (one attribute of one object, named unambiguously, drawn at the
same place), the reader's scores against hand-worked readings, and the task through the CLI on tiny data (fit with
pictures, test with a tiny captioner as the reader, predict writes edited images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from multimodal_kit.cli import main
from multimodal_kit.data.embedded.shapes import SceneObject, read_caption
from multimodal_kit.tasks.editing.data import EditConfig, edit_scene, generate_split
from multimodal_kit.tasks.editing.method import PARTS, edit_reading
from multimodal_kit.tasks.editing.unet import FiLMUNet

REPO = Path(__file__).resolve().parents[2]


def test_each_edit_changes_one_attribute_of_the_object_it_names() -> None:
    columns = generate_split(EditConfig(num_train=60), "train", progress=False)
    assert set(columns["edit"]) == {"color", "shape", "size"}
    for instruction, before, after, edit, k in zip(columns["instruction"], columns["source_text"], columns["text"],
                                                   columns["edit"], columns["edited"], strict=True):
        (old, relation), (new, relation_after) = read_caption(before), read_caption(after)
        slot = {"size": 0, "color": 1, "shape": 2}[edit]
        changed = [(j, s) for j in range(len(old)) for s in range(3) if old[j][s] != new[j][s]]
        assert changed == [(int(k), slot)] and relation == relation_after
        assert new[int(k)][slot] in instruction.split()  # the instruction says what it becomes
        assert old[int(k)][2] in instruction or edit == "shape"  # and names the object by its shape


def test_an_instruction_names_the_object_unambiguously() -> None:
    a = SceneObject("circle", "red", "small", 16.0, 32.0)
    b = SceneObject("circle", "blue", "small", 48.0, 32.0)
    rng = np.random.default_rng(0)
    shape_edits = [d for d in (edit_scene([a, b], rng, 64) for _ in range(200)) if d and d[2] == "shape"]
    assert shape_edits and all(d[1].startswith(("turn the red circle", "turn the blue circle"))
                               for d in shape_edits)  # "the circle" alone would name both


def test_the_reader_scores_by_hand() -> None:
    truth = ["a small blue circle left of a large red square"] * 4
    read = ["a small blue circle left of a large red square",  # all right
            "a small red circle left of a large red square",  # the edit (object 0's colour) missing
            "a small blue circle left of a large red triangle",  # the edit done, object 1 changed
            "nothing readable"]
    items = edit_reading(read, truth, ["color"] * 4, [0] * 4)
    assert [i["edit"] for i in items] == [True, False, True, False]
    assert [all(i[p] for p in PARTS) for i in items] == [True, True, False, False]  # everything else kept
    assert items[2] == {"edit": True, "edited_object": True, "other_object": False, "layout": True}
    assert edit_reading(["a small blue square left of a large red square"], truth[:1], ["color"], [0])[0] == {
        "edit": True, "edited_object": False, "other_object": True, "layout": True}  # the edited one's shape lost
    assert edit_reading(["a small blue circle", "a small blue circle above a large red square"], truth[:2],
                        ["color"] * 2, [0] * 2)[1] == {"edit": True, "edited_object": True, "other_object": True,
                                                        "layout": False}  # one object lost fails all; "above" layout
    # the reader may write the other order of a relation: the same scene, object by object
    (item,) = edit_reading(["a large red square right of a small blue circle"], truth[:1], ["color"], [0])
    assert all(item.values())
    # the truth itself may be in the other order: ``edited`` counts its objects as it writes them (object 0: the
    # square here), so an output that left the square green has not done the edit, and has kept everything else
    (item,) = edit_reading(["a small blue circle left of a large green square"],
                           ["a large red square right of a small blue circle"], ["color"], [0])
    assert item == {"edit": False, "edited_object": True, "other_object": True, "layout": True}
    (item,) = edit_reading(["a small blue triangle left of a large red square"],
                           ["a large red square right of a small blue circle"], ["color"], [0])
    assert item == {"edit": True, "edited_object": True, "other_object": False, "layout": True}


def test_the_unet_hears_the_words_at_its_coarsest_levels_and_starts_as_the_identity() -> None:
    torch.manual_seed(0)
    image, condition, words = torch.randn(2, 3, 16, 16), torch.randn(2, 16), torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    residual = FiLMUNet(16, (8, 16, 32), word_dim=16, attention_levels=2, composite=False)
    assert torch.equal(residual(image, condition, words, mask), image)  # the predicted change starts at zero
    unet = FiLMUNet(16, (8, 16, 32), word_dim=16, attention_levels=2)
    assert sorted(unet.attend_down) == ["1", "2"] and sorted(unet.attend_up) == ["1"]
    # the composite's masks start at sigmoid(-4): 1.8 % of the way from the input to a colour of zero
    assert torch.allclose(unet(image, condition, words, mask), image * (1 - torch.sigmoid(torch.tensor(-4.0))))
    for module in (unet.out, *(a.out for a in (*unet.attend_down.values(), *unet.attend_up.values()))):
        nn.init.normal_(module.weight, std=0.1)
    unet.eval()
    edited = unet(image, condition, words, mask)
    padded = words.clone()
    padded[1, 3:] = 100.0
    assert torch.allclose(unet(image, condition, padded, mask), edited, atol=1e-6)  # padding is not heard
    other = words.clone()
    other[0, 0] += 1.0
    changed = unet(image, condition, other, mask)
    assert not torch.allclose(changed[0], edited[0]) and torch.allclose(changed[1], edited[1], atol=1e-6)


TINY = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "16", "--data.init_args.eval_batch_size",
        "16", "--model.init_args.widths", "[8, 16]", "--model.init_args.text_embed_dim", "8",
        "--model.init_args.text_hidden_dim", "16", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar",
        "false"]


def test_editing_fits_tests_with_a_reader_and_predicts(tmp_path: Path) -> None:
    from PIL import Image

    reader = tmp_path / "reader"
    main(["fit", "-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "--run_dir", str(reader),
          "--data.init_args.embedded_options", '{"num_train": 32, "num_validation": 8, "num_test": 8}',
          "--data.init_args.image_size", "16", "--model.init_args.embed_dim", "8", "--model.init_args.hidden_dim",
          "16", "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
          '"init_args": {"widths": [8, 16]}}', "--trainer.max_epochs", "1", "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false"])
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "editing_image_caption.yaml"), "--run_dir", str(run), *TINY,
          "--trainer.logger", "false", "--model.init_args.evaluator", str(reader / "checkpoints" / "last.ckpt")])
    assert Image.open(run / "media" / "edits" / "epoch_000.png").size[0] == 3 * 128  # input | output | target
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--results_path", str(results),
          "--trainer.logger", "false"])
    metrics = json.loads(results.read_text())
    assert {"test/l1", "test/psnr", "test/edit_accuracy", "test/preserve_accuracy", "test/real_edit_accuracy",
            "test/real_preserve_accuracy", "test/read_edit_accuracy", "test/read_preserve_accuracy",
            "test/real_read_edit_accuracy", "test/real_read_preserve_accuracy", "test/read_kept_edited_object",
            "test/read_kept_other_object", "test/read_kept_layout", "test/read_preserve_accuracy_color",
            "test/read_preserve_accuracy_size", "test/read_preserve_accuracy_shape"} <= set(metrics)
    # one tiny epoch has not learnt to edit, which the geometric reader sees: it reads the edits in the targets
    assert metrics["test/real_read_edit_accuracy"] > metrics["test/read_edit_accuracy"] + 0.3
    assert 0 < metrics["test/l1"] < 0.2 and metrics["test/psnr"] > 10

    Image.new("RGB", (16, 16), (120, 120, 120)).save(tmp_path / "scene.png")
    records = tmp_path / "edits.jsonl"
    records.write_text(json.dumps({"file_name": "scene.png", "instruction": "make the red circle blue"}) + "\n")
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(records),
          "--output_dir", str(out), "--trainer.logger", "false"])
    (row,) = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert row["instruction"] == "make the red circle blue" and Image.open(row["file"]).size == (16, 16)


def test_data_without_a_target_image_is_refused_before_any_step(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(REPO / "experiments" / "editing_image_caption.yaml"), *TINY, "--trainer.logger",
              "false", "--data.init_args.media_fields", "{}", "--run_dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "media_fields: {target: <column>}" in capsys.readouterr().err


def test_the_adversarial_terms_train_each_network_on_its_own_loss() -> None:
    from multimodal_kit.tasks.editing import TextGuidedEditing

    torch.manual_seed(0)
    method = TextGuidedEditing(vocab_size=12, image_size=16, widths=(8, 16), text_embed_dim=8, text_hidden_dim=16,
                               adversarial_weight=0.5)
    method.discriminator.eval()  # spectral norm's power iteration holds still, so repeated calls agree
    batch = {"image": torch.randn(4, 3, 16, 16), "instruction_tokens": torch.randint(1, 12, (4, 5)),
             "instruction_lengths": torch.tensor([5, 4, 3, 5])}
    target = torch.randn(4, 3, 16, 16)
    instructions = ["make the red circle blue", "make the cat small", "turn it", "make the red circle blue"]

    def gradients() -> dict[str, torch.Tensor]:
        method.zero_grad()
        edited, condition, _ = method.edit(batch)
        torch.manual_seed(1)  # the same wrong-instruction pairing each time
        method.adversarial_losses(batch["image"], edited, target, condition.detach(), instructions).backward()
        return {name: torch.cat([p.grad.flatten() for n, p in method.named_parameters()
                                 if n.startswith(name) and p.grad is not None] or [torch.zeros(1)])
                for name in ("discriminator", "unet", "instruction_encoder")}

    both = gradients()
    method.hparams.adversarial_weight = 0.0  # the discriminator's loss alone
    alone = gradients()
    assert both["discriminator"].abs().sum() > 0 and torch.allclose(both["discriminator"], alone["discriminator"])
    assert both["unet"].abs().sum() > 0  # the generator hears the discriminator …
    assert alone["unet"].abs().sum() == 0 and alone["instruction_encoder"].abs().sum() == 0  # … which trains alone


def test_unchanged_weight_makes_a_change_nobody_asked_for_cost_what_a_missed_edit_costs() -> None:
    from multimodal_kit.tasks.editing import TextGuidedEditing

    source = torch.zeros(1, 3, 4, 4)
    target = source.clone()
    target[..., 0, 0] = 1.0  # the edit: one pixel, 3 channels = 3 changed values of 48
    spurious = target.clone()
    spurious[..., 3, 3] = 1.0  # the edit done, and another pixel changed as well
    for weight, costs in ((0.0, (3 / 48, 3 / 48 + 3 / 3)), (1.0, (3 / 48 + 3 / 3, 3 / 48 + 3 / 3))):
        method = TextGuidedEditing(vocab_size=12, image_size=16, widths=(8, 16), unchanged_weight=weight)
        changed = method.changed_pixels(target, source)
        (l1, loss), (_, missed) = (method.reconstruction_loss(edited, target, changed) for edited in (spurious, source))
        assert l1.item() == pytest.approx(3 / 48)
        assert (loss.item(), missed.item()) == pytest.approx(costs)  # at 0 the spurious change is 1/17 of a miss


def test_mask_weight_opens_the_composites_mask_where_the_edit_changes_the_image() -> None:
    from multimodal_kit.errors import ConfigError
    from multimodal_kit.tasks.editing import TextGuidedEditing

    source = torch.zeros(1, 3, 4, 4)
    target = source.clone()
    target[..., :2, :2] = 1.0  # 4 of 16 pixels change
    changed = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    changed[..., :2, :2] = True
    assert torch.equal(TextGuidedEditing.changed_pixels(target, source), changed)
    method = TextGuidedEditing(vocab_size=12, image_size=16, widths=(8, 16), mask_weight=1.0)
    sharp = torch.where(changed, 20.0, -20.0)  # open exactly where it should: nearly no loss
    assert method.mask_loss(sharp, changed).item() == pytest.approx(0.0, abs=1e-6)
    shut = torch.full((1, 1, 4, 4), -4.0)  # the mask as it starts: 4 changed pixels pay -log sigmoid(-4) each
    expected = (4 * torch.nn.functional.softplus(torch.tensor(4.0)) + 12 * torch.nn.functional.softplus(
        torch.tensor(-4.0))) / 4
    assert method.mask_loss(shut, changed).item() == pytest.approx(expected.item())
    with pytest.raises(ConfigError, match="composite"):
        TextGuidedEditing(vocab_size=12, image_size=16, widths=(8, 16), mask_weight=1.0, composite=False)
