"""The embedded ``spoken`` text–audio set: short phrases spoken by eSpeak NG with many voices, offline.

Each utterance says 1–5 words from a small vocabulary (the ten digits and ten command words), 16 kHz mono FLAC.
Speaker variety comes from eSpeak NG's voice variants, each spoken with any of its seven English accents (a
speaker = accent + variant: 224 for training), speaking rate, pitch and pitch range, leading/trailing silence,
loudness, and Gaussian noise at a random signal-to-noise ratio. The variants are split three ways: training,
validation and test variants never heard in training (in any accent), so the test split measures generalization
to new speakers. ``single_word`` mode (one word per utterance) serves text → audio GANs;
``voice`` mode (one fixed voice, rate and pitch, no noise, every split) serves speech synthesis.

The set is a pure function of its :class:`SpokenConfig`: utterance ``i`` of split ``s`` is drawn from its own
``numpy`` generator seeded with ``(seed, s, i)``, which also seeds eSpeak NG's noise; each split is spoken in order
by a fresh copy of the library (:meth:`~multimodal_kit.data.embedded.espeak.ESpeak.fresh`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from multimodal_kit.errors import ConfigError

if TYPE_CHECKING:
    from multimodal_kit.data.embedded.espeak import ESpeak

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOCABULARY = DIGITS + COMMANDS
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
    "adam", "Alex", "Alicia", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb", "david", "ed", "edward",
    "Gene", "Hugo", "ian", "iven", "john", "linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert",
    "steph", "travis", "victor",
)
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SpokenConfig:
    """Parameters of the generated set; the cache key is derived from all of them.

    Args:
        num_train: training utterances.
        num_validation: validation utterances (validation voices).
        num_test: test utterances (test voices, never heard in training).
        min_words: the fewest words in an utterance.
        max_words: the most words in an utterance.
        single_word: one word per utterance (overrides ``min_words``/``max_words``).
        sample_rate: output sample rate in Hz.
        validation_voices: voices reserved for validation.
        test_voices: voices reserved for test.
        snr_db: range of the signal-to-noise ratio of the added Gaussian noise, in dB.
        rate_wpm: range of the speaking rate in words per minute.
        seed: the seed every utterance is derived from.
        accent_per_utterance: each utterance of a voice variant is spoken with an accent of its own (7 accents ×
            the split's variants: 224 speakers for training); ``False``: each variant keeps one accent (32).
        voice: single-voice mode for speech synthesis: every utterance of every split is spoken by this eSpeak NG
            voice (``accent+variant``, e.g. ``en-us+m3``) at a fixed rate, pitch and loudness, with 50 ms of
            silence at each end and no noise; the splits differ only in their phrases. ``None``: many voices.
    """

    num_train: int = 6_000
    num_validation: int = 500
    num_test: int = 1_000
    min_words: int = 1
    max_words: int = 5
    single_word: bool = False
    sample_rate: int = 16_000
    validation_voices: int = 6
    test_voices: int = 6
    snr_db: tuple[float, float] = (10.0, 40.0)
    rate_wpm: tuple[int, int] = (130, 230)
    seed: int = 0
    accent_per_utterance: bool = True
    voice: str | None = None
    version: int = field(default=3)  # bump when the generator's output changes

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.max_words:
            raise ConfigError(f"spoken: need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        if self.validation_voices + self.test_voices >= len(VARIANTS):
            raise ConfigError(f"spoken: validation_voices + test_voices must leave training voices "
                             f"(there are {len(VARIANTS)} voices)")

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}


def voices(config: SpokenConfig) -> dict[str, list[str]]:
    """The voices (``accent+variant``) of each split, each utterance speaking with one of them: disjoint sets of
    variants, each variant with every accent (``accent_per_utterance``) or with one accent of its own."""
    if config.voice is not None:
        return {split: [config.voice] for split in SPLITS}
    rng = np.random.default_rng([config.seed, 7919])
    order = rng.permutation(len(VARIANTS))
    own = [ACCENTS[rng.integers(len(ACCENTS))] for _ in order]
    named = [[f"{a}+{VARIANTS[i]}" for a in (ACCENTS if config.accent_per_utterance else (accent,))]
             for i, accent in zip(order, own, strict=True)]
    n_val, n_test = config.validation_voices, config.test_voices
    parts = {"test": named[:n_test], "validation": named[n_test:n_test + n_val], "train": named[n_test + n_val:]}
    return {split: [voice for variant in part for voice in variant] for split, part in parts.items()}


def sample_utterance(config: SpokenConfig, split: str, index: int, split_voices: list[str], engine: ESpeak
                     ) -> dict:
    """Utterance ``index`` of ``split``, spoken by ``engine``: its text, 16-bit FLAC bytes and the parameters it
    was spoken with."""
    from multimodal_kit.data.audio import resample

    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    n_words = 1 if config.single_word else int(rng.integers(config.min_words, config.max_words + 1))
    text = " ".join(VOCABULARY[i] for i in rng.integers(len(VOCABULARY), size=n_words))
    voice = split_voices[int(rng.integers(len(split_voices)))]
    rate = int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1))
    pitch, pitch_range = int(rng.integers(25, 76)), int(rng.integers(20, 81))
    if config.voice is not None:  # one speaker, always the same way
        rate, pitch, pitch_range = sum(config.rate_wpm) // 2, 50, 50
    speech = engine.synthesize(text, voice=voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                               seed=int(rng.integers(2**31)))
    speech = resample(speech.astype(np.float32) / 32768.0, engine.sample_rate, config.sample_rate)
    if config.voice is not None:
        edge = np.zeros(config.sample_rate // 20, np.float32)
        wave = np.concatenate([edge, speech, edge])
        wave = wave * (0.7 / max(float(np.abs(wave).max()), 1e-6))
        return {"text": text, "audio": _flac(wave, config.sample_rate), "voice": voice, "rate_wpm": rate,
                "pitch": pitch, "snr_db": float("inf"), "seconds": len(wave) / config.sample_rate}
    lead, trail = (rng.uniform(0.0, 0.25, size=2) * config.sample_rate).astype(int)
    wave = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    snr_db = float(rng.uniform(*config.snr_db))
    signal_power = float(np.mean(speech**2)) + 1e-12
    wave = wave + rng.normal(0.0, np.sqrt(signal_power / 10 ** (snr_db / 10)), size=wave.shape)
    wave = wave * (rng.uniform(0.3, 0.9) / max(float(np.abs(wave).max()), 1e-6))
    return {"text": text, "audio": _flac(wave, config.sample_rate), "voice": voice, "rate_wpm": rate,
            "pitch": pitch, "snr_db": snr_db, "seconds": len(wave) / config.sample_rate}


def _flac(wave: np.ndarray, sample_rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, wave.astype(np.float32), sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def generate_split(config: SpokenConfig, split: str, progress: bool = True) -> dict[str, list]:
    """Columns of one split: ``audio`` ({bytes, path}), ``text``, ``id``, ``voice``, ``rate_wpm``, ``pitch``,
    ``snr_db``, ``seconds``. Spoken in order by a fresh copy of eSpeak NG, so the same config always gives the
    same audio (see :meth:`~multimodal_kit.data.embedded.espeak.ESpeak.fresh`)."""
    from tqdm.auto import tqdm

    from multimodal_kit.data.embedded.espeak import ESpeak

    split_voices = voices(config)[split]
    columns: dict[str, list] = {k: [] for k in ("audio", "text", "id", "voice", "rate_wpm", "pitch", "snr_db",
                                                "seconds")}
    with ESpeak.fresh() as engine:
        for i in tqdm(range(config.split_sizes()[split]), desc=f"spoken/{split}", disable=not progress,
                      leave=False):
            sample = sample_utterance(config, split, i, split_voices, engine)
            uid = f"{split}_{i:05d}"
            sample["audio"] = {"bytes": sample["audio"], "path": f"{uid}.flac"}
            sample["id"] = uid
            for key, value in sample.items():
                columns[key].append(value)
    return columns
