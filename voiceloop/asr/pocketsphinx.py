"""Offline English recognition with pocketsphinx 5 and its bundled en-us model.

Pocketsphinx is small and CPU-only, but its open-vocabulary language model gets about half the
words of synthetic speech wrong (at ~0.25 RTF). Restricted to the phrases an assistant expects
it is close to exact and ~70x faster than real time, so the adapter has three modes: a phrase
list (turned into a JSGF grammar), a JSGF grammar file, or the default language model.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr.base import AsrError, Transcription
from voiceloop.audio.frames import SAMPLE_RATE, to_int16

if TYPE_CHECKING:
    from voiceloop.asr.options import PocketsphinxOptions
    from voiceloop.config.settings import AsrSettings

_SEARCH = "voiceloop"
_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")
_NOT_A_WORD = re.compile(r"[^a-z0-9' ]+")
# Pocketsphinx's noise and cepstral-mean estimates break down on digital silence (an espeak
# file from `voiceloop say`: 7 of the offline profile's 14 phrases came back empty), so audio
# with a nearly silent stretch gets a faint fixed noise floor under it (14 of 14). Audio
# that already has its own noise, as a microphone's does, is left exactly as it is. -70 dBFS,
# not -80: the echo canceller's cut takes a reply's residual echo in the pre-roll down to
# -70..-76 dBFS (voiceloop/vad/endpointer.py), where the decoder stretched a "tell" over the
# silence and the "stop" after it; over 414 recogniser inputs of barge-in bench runs, labelled
# from their session logs, -70 recovered 5 commands, lost none, and left one more echo heard
# as a phrase and two fewer (-65: 6 recovered, 1 lost).
_NOISE_FLOOR_DBFS = -60.0
_DIGITAL_SILENCE_DBFS = -70.0
NBEST_LOOKED_AT = 8  # entries of the n-best list read for a partial best path's runner-up
# How close (pocketsphinx's path score, as its Python API gives it: ~0.7-0.9 here) the runner-up
# must be. Over espeak commands after 250 ms of another voice 30-40 dB down, and 1 s cuts of that
# voice alone: the "stop"s the partial "tell" hid came next within 0.008, the soak's within 0.011;
# the runner-ups that were wrong ("thank you" for "tell me a joke", "goodbye" from the voice
# alone) 0.030 behind.
NBEST_MARGIN = 0.02


class PocketsphinxRecognizer:
    """One decoder, shared by the runtime's worker threads under a lock (it is not reentrant)."""

    name = "pocketsphinx"

    def __init__(
        self,
        phrases: list[str] | None = None,
        grammar: Path | None = None,
        model_dir: Path | None = None,
    ) -> None:
        from pocketsphinx import Decoder, get_model_path

        model = Path(model_dir) if model_dir else Path(get_model_path()) / "en-us"
        files = _model_files(model)
        use_lm = not phrases and grammar is None
        if use_lm and "lm" not in files:
            raise AsrError(f"no language model (*.lm.bin) in {model}; give asr.pocketsphinx.phrases instead")
        try:
            # FATAL: pocketsphinx otherwise logs its setup and every utterance to stderr.
            self._decoder = Decoder(
                loglevel="FATAL",
                hmm=files["hmm"],
                dict=files["dict"],
                lm=files["lm"] if use_lm else None,  # loading the LM costs 0.2 s for nothing
                # Its spectral noise subtraction learns the noise from the utterance's first
                # frames; with the front end fresh for each one (below), a word said over a
                # reply taught it the reply's residual echo as noise and lost the word:
                # tests/test_soak.py's "stop" over a long reply came back empty in 4 of 20 runs
                # with it, 1 of 28 without (the cepstral mean, batch, still normalises).
                remove_noise=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"pocketsphinx could not load the model in {model}: {exc}") from None
        self._phrases: set[str] | None = None
        if phrases:
            self._use_phrases(phrases)
        elif grammar is not None:
            self._use_grammar(Path(grammar))
        self._frame_rate = int(self._decoder.config["frate"])
        self._lock = threading.Lock()

    def _use_phrases(self, phrases: list[str]) -> None:
        normalised = sorted({p for p in (normalise(phrase) for phrase in phrases) if p})
        if not normalised:
            raise AsrError("asr.pocketsphinx.phrases has no words in it")
        unknown = sorted({w for p in normalised for w in p.split() if self._decoder.lookup_word(w) is None})
        if unknown:
            raise AsrError(
                f"words not in the pocketsphinx dictionary: {', '.join(unknown)}; "
                "rephrase those phrases or add the words to the model's dictionary"
            )
        self._decoder.add_jsgf_string(_SEARCH, phrases_grammar(normalised))
        self._decoder.activate_search(_SEARCH)
        self._phrases = set(normalised)

    def _use_grammar(self, grammar: Path) -> None:
        if not grammar.is_file():
            raise AsrError(f"JSGF grammar file not found: {grammar}")
        try:
            self._decoder.add_jsgf_file(_SEARCH, str(grammar))
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"pocketsphinx could not use the grammar {grammar}: {exc}") from None
        self._decoder.activate_search(_SEARCH)

    def warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2) * 10 ** (-50 / 20)
        self.transcribe(noise.astype(np.float32))

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`hotwords` are ignored: restricting pocketsphinx is what `phrases` is for."""
        start = time.perf_counter()
        text, words, confidence = self._decode(audio) if audio.size else ("", [], None)  # empty would raise
        if self._phrases is not None and text not in self._phrases:
            # With no path to the grammar's end, pocketsphinx falls back to the best partial
            # path ("tell" for "stop"); half a command is worse than none.
            text, words, confidence = "", [], None
        return Transcription(
            text=text,
            audio_s=len(audio) / SAMPLE_RATE,
            elapsed_s=time.perf_counter() - start,
            timestamps=words,
            confidence=confidence,
        )

    def _decode(self, audio: np.ndarray) -> tuple[str, list[tuple[str, float, float]], float | None]:
        with self._lock:
            decoder = self._decoder
            # Each utterance is decoded as if by a fresh decoder: pocketsphinx's front end
            # otherwise carries its estimates (noise, cepstral mean) from the last utterance
            # into this one. After "what is the weather like today" said into a quiet room,
            # "turn off the lights" said over a reply right after came back empty, though a
            # fresh decoder heard it (bench_bargein person-walks: the first interruption
            # lost in most runs); `set_cmn` alone did not help, `reinit_feat` (~0.2 ms) did.
            decoder.reinit_feat()
            decoder.start_utt()
            # full_utt: the whole utterance is here, so cepstral normalisation can use all of it.
            raw = to_int16(with_noise_floor(audio)).tobytes()
            decoder.process_raw(raw, False, True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            text = hypothesis.hypstr if hypothesis is not None else ""
            if not text:
                return "", [], None
            if self._phrases is not None and text not in self._phrases:
                other = _next_complete_phrase(decoder, hypothesis, self._phrases)
                if other is not None:
                    return other, self._aligned_words(decoder, other, raw), None
            return text, self._words(decoder), _word_confidence(decoder)

    def _aligned_words(self, decoder: Any, text: str, raw: bytes) -> list[tuple[str, float, float]]:
        """`text`'s word times in `raw`, by forced alignment (~20 ms for a second of audio): the
        n-best list that gave `text` has no segments."""
        decoder.set_align_text(text)
        try:
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(raw, False, True)
            decoder.end_utt()
            return self._words(decoder)
        finally:
            decoder.activate_search(_SEARCH)

    def _words(self, decoder: Any) -> list[tuple[str, float, float]]:
        words = []
        for segment in decoder.seg():
            word = _ALT_PRONUNCIATION.sub("", segment.word)
            if word.startswith(("<", "[", "++")):  # <s>, </s>, <sil>, [NOISE], ++UH++
                continue
            # end_frame is inclusive.
            end = (segment.end_frame + 1) / self._frame_rate
            words.append((word, segment.start_frame / self._frame_rate, end))
        return words

    def close(self) -> None:
        """The decoder frees its model when garbage-collected; nothing is held open."""


def with_noise_floor(audio: np.ndarray) -> np.ndarray:
    """`audio`, with a faint repeatable noise under it if any 10 ms of it is digitally silent."""
    frames = audio[: audio.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    if frames.size == 0 or (frames**2).mean(axis=1).min() > 10 ** (_DIGITAL_SILENCE_DBFS / 10):
        return audio
    noise = np.random.default_rng(0).standard_normal(audio.size) * 10 ** (_NOISE_FLOOR_DBFS / 20)
    return (audio + noise).astype(np.float32)


def _next_complete_phrase(decoder: Any, partial: Any, phrases: set[str]) -> str | None:
    """The lattice's runner-up to `partial` (a best path that never reached the grammar's end),
    where it is a whole phrase scoring within NBEST_MARGIN and does not merely finish the partial.

    A reply's residual echo in the pre-roll, 30-45 dB under the user, makes the decoder spend the
    utterance's first sounds on words: after it, espeak's "stop" came back as the partial "tell"
    in 27 of 36 mixes (three voices, four levels, three lengths), with "stop" the runner-up;
    tests/test_soak.py's "stop" over a long reply was lost 1 in 20 runs the same way (best
    "what can", next "stop"). A runner-up that completes the partial ("how are" → "how are
    you") is a guess at words not said, refused as half a command is."""
    best, best_score = partial.hypstr, partial.score
    seen = 0
    for hypothesis in decoder.nbest():
        if hypothesis is None or seen >= NBEST_LOOKED_AT:
            return None
        seen += 1
        other = hypothesis.hypstr
        if other == best:
            continue  # the n-best list repeats each path (once per lattice end)
        close = best_score - hypothesis.score <= NBEST_MARGIN
        if close and other in phrases and not f"{other} ".startswith(f"{best} "):
            return other
        return None
    return None


def _word_confidence(decoder: Any) -> float | None:
    """The mean posterior probability of the words heard (pocketsphinx's `seg().prob`, already
    out of log space in its Python API), fillers and silences left out: near 1 when no other
    path through the lattice competed with them."""
    posteriors = [
        min(max(float(segment.prob), 0.0), 1.0)
        for segment in decoder.seg()
        if not segment.word.startswith(("<", "[", "++"))
    ]
    return round(sum(posteriors) / len(posteriors), 3) if posteriors else None


def normalise(phrase: str) -> str:
    """Lower case, punctuation out: the form the dictionary and the hypotheses use."""
    return " ".join(_NOT_A_WORD.sub(" ", phrase.lower().replace("-", " ")).split())


def phrases_grammar(phrases: list[str]) -> str:
    return f"#JSGF V1.0; grammar cmds; public <cmd> = ( {' | '.join(phrases)} );"


def _model_files(model_dir: Path) -> dict[str, str]:
    """The acoustic model (the folder holding `mdef`), `*.dict` and `*.lm.bin` in a model dir.

    Laid out like pocketsphinx's bundled `model/en-us`, so a downloaded CMU model drops in.
    """
    if not model_dir.is_dir():
        raise AsrError(f"pocketsphinx model dir not found: {model_dir}")
    hmm = sorted(path.parent for path in model_dir.glob("*/mdef"))
    dictionaries = sorted(model_dir.glob("*.dict"))
    if not hmm or not dictionaries:
        raise AsrError(
            f"{model_dir} is not a pocketsphinx model dir: it needs an acoustic model folder "
            "(with mdef) and a *.dict pronunciation dictionary"
        )
    files = {"hmm": str(hmm[0]), "dict": str(dictionaries[0])}
    models = [p for p in sorted(model_dir.glob("*.lm.bin")) if "-phone" not in p.name]
    if models:
        files["lm"] = str(models[0])
    return files


def create(options: PocketsphinxOptions, asr: AsrSettings, **kwargs: Any) -> PocketsphinxRecognizer:
    """From `[asr.pocketsphinx]`; refuses a language other than English (`[asr] language`)."""
    language = asr.language.lower().replace("_", "-")
    if language != "en" and not language.startswith("en-"):
        raise AsrError(
            f"pocketsphinx here is English-only (asr.language = '{asr.language}'): set "
            "asr.language = 'en' (VOICELOOP_ASR__LANGUAGE=en, or -c offline, which sets both), "
            "or use the paraformer adapter (asr.name = 'paraformer') for other languages"
        )
    settings: dict[str, Any] = {
        "phrases": list(options.phrases) or None,
        "grammar": options.grammar,
        "model_dir": Path(options.model) if options.model else None,
    }
    return PocketsphinxRecognizer(**{**settings, **kwargs})
