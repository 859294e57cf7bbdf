"""Smart Turn v3.2 as a stage of its own: features identical to Whisper's, clear espeak cases
decided right, nothing crashes on silence or empty input, and a missing model is one line
naming the command that fetches it.

The model comes from PyPI (the pipecat-ai wheel) into the voiceloop model cache; the fixture
fetches it when missing and skips only if that download really cannot happen."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from voiceloop.testing.clips import spoken_clip
from voiceloop.turn import TurnDetector, TurnError, TurnModelMissing, TurnVerdict, models
from voiceloop.turn.features import (
    N_FFT,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    last_window,
    log_mel,
    mel_filters,
    normalise_waveform,
    reflect_padded,
    smart_turn_features,
)
from voiceloop.turn.smart_turn import SmartTurnDetector, SmartTurnOptions, create

TRAILING_SILENCE_S = 0.25  # what a VAD stop leaves after the last word (stop_ms 200-250)


@pytest.fixture(scope="module")
def model_file() -> Path:
    if not models.is_present():
        try:
            models.download()
        except TurnError as exc:
            pytest.skip(f"the Smart Turn model is not cached and cannot be downloaded here: {exc}")
    return models.default_model_path()


@pytest.fixture(scope="module")
def detector(model_file: Path) -> Iterator[SmartTurnDetector]:
    turn = create(SmartTurnOptions(threads=1))
    turn.warm_up()
    yield turn
    turn.close()


def clip(text: str) -> np.ndarray:
    return spoken_clip(text, tail_s=TRAILING_SILENCE_S)


# -- features ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_extractor():  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    return transformers.WhisperFeatureExtractor(feature_size=80)


def whisper_features(extractor, audio: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """transformers' features as Smart Turn's reference code asks for them."""
    return extractor(
        last_window(audio),
        sampling_rate=SAMPLE_RATE,
        return_tensors="np",
        padding="max_length",
        max_length=WINDOW_SAMPLES,
        truncation=True,
        do_normalize=True,
    ).input_features


@pytest.mark.parametrize(
    "case",
    ["speech", "long speech and noise", "silence", "one sample", "loud clipped noise"],
)
def test_features_match_whisper_feature_extractor(whisper_extractor, case: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    audio = {
        "speech": lambda: clip("turn off the kitchen lights."),
        "long speech and noise": lambda: np.concatenate(
            [rng.standard_normal(6 * SAMPLE_RATE).astype(np.float32) * 0.05, clip("set a timer for")]
        ),
        "silence": lambda: np.zeros(SAMPLE_RATE, np.float32),
        "one sample": lambda: np.array([0.3], np.float32),
        "loud clipped noise": lambda: np.clip(rng.standard_normal(3 * SAMPLE_RATE) * 2, -1, 1).astype(
            np.float32
        ),
    }[case]()
    ours = smart_turn_features(audio)
    theirs = whisper_features(whisper_extractor, audio)
    assert ours.shape == theirs.shape == (1, 80, 800)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "samples", [1, 200, 201, 360, 361, 2_000, 32_000, WINDOW_SAMPLES - 1, WINDOW_SAMPLES]
)
def test_the_padding_of_a_short_turn_is_transformed_once_with_the_same_features(samples: int) -> None:
    audio = np.random.default_rng(samples).standard_normal(samples).astype(np.float32) * 0.1
    every_frame = log_mel(normalise_waveform(last_window(audio)))[None]
    np.testing.assert_array_equal(smart_turn_features(audio), every_frame)


def test_reused_buffers_carry_nothing_from_one_call_to_the_next() -> None:
    """Features are computed in arrays kept between calls and shared by threads: a call after a
    longer or shorter turn, or among calls from several threads at once, gives the same numbers
    as the first."""
    rng = np.random.default_rng(7)
    turns = [
        rng.standard_normal(samples).astype(np.float32) * 0.1
        for samples in (WINDOW_SAMPLES + 5_000, 3_000, 40_000, 1, WINDOW_SAMPLES)
    ]
    first = [smart_turn_features(audio) for audio in turns]
    again = [smart_turn_features(audio) for audio in reversed(turns)][::-1]
    with ThreadPoolExecutor(max_workers=4) as pool:
        in_threads = list(pool.map(smart_turn_features, turns * 4))
    for before, after in zip(first, again, strict=True):
        np.testing.assert_array_equal(after, before)
    for index, threaded in enumerate(in_threads):
        np.testing.assert_array_equal(threaded, first[index % len(turns)])


@pytest.mark.parametrize("samples", [1, 160, 199, 200, 201, 202, 401, 1_000])
def test_reflect_padding_in_place_is_numpys(samples: int) -> None:
    audio = np.random.default_rng(samples).standard_normal(samples)
    out = np.empty(samples + 2 * (N_FFT // 2) + 10)
    np.testing.assert_array_equal(reflect_padded(audio, out), np.pad(audio, N_FFT // 2, mode="reflect"))


def test_mel_filterbank_is_whispers(whisper_extractor) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_allclose(mel_filters(), whisper_extractor.mel_filters, rtol=1e-10, atol=1e-12)


def test_window_keeps_the_end_and_pads_the_front() -> None:
    short = np.arange(1, 101, dtype=np.float32)
    window = last_window(short)
    assert window.shape == (WINDOW_SAMPLES,)
    assert not window[:-100].any() and np.array_equal(window[-100:], short)
    long = np.arange(WINDOW_SAMPLES + 500, dtype=np.float32)
    assert np.array_equal(last_window(long), long[-WINDOW_SAMPLES:])
    one_second = last_window(long, seconds=1.0)
    assert not one_second[:-SAMPLE_RATE].any() and np.array_equal(
        one_second[-SAMPLE_RATE:], long[-SAMPLE_RATE:]
    )
    assert not last_window(np.zeros(0, np.float32)).any()


# -- the detector on clear cases ---------------------------------------------------------------


def test_a_finished_command_is_complete(detector: SmartTurnDetector) -> None:
    verdict = detector.predict(clip("turn off the kitchen lights."))
    assert verdict.complete, verdict
    assert verdict.probability > 0.8, verdict


def test_a_hesitation_is_incomplete(detector: SmartTurnDetector) -> None:
    verdict = detector.predict(clip("I can't seem to, um"))
    assert not verdict.complete, verdict
    assert verdict.probability < 0.2, verdict


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros(0, np.float32),
        np.zeros(1, np.float32),
        np.zeros(SAMPLE_RATE // 100, np.float32),
        np.zeros(2 * SAMPLE_RATE, np.float32),
        np.zeros(20 * SAMPLE_RATE, np.float32),
        np.full(SAMPLE_RATE, np.nan, np.float32),
        np.zeros((SAMPLE_RATE, 1), np.float32),  # a (samples, channels) block from a device
    ],
    ids=["empty", "one sample", "10 ms", "2 s silence", "20 s silence", "NaN", "column"],
)
def test_silence_and_odd_input_give_a_verdict(detector: SmartTurnDetector, audio: np.ndarray) -> None:
    verdict = detector.predict(audio)
    assert isinstance(verdict, TurnVerdict)
    assert 0.0 <= verdict.probability <= 1.0
    assert verdict.complete == (verdict.probability > detector.options.threshold)
    assert verdict.elapsed_ms > 0


def test_the_threshold_decides(model_file: Path) -> None:
    audio = clip("turn off the kitchen lights.")
    strict = create({"threshold": 0.999, "threads": 2})
    try:
        verdict = strict.predict(audio)
    finally:
        strict.close()
    assert verdict.probability > 0.8 and not verdict.complete


def test_the_exact_int8_kernel_is_asked_of_onnxruntime_and_judges_the_clear_cases(model_file: Path) -> None:
    """`exact_int8`: onnxruntime's u8u8 kernel instead of u8s8, which can saturate on x86
    without VNNI (this machine); the clear cases stay clear either way."""
    exact = create({"exact_int8": True})
    try:
        config = exact._session.get_session_options().get_session_config_entry("session.x64quantprecision")
        finished = exact.predict(clip("turn off the kitchen lights."))
        hesitant = exact.predict(clip("I can't seem to, um"))
    finally:
        exact.close()
    assert config == "1"
    assert finished.complete and finished.probability > 0.8, finished
    assert not hesitant.complete and hesitant.probability < 0.2, hesitant


def test_by_default_the_exact_kernel_is_used_where_the_fast_one_would_saturate(model_file: Path) -> None:
    from voiceloop.turn.smart_turn import fast_int8_saturates

    def exact_kernel(detector: SmartTurnDetector) -> bool:
        entries = detector._session.get_session_options().get_session_config_entry
        try:
            return bool(entries("session.x64quantprecision") == "1")
        except RuntimeError:  # onnxruntime: "does not have configuration with key"
            return False

    detector, fast = create(), create({"exact_int8": False})
    try:
        chosen, refused = exact_kernel(detector), exact_kernel(fast)
    finally:
        detector.close()
        fast.close()
    assert chosen == fast_int8_saturates()
    assert not refused


@pytest.mark.parametrize(
    ("flags", "machine", "saturates"),
    [
        ("fpu sse2 avx avx2 fma", "x86_64", True),  # AVX2 without VNNI: this machine's kind
        ("fpu sse2 avx avx2 fma avx_vnni", "x86_64", False),  # Alder Lake and later, Zen 5
        ("fpu sse2 avx avx2 avx512f avx512_vnni", "x86_64", False),  # Cascade Lake, Zen 4
        ("fpu sse2 avx avx2", "AMD64", True),
        ("fp asimd asimddp", "aarch64", False),  # ARM: the setting is x64-only
        ("fpu sse2 sse4_1", "x86_64", False),  # no AVX2: not the kernel measured here
    ],
)
def test_which_cpus_need_the_exact_int8_kernel(flags: str, machine: str, saturates: bool) -> None:
    from voiceloop.turn.smart_turn import fast_int8_saturates

    cpuinfo = f"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
    assert fast_int8_saturates(cpuinfo, machine) is saturates
    assert fast_int8_saturates("processor\t: 0\n", "x86_64") is False  # no flags line: do not guess


def test_it_is_a_turn_detector_and_closes(model_file: Path) -> None:
    turn = create()
    assert isinstance(turn, TurnDetector) and turn.name == "smart-turn"
    turn.close()
    with pytest.raises(TurnError, match="closed"):
        turn.predict(np.zeros(SAMPLE_RATE, np.float32))


# -- options and the model file ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [({"treshold": 0.5}, "treshold"), ({"threshold": 1.5}, "threshold"), ({"max_audio_s": 9}, "max_audio_s")],
)
def test_bad_options_name_the_key(options: dict, key: str) -> None:
    with pytest.raises(TurnError, match=f"smart-turn options: {key}"):
        create(options)


def test_a_missing_model_is_one_line_naming_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(TurnModelMissing) as caught:
        create()
    message = str(caught.value)
    assert "\n" not in message
    assert "`voiceloop models download smart-turn`" in message
    assert str(tmp_path / "smart-turn" / models.FILE_NAME) in message
    with pytest.raises(TurnModelMissing, match="voiceloop models download smart-turn"):
        create(model_path=tmp_path / "nowhere.onnx")


def test_a_truncated_model_is_named_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    models.default_model_path().parent.mkdir(parents=True)
    models.default_model_path().write_bytes(b"\0" * 1000)
    with pytest.raises(TurnModelMissing, match="damaged.*voiceloop models download smart-turn"):
        create()
    assert not models.is_present()


def test_a_wheel_with_a_different_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sha256 pin: whatever PyPI serves, only the exact file is installed (nothing is written)."""
    wheel = tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(models.WHEEL_MEMBER, b"not the model")
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_pip_download", lambda into: wheel)
    with pytest.raises(TurnError, match="sha256"):
        models.download()
    assert not (tmp_path / "cache").exists()


