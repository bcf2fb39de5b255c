"""The contrastive dual encoder's parts: Recall@K and zero-shot accuracy against hand-worked values, CLIP's loss
with repeated texts kept out of the negatives, the padded gather across processes (gradients back to each
process's own rows), and the towers from tiny pretrained models saved locally."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from multimodal_kit.tasks.contrastive.loss import clip_loss, gather_rows, text_keys
from multimodal_kit.tasks.contrastive.retrieval import recall_scores, zero_shot_accuracy, zero_shot_truth
from multimodal_kit.tasks.contrastive.towers import ClapAudioEncoder, Pooling, PretrainedTextEncoder
from tests.helpers import save_clip

E = torch.eye(3)


def test_recall_against_hand_worked_ranks() -> None:
    # text 0 finds its media first; text 1 points at media 2 (its own scores 0, level with media 0: ties count
    # against it, rank 2); text 2 finds its own first
    scores = recall_scores(E, torch.stack([E[0], E[2], E[2]]), torch.tensor([10, 11, 12]), ks=(1, 2))
    assert scores["t2m_r1"] == pytest.approx(2 / 3) and scores["t2m_r2"] == pytest.approx(2 / 3)
    # media 0 → text 0 first; media 1 scores every text 0 (rank 2); media 2 ties texts 1 and 2 (rank 1)
    assert scores["m2t_r1"] == pytest.approx(1 / 3) and scores["m2t_r2"] == pytest.approx(2 / 3)
    assert scores["t2m_r1_same_text"] == pytest.approx(2 / 3)  # text 1's top medium has text 2's caption


def test_media_to_text_ranks_the_distinct_texts_and_a_collapsed_model_ranks_nothing() -> None:
    # texts 0 and 1 are the same caption: one entry of the text gallery, right for both media
    text = torch.stack([E[0], E[0], E[2]])
    scores = recall_scores(E, text, torch.tensor([5, 5, 7]), ks=(1,))
    assert scores["m2t_r1"] == pytest.approx(2 / 3)  # media 1 scores both entries 0: a tie, against it
    assert scores["t2m_r1_same_text"] == pytest.approx(1.0)
    same = torch.ones(4, 2) / math.sqrt(2)
    collapsed = recall_scores(same, same, torch.arange(4), ks=(1, 4))
    assert collapsed["t2m_r1"] == 0 and collapsed["m2t_r1"] == 0 and collapsed["t2m_r4"] == 1


def test_zero_shot_truth_and_accuracy() -> None:
    classes = ["red circle", "blue square"]
    texts = ["a large red circle", "there is a small blue square", "a red circle left of a blue square",
             "a green circle"]
    assert zero_shot_truth(texts, classes) == [0, 1, -1, -1]
    media = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.0, 1.0]])
    accuracy, scored = zero_shot_accuracy(media, torch.eye(2), torch.tensor([0, 1, -1, -1]))
    assert (accuracy, scored) == (0.5, 2)  # item 1 (a blue square) sits nearer the red circle's prompt


def no_gather(x: torch.Tensor, sync_grads: bool = False) -> torch.Tensor:
    return x


def test_clip_loss_by_hand_and_repeated_texts_are_no_negatives() -> None:
    media = F.normalize(torch.tensor([[1.0, 0.2], [0.3, 1.0], [1.0, 0.25]]), dim=-1)
    text = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), dim=-1)
    scale = torch.tensor(math.log(10.0))
    logits = 10 * media @ text.T
    by_hand = (F.cross_entropy(logits, torch.arange(3)) + F.cross_entropy(logits.T, torch.arange(3))) / 2
    assert float(clip_loss(media, text, torch.tensor([1, 2, 3]), scale, no_gather)) == pytest.approx(float(by_hand))
    # pairs 0 and 2 share a caption: neither is the other's negative
    masked = logits.clone()
    masked[0, 2] = masked[2, 0] = float("-inf")
    by_hand = (F.cross_entropy(masked, torch.arange(3)) + F.cross_entropy(masked.T, torch.arange(3))) / 2
    keys = text_keys(["a red circle", "a blue square", "A red  circle"])
    assert keys[0] == keys[2] != keys[1]
    assert float(clip_loss(media, text, keys, scale, no_gather)) == pytest.approx(float(by_hand))


def test_rows_gathered_from_processes_of_unequal_batches_send_gradients_home() -> None:
    """Two processes, three rows here and two there: the collective sees both padded to three, the result has
    the five rows in rank order, and gradients reach this process's own rows (as all_gather(sync_grads=True))."""
    other = torch.tensor([[7.0], [8.0]])

    def all_gather(x: torch.Tensor, sync_grads: bool = False) -> torch.Tensor:
        theirs = torch.tensor([len(other)]) if x.dtype == torch.long and x.numel() == 1 else \
            F.pad(other, (0, 0, 0, len(x) - len(other)))
        return torch.stack([theirs, x]) if x.dtype == torch.long and x.numel() == 1 else torch.stack([theirs, x])

    mine = torch.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    rows, start = gather_rows(mine, all_gather, (2, 1), sync_grads=True)
    assert rows.squeeze(1).tolist() == [7.0, 8.0, 1.0, 2.0, 3.0] and start == 2
    (rows * torch.arange(5.0)[:, None]).sum().backward()
    assert mine.grad.squeeze(1).tolist() == [2.0, 3.0, 4.0]


