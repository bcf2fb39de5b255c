
import pytest
import torch

from multimodal_kit.data.base import DataError
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.errors import ConfigError
from tests.conftest import TINY_SHAPES
from tests.helpers import write_imagefolder


def test_batches_follow_the_contract() -> None:
    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "text_tokens", "text_lengths", "text", "references", "id"}
    assert batch["image"].shape == (8, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert -1.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0
    tokens, lengths = batch["text_tokens"], batch["text_lengths"]
    assert tokens.shape == (8, int(lengths.max())) and tokens.dtype == torch.long
    for row, n in zip(tokens, lengths.tolist(), strict=True):
        assert row[0] == dm.bos_id and row[n - 1] == dm.eos_id and row[n:].eq(dm.pad_id).all()
    for text, refs in zip(batch["text"], batch["references"], strict=True):
        assert text in refs and len(refs) == 4  # training text: one of the references
    assert all(i.startswith("shapes-train-") for i in batch["id"])
    # moving a batch to a device moves its tensors and hands its lists of strings over as they are
    moved = dm.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert set(moved) == set(batch) and moved["image"].device.type == moved["text_tokens"].device.type == "meta"
    assert moved["references"] is batch["references"] and moved["id"] is batch["id"]


def test_validation_split_uses_the_canonical_text() -> None:
    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert [t == refs[0] for t, refs in zip(batch["text"], batch["references"], strict=True)] == [True] * 8


def test_imagefolder_with_val_folder_and_csv(tmp_path) -> None:
    root = write_imagefolder(tmp_path / "caps", {"train": 6, "val": 3}, fmt="csv")
    dm = ImageCaptionDataModule(str(root), batch_size=4, image_size=32)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["id"][0].startswith("val_000") and batch["references"][0] == [batch["text"][0]]


def test_missing_validation_split_is_carved_from_train_deterministically(tmp_path) -> None:
    root = write_imagefolder(tmp_path / "caps", {"train": 20})
    ids = []
    for _ in range(2):
        dm = ImageCaptionDataModule(str(root), val_fraction=0.25, batch_size=4)
        dm.setup("fit")
        ids.append(dm.dataset("validation").ids)
    assert len(ids[0]) == 5 and ids[0] == ids[1]
    assert not set(ids[0]) & set(ImageCaptionDataModule(str(root), val_fraction=0.25).dataset("train").ids)


def test_missing_column_names_the_flag(tmp_path) -> None:
    root = write_imagefolder(tmp_path / "caps", {"train": 4, "validation": 2})
    dm = ImageCaptionDataModule(str(root), text_column="caption")
    with pytest.raises(DataError, match=r"no column 'caption' \(--data.text_column\).*columns are"):
        dm.setup("fit")





def test_unknown_source_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such directory"):
        ImageCaptionDataModule(str(tmp_path / "nope" / "data")).splits  # noqa: B018


def test_references_from_several_columns_and_labels_as_text(tmp_path) -> None:
    """Hub layouts the real configs meet: one caption per column (Flickr8k: caption_0 … caption_4), and class
    labels as the target text (spoken digits)."""
    import datasets
    from PIL import Image

    images = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(4)]
    features = datasets.Features({"image": datasets.Image(), "caption_0": datasets.Value("string"),
                                  "caption_1": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["zero", "one"])})
    split = datasets.Dataset.from_dict({"image": images, "caption_0": ["a b", "c d", "e f", "g h"],
                                        "caption_1": ["a b two", None, "e f two", "g h two"],
                                        "label": [0, 1, 1, 0]}, features=features)
    datasets.DatasetDict({"train": split, "validation": split}).save_to_disk(str(tmp_path / "set"))
    dm = ImageCaptionDataModule(str(tmp_path / "set"), text_column="caption_0",
                                captions_column=["caption_0", "caption_1"])
    dm.setup("fit")
    assert dm.dataset("train").references == [["a b", "a b two"], ["c d"], ["e f", "e f two"], ["g h", "g h two"]]
    labels = ImageCaptionDataModule(str(tmp_path / "set"), text_column="label", captions_column=None)
    labels.setup("fit")
    assert labels.dataset("validation").texts == ["zero", "one", "one", "zero"]
    with pytest.raises(DataError, match=r"no column\(s\) \['caption_9'\] of --data.captions_column"):
        ImageCaptionDataModule(str(tmp_path / "set"), text_column="caption_0",
                               captions_column=["caption_0", "caption_9"]).setup("fit")


