"""Speech synthesis's parts: the character tokenizer, the text encoder, the frame decoder (prenet, postnet, stop
token, reduction), alignment health, band statistics, the single-voice set, and a synthesizer that learns."""

from __future__ import annotations

import math

import pytest
import torch

from multimodal_kit.data.embedded.spoken import SpokenConfig, generate_split, voices
from multimodal_kit.data.text import decode_tokens, encode_texts, train_tokenizer
from multimodal_kit.models.attention import LocationSensitiveAttention, alignment_ok
from multimodal_kit.models.band_norm import BandNormalizer
from multimodal_kit.models.frame_decoders import FrameDecoder, Postnet, Prenet
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder

M, K = 8, 12  # mel bands, text state size


def decoder(attention: bool, reduction: int = 2) -> FrameDecoder:
    module = LocationSensitiveAttention(16, K, 8, filters=4, kernel_size=3) if attention else None
    return FrameDecoder(M, K, module, reduction=reduction, prenet_dims=(8, 8), hidden_dim=16, postnet_channels=8,
                        postnet_layers=3)


def test_character_tokenizer_round_trips_text_with_spaces() -> None:
    tokenizer = train_tokenizer(["one two", "go"], kind="char")
    tokens, lengths = encode_texts(tokenizer, ["two go", "no"])
    assert lengths.tolist() == [8, 4]  # BOS + 6 characters (the space one of them) + EOS; BOS n o EOS
    assert decode_tokens(tokenizer, tokens) == ["two go", "no"]


def test_text_encoder_states_ignore_padding() -> None:
    torch.manual_seed(0)
    encoder = ConvLSTMTextEncoder(10, embed_dim=8, conv_layers=2, kernel_size=3, hidden_dim=K).eval()
    tokens = torch.tensor([[1, 4, 5, 2, 0, 0], [1, 4, 5, 6, 7, 2]])
    states, lengths = encoder(tokens, torch.tensor([4, 6]))
    assert states.shape == (2, 6, K) and lengths.tolist() == [4, 6]
    assert torch.all(states[0, 4:] == 0)
    alone, _ = encoder(tokens[:1, :4], torch.tensor([4]))
    assert torch.allclose(alone[0], states[0, :4], atol=1e-5)  # the padding changed nothing


def test_prenet_drops_out_at_inference_too_and_postnet_keeps_shape() -> None:
    prenet = Prenet(M, (16, 8)).eval()
    x = torch.randn(4, M)
    assert prenet(x).shape == (4, 8)
    assert not torch.equal(prenet(x), prenet(x))  # dropout stays on in eval mode (Tacotron)
    assert Postnet(M, 8, layers=3).eval()(torch.randn(2, 7, M)).shape == (2, 7, M)


@pytest.mark.parametrize("attention", [True, False])
def test_frame_decoder_teacher_forced_and_free_running_shapes(attention: bool) -> None:
    torch.manual_seed(0)
    net = decoder(attention, reduction=3)
    memory, mask = torch.randn(2, 5, K), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    out = net(torch.randn(2, 10, M), net.initial_state(memory, mask))
    assert out["frames"].shape == out["refined"].shape == (2, 12, M)  # ⌈10 / 3⌉ = 4 steps of 3 frames
    assert out["stop"].shape == (2, 4)
    if attention:
        assert out["attention"].shape == (2, 4, 5)
        assert torch.all(out["attention"][1, :, 3:] == 0)  # padded characters get no attention
        assert torch.allclose(out["attention"].sum(-1), torch.ones(2, 4))
    else:
        assert "attention" not in out
    gen = net.eval().generate(net.initial_state(memory, mask), max_steps=6)
    assert gen["refined"].shape[0] == 2 and gen["refined"].shape[2] == M
    assert gen["lengths"].tolist() == (gen["steps"] * 3).tolist()


def test_stop_token_ends_generation() -> None:
    net = decoder(True).eval()
    state = net.initial_state(torch.randn(3, 5, K), torch.ones(3, 5, dtype=torch.bool))
    with torch.no_grad():
        net.stop.weight.zero_()
        net.stop.bias.fill_(10.0)  # certain to stop at once
    gen = net.generate(dict(state), max_steps=20)
    assert gen["stopped"].all() and gen["steps"].tolist() == [1, 1, 1] and gen["refined"].shape[1] == 2
    with torch.no_grad():
        net.stop.bias.fill_(-10.0)  # never stops: runs to the limit
    gen = net.generate(dict(state), max_steps=7)
    assert not gen["stopped"].any() and gen["steps"].tolist() == [7, 7, 7] and gen["lengths"].tolist() == [14] * 3


def one_hot_alignment(positions: list[int], n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(positions), n).float()[None]  # (1, S, N)


