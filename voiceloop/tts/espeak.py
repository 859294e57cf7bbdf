"""Offline voice: libespeak-ng from the espeakng-loader wheel, driven through ctypes.

The wheel ships espeak-ng 1.52, which speaks Mandarin ("cmn"); Debian's 1.51 reads Chinese
characters out as "Chinese letter". Calling the library in-process rather than running an
`espeak-ng` binary means nothing has to be installed system-wide and there is no process to
start per sentence. espeak-ng keeps global state (one voice, one rate, one callback), so the
library is initialised once per process and every synthesis holds one module-wide lock.

espeak also carries its pitch wobble ("flutter") and alternating-cycle "roughness" across
utterances, so the same text came out a few samples different depending on what was said
before it. Every voice is therefore loaded with a variant that zeroes both, written into a
private overlay of the data directory: a render is then a pure function of its inputs, which
the virtual room needs for repeatable runs.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.audio.frames import resample
from voiceloop.tts.base import TtsError

if TYPE_CHECKING:
    from voiceloop.config.settings import TtsSettings
    from voiceloop.tts.options import EspeakOptions

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a sentence pause after each piece, so consecutive pieces don't run on
_PHONEMES_IPA = 0x02
_PARAM_RATE = 1
_EE_OK = 0

_STEADY = "_steady"  # short: espeak truncates "voice+variant" names at 40 characters
_STEADY_SETTINGS = "flutter 0\nroughness 0\n"  # later lines override the variant's own

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _VoiceSpec(ctypes.Structure):
    """espeak_VOICE; `languages` is a packed list of (priority byte, name, NUL) entries."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Engine:
    """The process's one espeak-ng instance. Callers must hold `_lock`."""

    def __init__(self) -> None:
        import espeakng_loader

        self._data = _steady_overlay(Path(espeakng_loader.get_data_path()))
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise TtsError(f"cannot load libespeak-ng from espeakng-loader: {exc}") from None
        _declare(lib)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self._data).encode(), 0)
        if rate <= 0:
            raise TtsError(f"espeak-ng failed to initialise with data at {self._data}")
        self._lib = lib
        self.sample_rate: int = rate
        self._chunks: list[np.ndarray] = []
        # ctypes does not keep the callback alive; espeak would call freed memory without this.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # 0 = keep going

    def select(self, voice: str, rate_wpm: int) -> None:
        if voice != self._voice:
            self._voice = None  # unknown until espeak accepts the new one
            self._set_voice(voice)
            self._voice = voice
        self._lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)

    def _set_voice(self, voice: str) -> None:
        base, _, variant = voice.partition("+")
        steady = self._steady_variant(voice, variant)
        if self._lib.espeak_SetVoiceByName(f"{base}+{steady}".encode()) == _EE_OK:
            return
        # Names match voice files, and some languages are not file names in 1.52 ("en-gb" is
        # the file "en", "zh" is "cmn"), so fall back to choosing the voice by language.
        spec = _VoiceSpec(languages=base.encode())
        if not base or self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != _EE_OK:
            raise TtsError(f"espeak has no voice named '{voice}': `voiceloop voices --tts espeak` lists them")
        resolved = _short_name(self._lib.espeak_GetCurrentVoice().contents.identifier)
        self._lib.espeak_SetVoiceByName(f"{resolved}+{steady}".encode())

    def _steady_variant(self, voice: str, variant: str) -> str:
        """The name of `variant` with flutter and roughness off, written on first use."""
        variants = self._data / "voices" / "!v"
        name = f"{variant}{_STEADY}"
        if (variants / name).is_file():
            return name
        # espeak accepts an unknown "+variant" silently and speaks the plain voice instead.
        source = variants / variant
        if variant and ("/" in variant or not source.is_file()):
            raise TtsError(f"espeak has no voice variant '{variant}' (in voice '{voice}')")
        original = source.read_text(encoding="utf-8", errors="replace") if variant else ""
        (variants / name).write_text(f"{original}\n{_STEADY_SETTINGS}", encoding="utf-8")
        return name

    def synth(self, text: str) -> np.ndarray:
        self._chunks = []
        self._lib.espeak_ng_SetRandSeed(1)  # breathy variants (f1-f5, whisper) add noise
        data = text.encode("utf-8")
        rc = self._lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        if rc != _EE_OK:
            raise TtsError(f"espeak-ng synthesis failed (error {rc}) for {text[:40]!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return pcm

    def phonemes(self, text: str) -> str:
        # espeak advances the pointer one clause per call and sets it to NULL at the end.
        pointer = ctypes.c_char_p(text.encode("utf-8"))
        clauses = []
        while pointer.value:
            ipa = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            clauses.append(ipa.decode("utf-8") if ipa else "")
        return " ".join(clause for clause in clauses if clause)

    def voices(self) -> list[str]:
        table = self._lib.espeak_ListVoices(None)
        names = []
        index = 0
        while table[index]:
            names.append(_short_name(table[index].contents.identifier))
            index += 1
        return sorted(names)


def _declare(lib: ctypes.CDLL) -> None:
    """Argument types, so ctypes neither truncates pointers nor guesses at int widths."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_VoiceSpec)]
    lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_VoiceSpec)
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceSpec))


def _steady_overlay(data: Path) -> Path:
    """A private data directory: links to the wheel's files plus room for steady variants.

    Variants can only be loaded from `<data>/voices/!v`, and the wheel's own directory is not
    ours to write into. Only the variants in use get a steady copy, because espeak lists at
    most 350 voice files and warns past that.
    """
    root = Path(tempfile.mkdtemp(prefix="voiceloop-espeak-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    overlay = root / "espeak-ng-data"
    variants = overlay / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in data.iterdir():
        if entry.name != "voices":
            (overlay / entry.name).symlink_to(entry)
    for entry in (data / "voices").iterdir():
        if entry.name != "!v":
            (overlay / "voices" / entry.name).symlink_to(entry)
    for entry in (data / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    return overlay


def _short_name(identifier: bytes) -> str:
    """'gmw/en-US' -> 'en-us': the form espeak_SetVoiceByName accepts."""
    return identifier.decode().rsplit("/", 1)[-1].lower()


_lock = threading.Lock()
_engine: _Engine | None = None


def _get_engine() -> _Engine:
    """Initialises espeak-ng on first use; the caller holds `_lock`."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def render(text: str, voice: str = "en-us", rate_wpm: int = 175) -> np.ndarray:
    """The whole utterance as 16 kHz float32; the same input always gives the same samples."""
    if not text.strip():
        return np.zeros(0, np.float32)
    with _lock:
        engine = _get_engine()
        engine.select(voice, rate_wpm)
        pcm = engine.synth(text)
        rate = engine.sample_rate
    return resample(pcm, rate)


def phonemes(text: str, voice: str = "en-us") -> str:
    """IPA for `text` as the voice would say it: shows which language rules apply."""
    with _lock:
        engine = _get_engine()
        engine.select(voice, 175)
        return engine.phonemes(text)


def list_voices() -> list[str]:
    """Voice names accepted by `render` (each may take a variant, e.g. 'en-us+m3')."""
    with _lock:
        return _get_engine().voices()


class EspeakVoice:
    """The SpeechSynthesizer adapter; ~900x real time, so a piece comes back as one chunk."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", rate_wpm: int = 175) -> None:
        self.voice = voice
        self.rate_wpm = rate_wpm
        with _lock:  # a misspelt voice should fail at startup, not at the first reply
            _get_engine().select(voice, rate_wpm)

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        if not text.strip():
            return
        audio = await asyncio.to_thread(render, text, self.voice, self.rate_wpm)
        if audio.size:
            yield audio

    async def aclose(self) -> None:
        """Nothing to release: the engine is process-wide and shared with `render`."""


def create(options: EspeakOptions, tts: TtsSettings, **kwargs: Any) -> EspeakVoice:
    """The `[tts] voice` at `[tts.espeak] rate_wpm`; keyword arguments override (a fallback's voice)."""
    return EspeakVoice(**{"voice": tts.voice, "rate_wpm": options.rate_wpm, **kwargs})
