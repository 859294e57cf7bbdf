"""Paraformer ASR through FunASR's `AutoModel`: SeACo hotwords, optional fsmn-vad and ct-punc.

Hand-made wrappers reload or re-wrap `AutoModel` per request and reach ~5x real time on a GPU
that FunASR itself drives at ~120x. This adapter keeps one `AutoModel` per process (loaded
once, warmed up, shared by every recogniser built with the same settings), passes audio as
arrays (no temp files, no ffmpeg), and adds nothing per call but bookkeeping, so its cost is
FunASR's own (`scripts/bench_asr.py` measures the difference).

Things FunASR does that this module works around:
- Model ids are resolved (and downloads refused) by `voiceloop.asr.models` before FunASR sees
  them: offline, FunASR otherwise hangs for 20-40 s and then blames the registry.
- `AutoModel` keeps per-call state (its kwargs, SeACo's hotword list): one lock per model.
- It prints to stdout on import and construction, configures the root logger and sets torch's
  thread count for the whole process (`ncpu`): stdout is diverted, logging restored, and ncpu
  defaults to leave a core for the audio loop.
- A device it cannot use silently becomes the CPU: an explicit `cuda` without CUDA fails here.
- Hotwords are one string split on spaces, or a `.txt` file of one phrase per line; a hotword
  whose characters are not in the vocabulary (or a model dir without `seg_dict`) silently
  becomes `<unk>` and does nothing: each hotword is checked with FunASR's own tokenisation.
- Native fp16 (`fp16=True` in AutoModel) breaks on dtype mismatches in the CIF predictor and
  SeACo's bias path, so half precision runs under `torch.autocast`, and falls back to fp32
  (said once) when the model cannot run that way.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr import models
from voiceloop.asr.base import AsrError, AsrInputError, Transcription
from voiceloop.asr.funasr_model import default_ncpu, load_model, pick_device, root_logging_kept
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.text.scripts import UNSPACED_CHAR

if TYPE_CHECKING:
    from voiceloop.asr.options import ParaformerOptions
    from voiceloop.config.settings import AsrSettings

DEFAULT_MODEL = "paraformer-zh"
# FunASR's maintainers: "no hard limit, but for speed and accuracy keep hotwords to at most
# 10 characters and at most 1k of them" (SeACo's attention filter keeps the best 50 per call).
# Counted here in model tokens: a Chinese character is one, an English word a few BPE pieces.
MAX_HOTWORDS = 1000
MAX_HOTWORD_TOKENS = 10
HOTWORD_MODELS = frozenset({"SeacoParaformer", "ContextualParaformer"})
MIN_AUDIO_S = 0.05  # shorter than two feature frames: FunASR errors, and nobody spoke in it

log = logging.getLogger(__name__)
_SPECIAL = re.compile(r"<[^<>\s]*>")


# -- results -----------------------------------------------------------------------------------


def join_units(units: Sequence[str]) -> str:
    """FunASR returns timestamped text as space-separated units ("欢 迎 hello"); readers want
    "欢迎 hello": no space between two CJK characters, one elsewhere."""
    text = ""
    for unit in units:
        if text and not (UNSPACED_CHAR.match(text[-1]) and UNSPACED_CHAR.match(unit[0])):
            text += " "
        text += unit
    return text


def to_transcription(
    result: dict[str, Any] | None, audio_s: float, elapsed_s: float, punctuated: bool
) -> Transcription:
    """One FunASR result (or None when it returned nothing) as a Transcription.

    The per-token timestamps pair with the unpunctuated units (`raw_text` when ct-punc ran);
    where the counts disagree the labels are left empty rather than misaligned.
    """
    if not result:
        return Transcription("", audio_s, elapsed_s)
    # Special tokens (<unk>, a SeACo model's no-bias token) can leak into the text, but FunASR
    # gives them no timestamp: drop them from both.
    text = " ".join(_SPECIAL.sub("", str(result.get("text", ""))).split())
    raw = str(result.get("raw_text") or result.get("text", ""))
    units = [u for u in raw.split() if not _SPECIAL.fullmatch(u)]
    spans = result.get("timestamp") or []
    if len(units) == len(spans):
        timestamps = [(u, s / 1000, e / 1000) for u, (s, e) in zip(units, spans, strict=True)]
    else:
        timestamps = [("", s / 1000, e / 1000) for s, e in spans]
    return Transcription(text if punctuated else join_units(units), audio_s, elapsed_s, timestamps)


# -- the recogniser ----------------------------------------------------------------------------


def usable_hotwords(
    hotwords: Sequence[str] | None, supports_hotwords: bool, model_name: str, model_class: str
) -> list[str]:
    """Hotwords cleaned of blanks, refused (rather than silently ignored) where the model has no
    bias path or there are more than it can use: the checks every Paraformer runtime shares."""
    words = [w.strip() for w in hotwords or () if w and w.strip()]
    if words and not supports_hotwords:
        raise AsrInputError(
            f"hotwords need a SeACo-Paraformer model such as 'paraformer-zh'; "
            f"{model_name} is a {model_class} and would ignore them"
        )
    if len(words) > MAX_HOTWORDS:
        raise AsrInputError(f"{len(words)} hotwords given; at most {MAX_HOTWORDS} are useful")
    return words


class ParaformerRecognizer:
    """SeACo-Paraformer (or any FunASR Paraformer) with optional fsmn-vad and ct-punc.

    `transcribe` blocks; the runtime calls it from a worker thread. Calls on one model are
    serialised (FunASR keeps per-call state); `transcribe_batch` is the throughput path.
    """

    name = "paraformer"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        vad_model: str | None = None,
        punc_model: str | None = None,
        device: str = "auto",
        ncpu: int | None = None,
        batch_size_s: int = 300,
        fp16: bool | None = None,
        hotwords: Sequence[str] = (),
    ) -> None:
        # Paths first: a missing model must fail in milliseconds, before the 12 s funasr import.
        wanted = [(model, "ASR model")]
        wanted += [(vad_model, "VAD model")] if vad_model else []
        wanted += [(punc_model, "punctuation model")] if punc_model else []
        dirs = iter(models.resolve_all(wanted))
        self.model_dir = next(dirs)
        self.vad_dir = next(dirs) if vad_model else None
        self.punc_dir = next(dirs) if punc_model else None
        self.model_name = model
        self.device = pick_device(device)
        if fp16 and not self.device.startswith("cuda"):
            raise AsrError(
                f"asr.paraformer.fp16 needs a CUDA device (its device resolved to '{self.device}')"
            )
        self.fp16 = self.device.startswith("cuda") if fp16 is None else fp16
        self.ncpu = ncpu or default_ncpu()
        self.batch_size_s = batch_size_s
        self._loaded = load_model(self.model_dir, self.vad_dir, self.punc_dir, self.device, self.ncpu)
        self.supports_hotwords = self._loaded.model_class in HOTWORD_MODELS
        self._checked_hotwords: set[str] = set()
        self._unk_id = -1
        self._hotword_dir: tempfile.TemporaryDirectory[str] | None = None
        self.hotwords = self.check_hotwords(hotwords)
        self.description = f"paraformer {model} on {self.device}" + (" (fp16)" if self.fp16 else "")

    @property
    def automodel(self) -> Any:
        """The shared FunASR AutoModel (for benchmarks that call it directly)."""
        return self._loaded.automodel

    # -- hotwords ---------------------------------------------------------------------------

    def check_hotwords(self, hotwords: Sequence[str] | None) -> list[str]:
        """The cleaned list; raises if the model cannot use them, rather than ignore them."""
        words = usable_hotwords(hotwords, self.supports_hotwords, self.model_name, self._loaded.model_class)
        unknown, too_long = [], []
        for word in words:
            if word in self._checked_hotwords:
                continue
            ids = self._token_ids(word)
            if ids is None:  # the model offers no way to ask: count characters
                ids = [ord(ch) for ch in word.replace(" ", "")]
            elif not ids or self._unk_id in ids:
                unknown.append(word)
            if len(ids) > MAX_HOTWORD_TOKENS:
                too_long.append(word)
        if unknown:
            seg_dict = "" if (self.model_dir / "seg_dict").exists() else " (its dir has no seg_dict)"
            raise AsrInputError(
                f"hotword(s) {', '.join(unknown)} contain characters or words missing from the "
                f"model's vocabulary{seg_dict}: the model would see <unk> and ignore them"
            )
        if too_long:
            raise AsrInputError(
                f"hotwords longer than {MAX_HOTWORD_TOKENS} tokens (characters, for Chinese) do not "
                f"bias the model: {', '.join(too_long)}"
            )
        self._checked_hotwords.update(words)
        return words

    def _token_ids(self, word: str) -> list[int] | None:
        """`word` as the model's bias path will see it, through FunASR's own hotword
        tokenisation (seg_dict and all); None when the model has no such function."""
        build = getattr(self._loaded.automodel.model, "generate_hotwords_list", None)
        kwargs = self._loaded.automodel.kwargs
        tokenizer = kwargs.get("tokenizer")
        if build is None or tokenizer is None:
            return None
        try:
            with tempfile.TemporaryDirectory() as tmp, root_logging_kept():
                path = Path(tmp) / "hotword.txt"
                path.write_text(word + "\n", encoding="utf-8")
                ids = build(str(path), tokenizer=tokenizer, frontend=kwargs.get("frontend"))[0]
                self._unk_id = tokenizer.tokens2ids(["<unk>"])[0]
        except Exception:  # another model family's signature: nothing to check with
            return None
        return list(ids)

    def hotword_argument(self, words: list[str]) -> str | None:
        """What FunASR's `hotword=` expects: one space-separated string, or (when a hotword is a
        phrase with spaces) the path of a `.txt` file with one hotword per line."""
        if not words:
            return None
        if not any(" " in w for w in words):
            return " ".join(words)
        if self._hotword_dir is None:
            self._hotword_dir = tempfile.TemporaryDirectory(prefix="voiceloop-hotwords-")
        path = Path(self._hotword_dir.name) / f"{abs(hash(tuple(words)))}.txt"
        if not path.exists():
            path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
        return str(path)

    # -- recognition ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One inference on quiet noise: loads kernels (and, on CUDA, tunes them) before the
        first turn, and decides whether fp16 works for this model."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.01
        if self.fp16:
            try:
                self._generate(noise, {})
            except RuntimeError as exc:
                if not any(k in str(exc) for k in ("dtype", "scalar type", "Half", "BFloat16")):
                    raise
                self.fp16 = False
                self.description = self.description.replace(" (fp16)", "")
                print(
                    f"voiceloop: {self._loaded.model_class} cannot run in fp16 ({exc}); using fp32",
                    file=sys.stderr,
                )
        self.transcribe(noise, self.hotwords or None)

    def generate_options(self, hotwords: list[str] | None) -> dict[str, Any]:
        """The keyword arguments this adapter passes to `AutoModel.generate`."""
        words = self.hotwords if hotwords is None else self.check_hotwords(hotwords)
        options: dict[str, Any] = {
            "output_timestamp": True,
            "return_raw_text": True,
            "batch_size_s": self.batch_size_s,
        }
        argument = self.hotword_argument(words)
        if argument is not None:
            options["hotword"] = argument
        return options

    def _generate(self, audio: Any, options: dict[str, Any]) -> list[dict[str, Any]]:
        import torch

        autocast = torch.autocast("cuda", dtype=torch.float16) if self.fp16 else contextlib.nullcontext()
        with self._loaded.lock, autocast, root_logging_kept():
            return self._loaded.automodel.generate(input=audio, **options)

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`hotwords=None` uses the configured ones; `[]` means none for this call."""
        audio = _as_input(audio)
        audio_s = len(audio) / SAMPLE_RATE
        options = self.generate_options(hotwords)
        start = time.perf_counter()
        if audio_s < MIN_AUDIO_S:
            return Transcription("", audio_s, time.perf_counter() - start)
        results = self._call(audio, options, audio_s)
        return to_transcription(
            results[0] if results else None, audio_s, time.perf_counter() - start, self.punc_dir is not None
        )

    def transcribe_batch(
        self, audios: Sequence[np.ndarray], hotwords: list[str] | None = None
    ) -> list[Transcription]:
        """Many clips at once: one batched `generate` without a VAD (the GPU's throughput path);
        with a VAD, one call per clip, whose speech segments FunASR batches by `batch_size_s`.
        Elapsed time is shared out in proportion to each clip's length."""
        clips = [_as_input(a) for a in audios]
        options = self.generate_options(hotwords)
        punctuated = self.punc_dir is not None
        if self.vad_dir is not None or len(clips) < 2:
            return [self._one(clip, options, punctuated) for clip in clips]
        durations = [len(c) / SAMPLE_RATE for c in clips]
        live = [i for i, d in enumerate(durations) if d >= MIN_AUDIO_S]
        start = time.perf_counter()
        results = self._call([clips[i] for i in live], {**options, "batch_size": len(live)}, sum(durations))
        if len(results) != len(live):
            # FunASR drops entries when a whole batch predicts no tokens; order is then unknown.
            return [self._one(clip, options, punctuated) for clip in clips]
        elapsed = time.perf_counter() - start
        total = sum(durations[i] for i in live) or 1.0
        by_index = dict(zip(live, results, strict=True))
        return [
            to_transcription(by_index.get(i), d, elapsed * d / total if i in by_index else 0.0, punctuated)
            for i, d in enumerate(durations)
        ]

    def _one(self, clip: np.ndarray, options: dict[str, Any], punctuated: bool) -> Transcription:
        audio_s = len(clip) / SAMPLE_RATE
        start = time.perf_counter()
        if audio_s < MIN_AUDIO_S:
            return Transcription("", audio_s, 0.0)
        results = self._call(clip, options, audio_s)
        return to_transcription(
            results[0] if results else None, audio_s, time.perf_counter() - start, punctuated
        )

    def _call(self, audio: Any, options: dict[str, Any], audio_s: float) -> list[dict[str, Any]]:
        try:
            return self._generate(audio, options)
        except Exception as exc:
            hint = ""
            if "out of memory" in str(exc).lower():
                hint = "; lower asr.batch_size_s or transcribe fewer files at once"
            raise AsrError(
                f"FunASR failed on {audio_s:.1f} s of audio: {type(exc).__name__}: {exc}{hint}"
            ) from exc

    def close(self) -> None:
        """Removes hotword files; the AutoModel stays loaded for the process (see unload_all)."""
        if self._hotword_dir is not None:
            self._hotword_dir.cleanup()
            self._hotword_dir = None


def _as_input(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AsrError(f"expected mono 16 kHz audio (1-D), got shape {audio.shape}")
    return np.ascontiguousarray(audio)


def create(options: ParaformerOptions, asr: AsrSettings, **kwargs: Any) -> ParaformerRecognizer:
    """From `[asr.paraformer]`, with the shared `[asr] hotwords`; keyword arguments override."""
    settings: dict[str, Any] = {
        "model": options.model or DEFAULT_MODEL,
        "vad_model": options.vad_model,
        "punc_model": options.punc_model,
        "device": options.device,
        "ncpu": options.ncpu,
        "batch_size_s": options.batch_size_s,
        "fp16": options.fp16,
        "hotwords": list(asr.hotwords),
    }
    return ParaformerRecognizer(**{**settings, **kwargs})