def test_attention_pooling_ignores_padding_and_knows_places() -> None:
    torch.manual_seed(0)
    pool = Pooling(8, "attention", heads=2, positions=3)
    sequence, mask = torch.randn(2, 3, 8), torch.tensor([[True, True, False], [True, True, True]])
    changed = sequence.clone()
    changed[0, 2] = 100.0  # a padded position
    assert torch.allclose(pool(sequence, mask)[0], pool(changed, mask)[0], atol=1e-5)
    swapped = sequence[:, [1, 0, 2]]  # the same features in other places
    assert not torch.allclose(pool(sequence, mask.new_ones(2, 3)), pool(swapped, mask.new_ones(2, 3)))
    with pytest.raises(Exception, match="pooling must be"):
        Pooling(8, "max")  # type: ignore[arg-type]


def test_clip_text_tower_by_path(tmp_path: Path) -> None:
    tower = PretrainedTextEncoder(str(save_clip(tmp_path / "clip")))
    assert tower.vocab_size == 50 and tower.out_dim == 16
    assert not any(p.requires_grad for p in tower.parameters())
    out = tower(torch.tensor([[1, 5, 7, 2, 0], [1, 3, 2, 0, 0]]), torch.tensor([4, 3]))
    assert out.shape == (2, 16)


def save_clap(path: Path) -> Path:
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    audio = ClapAudioConfig(window_size=4, num_mel_bins=16, spec_size=32, patch_size=4, patch_stride=(4, 4),
                            hidden_size=16, depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                            projection_dim=8, enable_fusion=False)
    text = ClapTextConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, projection_dim=8)
    ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=8)
              ).save_pretrained(path)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16_000, hop_length=320, fft_window_size=400,
                         max_length_s=1, truncation="rand_trunc").save_pretrained(path)
    return path


def test_clap_audio_and_text_towers_by_path(tmp_path: Path) -> None:
    path = save_clap(tmp_path / "clap")
    audio = ClapAudioEncoder(str(path))
    assert audio.sampling_rate == 16_000 and audio.inputs == "waveform"
    features, lengths = audio(torch.randn(2, 16_000) * 0.1, torch.tensor([16_000, 8_000]))
    assert features.shape == (2, 1, audio.out_dim) and lengths.tolist() == [1, 1]
    text = PretrainedTextEncoder(str(path))
    assert text(torch.tensor([[0, 5, 2, 1]]), torch.tensor([3])).shape == (1, text.out_dim)
