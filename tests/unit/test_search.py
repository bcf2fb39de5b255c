import torch

from multimodal_kit.models.decoders import LSTMDecoder
from multimodal_kit.models.search import beam_search, greedy_search


def _lstm_step(seed: int = 0, vocab: int = 12):
    torch.manual_seed(seed)
    decoder = LSTMDecoder(vocab, context_dim=8, embed_dim=16, hidden_dim=16).eval()
    state = decoder.initial_state(torch.randn(5, 8))

    def step(tokens, state):
        logits, state = decoder.step(tokens, state)
        return logits.log_softmax(-1), state, None

    return step, state


def test_beam_of_one_equals_greedy() -> None:
    for seed in range(3):
        step, state = _lstm_step(seed)
        greedy = greedy_search(step, state, batch_size=5, bos=1, eos=2, max_length=15)
        beam = beam_search(step, state, batch_size=5, bos=1, eos=2, max_length=15, beam_size=1)
        width = min(greedy.tokens.shape[1], beam.tokens.shape[1])
        assert torch.equal(greedy.lengths, beam.lengths)
        for row in range(5):
            n = int(greedy.lengths[row])
            assert n <= width
            assert torch.equal(greedy.tokens[row, :n], beam.tokens[row, :n])
        assert torch.allclose(greedy.scores, beam.scores, atol=1e-5)


def _toy_step(tokens, state):
    # From BOS: token 3 (p=0.6) or token 4 (p=0.4). After 3: EOS or 5 (each 0.5). After 4: EOS (p=1).
    # Greedy takes 3 then (tie) one of them: log 0.3; the best whole sequence is "4 EOS" with log 0.4.
    table = torch.full((8, 6), 1e-9)
    table[1, 3], table[1, 4] = 0.6, 0.4
    table[3, 2], table[3, 5] = 0.5, 0.5
    table[4, 2] = 1.0
    table[5, 2] = 1.0
    table[2, 2] = 1.0
    return table[tokens].log(), state, None


def test_beam_search_finds_the_better_sequence() -> None:
    state = torch.zeros(1, 1)
    greedy = greedy_search(_toy_step, state, batch_size=1, bos=1, eos=2, max_length=5)
    beam = beam_search(_toy_step, state, batch_size=1, bos=1, eos=2, max_length=5, beam_size=2)
    assert greedy.tokens[0, 0] == 3
    assert beam.tokens[0, :2].tolist() == [4, 2] and int(beam.lengths[0]) == 2
    assert float(beam.scores[0]) > float(greedy.scores[0])


def test_generation_stops_at_max_length() -> None:
    step, state = _lstm_step(0)
    result = greedy_search(step, state, batch_size=5, bos=1, eos=99, max_length=7)  # eos never produced
    assert result.tokens.shape == (5, 7) and result.lengths.eq(7).all()