def test_splits_from_a_column(tmp_path) -> None:
    """Hub copies of Karpathy's splits (e.g. Flickr30k) keep every row in one split and name it in a column."""
    import datasets
    from PIL import Image

    names = ["train", "train", "val", "test", "train", "test"]
    split = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (8, 8))] * 6, "caption": [[f"c {i}", f"d {i}"] for i in range(6)],
         "split": names}, features=datasets.Features({"image": datasets.Image(), "split": datasets.Value("string"),
                                                     "caption": [datasets.Value("string")]}))
    datasets.DatasetDict({"test": split}).save_to_disk(str(tmp_path / "set"))
    dm = ImageCaptionDataModule(str(tmp_path / "set"), split_column="split", text_column="caption",
                                captions_column="caption", train_text="random")
    assert {name: len(s) for name, s in dm.splits.items()} == {"train": 3, "validation": 1, "test": 2}
    dm.setup("fit")
    assert dm.dataset("validation").texts == ["c 2"] and dm.dataset("validation").references == [["c 2", "d 2"]]
    with pytest.raises(ConfigError, match="--data.split_column='part'"):
        ImageCaptionDataModule(str(tmp_path / "set"), split_column="part").splits  # noqa: B018


def test_automatic_workers_share_the_nodes_cores_on_gpus_and_stay_out_of_the_way_on_cpu() -> None:
    from multimodal_kit.data.loaders import auto_workers

    assert auto_workers(on_gpu=False, processes_per_node=1, cpus=16, node_cpus=16) == 0  # CPU: the step uses them
    assert auto_workers(on_gpu=True, processes_per_node=1, cpus=16, node_cpus=16) == 8  # at most 8
    assert auto_workers(on_gpu=True, processes_per_node=4, cpus=16, node_cpus=16) == 3  # 4 per process, 1 for it
    assert auto_workers(on_gpu=True, processes_per_node=8, cpus=8, node_cpus=8) == 0
    assert auto_workers(on_gpu=True, processes_per_node=1, cpus=2, node_cpus=2) == 1
    assert auto_workers(on_gpu=True, processes_per_node=4, cpus=4, node_cpus=16) == 3  # bound to its own 4 cores
    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)  # num_workers unset, no GPU
    dm.setup("fit")
    assert dm.train_dataloader().num_workers == 0 and not dm.train_dataloader().pin_memory


def test_random_shift_moves_each_training_image_whole_and_leaves_evaluation_alone() -> None:
    from multimodal_kit.data.image import random_shift

    images = torch.rand(16, 3, 12, 12)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    offsets = []
    for image, out in zip(padded, shifted, strict=True):  # each output is one 12×12 window of its padded image
        found = [(y, x) for y in range(5) for x in range(5) if torch.equal(image[:, y:y + 12, x:x + 12], out)]
        assert found
        offsets.append(found[0])
    assert len(set(offsets)) > 3  # every image its own shift
    assert torch.equal(random_shift(images, 0), images)

    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8, random_shift=3)
    assert dm.augments_media  # (a frozen encoder's features are then not cached)

    class FakeTrainer:
        training = False

    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    original = batch["image"].clone()
    dm.trainer = FakeTrainer()
    assert torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["image"], original)  # evaluating: untouched
    FakeTrainer.training = True
    assert not torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["image"], original)
    with pytest.raises(ConfigError, match="random_shift"):
        ImageCaptionDataModule(embedded_options=TINY_SHAPES, random_shift=-1)


def test_the_check_counts_the_longest_kept_training_reference_for_the_decoding_limit(tmp_path) -> None:
    """The check's count of the longest training reference (BOS, EOS included), of the rows kept after a skip: what
    a captioner's max_length is derived from, counted once."""
    import json

    from multimodal_kit.data.text import token_counts

    root = write_imagefolder(tmp_path / "imgs", {"train": 6, "validation": 2})
    metadata = root / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    rows[2]["captions"] = [rows[2]["text"], "a caption " + "far too long " * 30]  # a bad row: skipped
    metadata.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dm = ImageCaptionDataModule(source=str(root), batch_size=2, bad_rows="skip", max_text_length=40)
    with pytest.warns(UserWarning, match="Skipped 1 of 6 rows"):
        dm.setup("fit")
    kept = [r for refs in dm.dataset("train").references for r in refs]
    assert dm.longest_training_text == max(token_counts(dm.tokenizer, kept)) < 40
