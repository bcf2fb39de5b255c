import pytest
import torch

from multimodal_kit.models.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    doubly_stochastic_penalty,
)
from multimodal_kit.models.attention_decoders import RecurrentAttentionDecoder, TransformerAttentionDecoder
from multimodal_kit.models.search import beam_search, greedy_search

B, N, K, Q = 3, 7, 16, 16


def _memory():
    torch.manual_seed(0)
    keys = torch.randn(B, N, K)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 5:] = False  # the second item has only 5 valid positions
    return keys, mask


@pytest.mark.parametrize("kind", [AdditiveAttention, DotAttention, GeneralAttention])
def test_weights_are_a_distribution_over_valid_positions(kind) -> None:
    keys, mask = _memory()
    attention = kind(Q, K)
    context, weights = attention(torch.randn(B, Q), keys, attention.prepare(keys), mask)
    assert weights.shape == (B, N) and context.shape == (B, K)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(B))
    assert weights[1, 5:].eq(0).all()  # padding gets nothing
    assert torch.allclose(context, torch.einsum("bn,bnk->bk", weights, keys), atol=1e-6)


def test_dot_attention_names_the_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match="query_dim == key_dim.*general"):
        DotAttention(8, 16)


def test_doubly_stochastic_term() -> None:
    t = n = 6
    steps = torch.ones(1, t, dtype=torch.bool)
    source = torch.ones(1, n, dtype=torch.bool)
    uniform = torch.full((1, t, n), 1.0 / n)  # every position covered exactly once over time
    assert float(doubly_stochastic_penalty(uniform, steps, source)) == pytest.approx(0.0, abs=1e-6)
    one_hot = torch.zeros(1, t, n)
    one_hot[0, :, 0] = 1.0  # always looking at the first position
    expected = (1 - t) ** 2 + (n - 1) * 1.0
    assert float(doubly_stochastic_penalty(one_hot, steps, source)) == pytest.approx(expected)
    steps[0, 3:] = False  # padded steps do not count
    assert float(doubly_stochastic_penalty(one_hot, steps, source)) == pytest.approx((1 - 3) ** 2 + (n - 1))


def test_transformer_decoder_shapes_and_masked_memory() -> None:
    keys, mask = _memory()
    decoder = TransformerAttentionDecoder(vocab_size=11, memory_dim=K, d_model=32, num_heads=4, num_layers=2,
                                          ff_dim=64).eval()
    state = decoder.initial_state(keys, mask)
    tokens = torch.randint(3, 11, (B, 5))
    logits, weights = decoder(tokens, state)
    assert logits.shape == (B, 5, 11) and weights.shape == (B, 5, N)
    assert torch.allclose(weights.sum(-1), torch.ones(B, 5), atol=1e-5) and weights[1, :, 5:].eq(0).all()
    # step-by-step decoding gives the teacher-forced logits
    for t in range(5):
        step_logits, state, step_weights = decoder.step(tokens[:, t], state)
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5)


@pytest.mark.parametrize("decoder_kind", ["recurrent", "transformer"])
def test_beam_of_one_equals_greedy_with_attention(decoder_kind) -> None:
    keys, mask = _memory()
    torch.manual_seed(1)
    if decoder_kind == "recurrent":
        decoder = RecurrentAttentionDecoder(11, K, AdditiveAttention(32, K), embed_dim=16, hidden_dim=32).eval()
    else:
        decoder = TransformerAttentionDecoder(11, K, d_model=32, num_heads=2, num_layers=1, ff_dim=32).eval()

    def step(tokens, state):
        logits, state, weights = decoder.step(tokens, state)
        return logits.log_softmax(-1), state, weights

    state = decoder.initial_state(keys, mask)
    greedy = greedy_search(step, state, batch_size=B, bos=1, eos=2, max_length=9)
    beam = beam_search(step, state, batch_size=B, bos=1, eos=2, max_length=9, beam_size=1)
    assert torch.equal(greedy.lengths, beam.lengths)
    for row in range(B):
        n = int(greedy.lengths[row])
        assert torch.equal(greedy.tokens[row, :n], beam.tokens[row, :n])
        assert torch.allclose(greedy.attention[row, :n], beam.attention[row, :n], atol=1e-6)
    assert greedy.attention.shape[:2] == greedy.tokens.shape and greedy.attention.shape[2] == N
    wide = beam_search(step, state, batch_size=B, bos=1, eos=2, max_length=9, beam_size=3)
    assert wide.attention.shape == (B, wide.tokens.shape[1], N)


def test_location_sensitive_attention_sees_where_it_looked_and_the_decoder_keeps_its_history() -> None:
    from multimodal_kit.models.attention import LocationSensitiveAttention
    from multimodal_kit.models.attention_decoders import RecurrentAttentionDecoder

    torch.manual_seed(0)
    attention = LocationSensitiveAttention(8, 6, attention_dim=8, filters=4, kernel_size=3)
    keys, mask = torch.randn(2, 5, 6), torch.tensor([[True] * 5, [True, True, True, False, False]])
    query, prepared = torch.randn(2, 8), attention.prepare(keys)
    fresh = attention(query, keys, prepared, mask)[1]
    looked = torch.zeros(2, 2, 5)
    looked[:, :, 0] = 1.0  # it looked at position 0 before
    moved = attention(query, keys, prepared, mask, history=looked)[1]
    assert not torch.allclose(fresh, moved) and torch.allclose(moved.sum(1), torch.ones(2))
    assert (moved[1, 3:] == 0).all()  # padding still gets no weight
    decoder = RecurrentAttentionDecoder(10, 6, attention, embed_dim=4, hidden_dim=8)
    state = decoder.initial_state(keys, mask)
    for token in (1, 4, 5):
        _, state, _ = decoder.step(torch.full((2,), token), state)
    assert torch.allclose(state["cumulative"].sum(1), torch.full((2,), 3.0))  # three steps of weights summing to 1


def test_cross_modal_attention_with_location_attention_trains_and_decodes() -> None:
    from multimodal_kit.methods import CrossModalAttention

    method = CrossModalAttention(vocab_size=12, image_size=32, attention="location", embed_dim=8, hidden_dim=8,
                                 attention_dim=8)  # 32×32 images: 2×2 = 4 regions to choose between
    batch = {"image": torch.randn(2, 3, 32, 32), "text_tokens": torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])}
    method.loss(batch).backward()
    assert method.decoder.attention.location_conv.weight.grad.abs().sum() > 0
    for beam in (1, 3):
        result = method.generate(batch, beam_size=beam, max_length=5)
        assert result.tokens.shape[0] == 2 and result.attention.shape[:2] == result.tokens.shape
