"""Seq2Seq's one-vector summary of a source and its decoder that reads the summary at every step."""

import pytest
import torch

from multimodal_kit.errors import ConfigError
from multimodal_kit.methods import Seq2Seq
from multimodal_kit.models.decoders import LSTMDecoder
from multimodal_kit.models.summary import Summary


def test_mean_summary_averages_the_valid_positions_by_hand() -> None:
    features = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert torch.equal(Summary("mean", 2)(features, mask), torch.tensor([[2.0, 3.0]]))


def test_flatten_summary_sees_where_a_region_is() -> None:
    torch.manual_seed(0)
    summary = Summary("flatten", dim=4, regions=3)
    features = torch.zeros(2, 3, 4)
    features[0, 0] = 1.0  # the same feature, in region 0 …
    features[1, 2] = 1.0  # … and in region 2: equal means, different summaries
    assert torch.equal(Summary("mean", 4)(features)[0], Summary("mean", 4)(features)[1])
    out = summary(features)
    assert out.shape == (2, 4) and not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="built for 3 regions, got 5"):
        summary(torch.zeros(1, 5, 4))


def test_flatten_needs_a_fixed_number_of_regions() -> None:
    with pytest.raises(ConfigError, match="summary mean"):
        Seq2Seq(vocab_size=10, media="audio", summary="flatten")
    with pytest.raises(ConfigError, match="'mean' or 'flatten'"):
        Summary("max", 4)
    model = Seq2Seq(vocab_size=10, summary="flatten", embed_dim=8, hidden_dim=8)  # 64 px → the CNN's 4×4 regions
    assert model.summary.regions == 16
    assert model.encode({"image": torch.randn(2, 3, 64, 64)}).shape == (2, 256)


def test_a_decoder_that_reads_the_context_at_every_step_depends_on_it_at_every_step() -> None:
    torch.manual_seed(0)
    decoder = LSTMDecoder(12, context_dim=6, embed_dim=8, hidden_dim=8, dropout=0.0, context_every_step=True).eval()
    context = torch.randn(3, 6)
    state = decoder.initial_state(context)
    assert len(state) == 3 and torch.equal(state[2], context)  # carried in the state, so beam search reorders it
    tokens = torch.randint(3, 12, (3, 5))
    logits = decoder(tokens, state)
    assert logits.shape == (3, 5, 12)
    # the same initial (h, c) with another context changes every step's output: the context is read each step
    other = (state[0], state[1], torch.randn(3, 6))
    assert not torch.isclose(decoder(tokens, other), logits).all(-1).any()
    # stepping one token at a time equals teacher forcing
    stepped, s = [], state
    for t in range(5):
        out, s = decoder.step(tokens[:, t], s)
        stepped.append(out)
    assert torch.allclose(torch.stack(stepped, 1), logits, atol=1e-5)
    plain = LSTMDecoder(12, context_dim=6, embed_dim=8, hidden_dim=8)
    assert len(plain.initial_state(context)) == 2 and plain.lstm.input_size == 8