def test_the_cached_model_is_pinned_and_keeps_its_licence(model_file: Path) -> None:
    assert models.is_present()
    licence = (model_file.parent / models.LICENSE_NAME).read_text()
    assert "BSD 2-Clause" in licence and "Daily" in licence and models.SHA256 in licence


def test_the_cli_downloads_smart_turn(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`voiceloop models download smart-turn` takes the turn model's branch, not FunASR's."""
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    cache = tmp_path / "smart-turn"
    cache.mkdir()
    (cache / models.FILE_NAME).write_bytes(model_file.read_bytes())
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    result = CliRunner().invoke(app, ["models", "download", "smart-turn"])
    assert result.exit_code == 0, result.output
    assert "already cached" in result.output


def test_the_options_import_without_numpy_or_onnxruntime() -> None:
    """The config holds SmartTurnOptions; loading a config must not pay for the model's stack."""
    import subprocess
    import sys

    probe = (
        "import sys; from voiceloop.turn.options import SmartTurnOptions; SmartTurnOptions(threshold=0.7); "
        "print(sorted(m for m in ('numpy', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_doctor_says_how_a_turn_ends_and_what_the_detector_costs(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceloop.cli.doctor import _turn_checks
    from voiceloop.config import load_settings

    settings = load_settings("offline", turn={"name": "smart-turn"})
    ((what, ok, detail),) = _turn_checks(settings)
    assert what == "turn detector" and ok and "smart-turn loads" in detail and "ms a call" in detail
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))  # no model here
    ((what, ok, detail),) = _turn_checks(settings)
    assert ok is None and "voiceloop models download smart-turn" in detail and "silence window" in detail
    ((what, ok, detail),) = _turn_checks(load_settings("offline", turn={"name": "words"}))
    assert what == "turn ending" and ok and "words" in detail