@pytest.mark.parametrize(("positions", "steps", "stopped", "healthy"), [
    ([0, 1, 1, 2, 3, 4], 6, True, True),  # forward to the end (position 4 = EOS of 5)
    ([0, 1, 2, 3, 2, 4], 6, True, True),  # one step back is jitter, allowed
    ([0, 1, 3, 1, 3, 4], 6, True, False),  # two back: not monotonic
    ([0, 1, 1, 2, 2, 2], 6, True, False),  # never reaches the last character
    ([0, 1, 2, 3, 4, 4], 6, False, False),  # ran to the limit: the stop token never fired
    ([0, 1, 2, 3, 0, 0], 4, True, True),  # steps past the item's own end are ignored
])
def test_alignment_health_by_hand(positions: list[int], steps: int, stopped: bool, healthy: bool) -> None:
    result = alignment_ok(one_hot_alignment(positions, 5), torch.tensor([steps]), torch.tensor([5]),
                          torch.tensor([stopped]))
    assert result.tolist() == [healthy]


def test_band_normalizer_standardizes_and_inverts() -> None:
    items = [torch.randn(30, M) * 3 + 5, torch.randn(50, M) * 3 + 5]
    norm = BandNormalizer(M)
    assert not norm.ready
    norm.estimate(items)
    assert norm.ready
    z = norm(torch.cat(items))
    assert torch.allclose(z.mean(0), torch.zeros(M), atol=1e-4) and torch.allclose(z.std(0), torch.ones(M), atol=1e-3)
    assert torch.allclose(norm.inverse(z), torch.cat(items), atol=1e-4)
    assert {"mean", "std", "ready"} <= set(norm.state_dict())  # travels in checkpoints


def test_single_voice_mode_speaks_every_split_with_one_voice() -> None:
    config = SpokenConfig(num_train=6, num_validation=2, num_test=2, voice="en-us+m3")
    assert voices(config) == {"train": ["en-us+m3"], "validation": ["en-us+m3"], "test": ["en-us+m3"]}
    columns = generate_split(config, "train", progress=False)
    assert set(columns["voice"]) == {"en-us+m3"} and len(set(columns["rate_wpm"])) == 1
    assert len(set(columns["text"])) > 1
    again = generate_split(config, "train", progress=False)
    assert [a["bytes"] for a in again["audio"]] == [a["bytes"] for a in columns["audio"]]  # deterministic


def test_a_synthesizer_overfits_a_few_phrases(spoken_voice_module) -> None:
    """Teacher-forced L1 and the stop loss fall when one batch is learnt by heart."""
    from multimodal_kit.tasks.speech_synthesis import AttentionSpeechSynthesis

    torch.manual_seed(0)
    dm = spoken_voice_module
    model = AttentionSpeechSynthesis(vocab_size=dm.vocab_size, pad_id=dm.pad_id, n_mels=dm.n_mels, embed_dim=32,
                                     encoder_dim=32, hidden_dim=64, prenet_dims=(32, 32), postnet_channels=16,
                                     attention_dim=32, reduction=2)
    batch = dm.collator()([dm.dataset("train")[i] for i in range(4)])
    model.normalizer.estimate([batch["audio"][i, :n] for i, n in enumerate(batch["audio_lengths"].tolist())])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        losses = model.losses(batch, model.teacher_forced(batch))
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first or {k: float(losses[k].detach()) for k in ("frame", "stop")}
    assert float(losses["frame"].detach()) < 0.75 * first["frame"]  # the prenet drops half its input, even here
    assert float(losses["stop"].detach()) < 0.5 * first["stop"]


def test_guided_attention_costs_nothing_on_the_diagonal_and_most_off_it() -> None:
    from multimodal_kit.models.attention import guided_attention_penalty

    steps, chars = torch.tensor([4]), torch.tensor([4])
    diagonal = torch.eye(4)[None]  # step t looks at character t: n/N == t/T
    anti = torch.eye(4).flip(1)[None]
    assert float(guided_attention_penalty(diagonal, steps, chars)) == pytest.approx(0.0, abs=1e-6)
    # by hand: |n/N - t/T| = 3/4, 1/4, 1/4, 3/4 → cost 1 - exp(-d²/(2·0.4²)), averaged over the 16 pairs
    by_hand = sum(1 - math.exp(-(d**2) / 0.32) for d in (0.75, 0.25, 0.25, 0.75)) / 16
    assert float(guided_attention_penalty(anti, steps, chars)) == pytest.approx(by_hand, rel=1e-5)
    padded = torch.zeros(1, 6, 5)
    padded[0, :4, :4] = anti[0]
    padded[0, 4:, 4] = 1.0  # beyond the item's steps and characters: ignored
    assert float(guided_attention_penalty(padded, steps, chars)) == pytest.approx(by_hand, rel=1e-5)
