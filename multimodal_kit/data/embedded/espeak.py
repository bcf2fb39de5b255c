"""Offline speech synthesis with eSpeak NG, called through ``ctypes``.

The ``espeakng-loader`` package ships the eSpeak NG shared library and its voice data, so nothing has to be
installed on the system. eSpeak NG keeps state across phrases in static variables that no API call resets (e.g.
its pitch-flutter phase), so what a phrase sounds like depends on what the library spoke before.
:meth:`ESpeak.fresh` loads a private copy of the library — fresh statics, in about 3 ms — so that a fixed
sequence of phrases always gives the same audio. A handle is not thread-safe: one phrase at a time (~2 ms).
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
# espeak_PARAMETER
RATE, PITCH, RANGE, WORDGAP = 1, 3, 4, 7

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class ESpeak:
    """A handle on the eSpeak NG library: ``synthesize(text, voice, rate, pitch)`` → int16 samples. Prefer
    ``with ESpeak.fresh() as engine:`` (reproducible; the library is unloaded afterwards).

    Args:
        library: path of ``libespeak-ng``.
        data: path of ``espeak-ng-data``.
    """

    def __init__(self, library: str, data: str) -> None:
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as error:
            raise ESpeakError(f"could not load eSpeak NG from {library}: {error}") from error
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0))
        if self.sample_rate <= 0:
            raise ESpeakError(f"eSpeak NG failed to initialize with the voice data in {data}")
        self._chunks: list[np.ndarray] = []

        def collect(wav: ctypes.POINTER(ctypes.c_short), count: int, events: int) -> int:
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = _SYNTH_CALLBACK(collect)  # kept referenced: the library calls it back
        self.lib.espeak_SetSynthCallback(self._callback)
        # breath and voicing noise come from eSpeak's own generator and from libc's rand(): both are seeded
        self._seed_espeak = getattr(self.lib, "espeak_ng_SetRandSeed", None)
        if self._seed_espeak is not None:
            self._seed_espeak.argtypes = [ctypes.c_long]
        self._libc = ctypes.CDLL(None)

    @classmethod
    @contextmanager
    def fresh(cls) -> Iterator[ESpeak]:
        """A handle on a private copy of the library ``espeakng-loader`` ships, in its initial state; closed and
        removed on exit."""
        try:
            import espeakng_loader
        except ImportError as error:
            raise ESpeakError("the embedded 'spoken' set needs eSpeak NG: pip install espeakng-loader") from error
        with tempfile.TemporaryDirectory(prefix="mmkit-espeak-") as folder:
            library = Path(folder) / Path(espeakng_loader.get_library_path()).name
            shutil.copyfile(espeakng_loader.get_library_path(), library)
            engine = cls(str(library), espeakng_loader.get_data_path())
            try:
                yield engine
            finally:
                engine.close()

    def close(self) -> None:
        """Release the library's memory and unload it."""
        import _ctypes

        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)

    def synthesize(self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   word_gap: int = 0, seed: int = 0) -> np.ndarray:
        """Speak ``text`` → int16 samples (N,) at :attr:`sample_rate` Hz.

        The output is a function of the arguments *and of what this handle synthesized before*: eSpeak NG keeps
        some state in static variables (e.g. its pitch-flutter phase) that no API call resets. A fixed sequence
        of calls on a handle from :meth:`fresh` is reproducible.

        Args:
            text: what to say.
            voice: a language and optional variant, e.g. ``en-us+f3``.
            rate: words per minute (80–450).
            pitch: base pitch, 0–100.
            pitch_range: pitch variation, 0–100.
            word_gap: extra pause between words, in units of 10 ms.
            seed: the seed of eSpeak's random noise for this phrase.
        """
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ESpeakError(f"eSpeak NG has no voice {voice!r}")
        for parameter, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (WORDGAP, word_gap)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        if self._seed_espeak is not None:
            self._seed_espeak(seed)
        self._libc.srand(seed)
        self._chunks = []
        encoded = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, ESPEAK_CHARS_UTF8, None, None)
        if status != 0:
            raise ESpeakError(f"eSpeak NG failed to speak {text!r} (status {status})")
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
