"""`asr.streaming_runtime = "onnx"`: the streaming Paraformer exported by FunASR's exporter
(encoder + CIF predictor as model.onnx, decoder as decoder.onnx) and run by funasr-onnx's online
`Paraformer`, on the tiny random-init streaming model (voiceloop/testing/tiny_funasr_streaming.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import check_chunk_by_chunk, two_questions_on_2pass
from voiceloop.asr.base import AsrError, StreamingRecognizer
from voiceloop.asr.onnx_export import OnnxModelMissing
from voiceloop.asr.paraformer_streaming import CHUNK_SAMPLES
from voiceloop.build.pipeline import build_streaming, streaming_chunk_ms
from voiceloop.config import load_settings
from voiceloop.testing.tiny_funasr import TinyModels
from voiceloop.testing.tiny_funasr import build_once as build_tiny
from voiceloop.testing.tiny_funasr_streaming import build_and_export
from voiceloop.tts.espeak import render

pytest.importorskip("funasr_onnx", reason="funasr-onnx is not installed (scripts/setup.sh --test)")

from voiceloop.asr.paraformer_streaming_onnx import StreamingParaformerOnnx  # noqa: E402


@pytest.fixture(scope="session")
def streaming_onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_export(tmp_path_factory.getbasetemp() / "tiny-funasr-streaming-onnx")


@pytest.fixture(scope="module")
def streamer(streaming_onnx_dir: Path) -> StreamingParaformerOnnx:
    model = StreamingParaformerOnnx(str(streaming_onnx_dir))
    model.warm_up()
    return model


def test_the_export_writes_the_encoder_and_the_decoder_and_funasr_onnx_streams_them(streamer):
    audio = render("what time is it now, tell me please", "en-us")
    assert isinstance(streamer, StreamingRecognizer)
    assert {"model_quant.onnx", "decoder_quant.onnx"} <= {p.name for p in streamer.model_dir.iterdir()}
    assert "int8" in streamer.description
    check_chunk_by_chunk(streamer, audio)


def test_480_ms_chunks_reach_funasr_onnx_and_a_partial_waits_for_them(streaming_onnx_dir: Path, tmp_path):
    """`asr.streaming_chunk_ms = 480` through the loop's builder: funasr-onnx's [4, 8, 4]."""
    settings = load_settings("offline")
    settings.asr.streaming = True
    settings.asr.streaming_model = str(streaming_onnx_dir)
    settings.asr.streaming_runtime = "onnx"
    settings.asr.streaming_chunk_ms = 480
    built = build_streaming(settings)
    assert isinstance(built, StreamingParaformerOnnx) and built.model.chunk_size == [4, 8, 4]
    assert "480 ms chunks" in built.description
    audio = render("what time is it now, tell me please", "en-us")
    stream = built.start()
    stream.feed(audio[:7679])
    assert stream.decoded_s == 0.0  # one sample short of a chunk
    stream.feed(audio[7679:7680])
    assert stream.decoded_s == pytest.approx(0.48)
    check_chunk_by_chunk(built, audio)


def test_an_utterance_dropped_at_its_endpoint_leaves_nothing_for_the_next(streamer):
    """The loop drops a stream without a final chunk; funasr-onnx keeps its frontend's buffers on
    the model and clears them only on a final chunk, so each stream has its own."""
    audio = render("tell me a joke about a cat", "en-us")
    alone = streamer.start()
    alone.feed(audio, final=True)

    dropped = streamer.start()
    dropped.feed(render("what time is it", "en-us")[: CHUNK_SAMPLES + 5000])  # 5000 samples stay buffered
    after = streamer.start()
    after.feed(audio, final=True)

    assert after.text == alone.text


def test_sessions_do_not_spin_while_they_wait(streamer):
    """Spinning intra-op threads take the cores the loop's other threads need (paraformer_onnx)."""
    for session in (streamer.model.ort_encoder_infer.session, streamer.model.ort_decoder_infer.session):
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_missing_decoder_names_the_export_command(streaming_onnx_dir: Path, tmp_path: Path):
    copy = tmp_path / "streaming"
    shutil.copytree(streaming_onnx_dir, copy, ignore=shutil.ignore_patterns("decoder_quant.onnx"))

    with pytest.raises(OnnxModelMissing) as error:
        StreamingParaformerOnnx(str(copy))
    message = str(error.value)
    assert "\n" not in message and "decoder_quant.onnx" in message
    assert f"`voiceloop models export {copy} --int8`" in message
    assert not (copy / "decoder_quant.onnx").exists()  # funasr-onnx did not export behind our back


def test_an_offline_model_is_refused(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path):
    tiny: TinyModels = build_tiny(tmp_path_factory.getbasetemp() / "tiny-funasr")
    copy = tmp_path / "offline"
    shutil.copytree(tiny.paraformer, copy)
    for name in ("model_quant.onnx", "decoder_quant.onnx"):
        (copy / name).touch()
    with pytest.raises(AsrError, match="not a streaming Paraformer"):
        StreamingParaformerOnnx(str(copy))


def test_the_runtime_is_chosen_by_asr_streaming_runtime(streaming_onnx_dir: Path):
    settings = load_settings(
        "default",
        asr={"streaming": True, "streaming_model": str(streaming_onnx_dir), "streaming_runtime": "onnx-fp32"},
    )
    streamer = build_streaming(settings)
    assert isinstance(streamer, StreamingParaformerOnnx) and "fp32" in streamer.description
    with pytest.raises(Exception, match="streaming_runtime"):
        load_settings("default", asr={"streaming_runtime": "tensorrt"})


def test_an_unset_chunk_is_480_ms_on_the_onnx_runtimes_and_600_on_pytorch(streaming_onnx_dir: Path):
    """The CPU path keeps partials within 700 ms unless told otherwise; a chosen chunk stands."""
    onnx = {"streaming": True, "streaming_model": str(streaming_onnx_dir), "streaming_runtime": "onnx"}

    unset = build_streaming(load_settings("default", asr=onnx))
    chosen = build_streaming(load_settings("default", asr={**onnx, "streaming_chunk_ms": 600}))

    assert unset.model.chunk_size == [4, 8, 4] and "480 ms chunks" in unset.description
    assert chosen.model.chunk_size == [5, 10, 5]
    for runtime, chunk_ms in (("pytorch", 600), ("onnx", 480), ("onnx-fp32", 480)):
        assert streaming_chunk_ms(load_settings("default", asr={"streaming_runtime": runtime})) == chunk_ms


async def onnx_2pass_room(
    room_settings, streaming_onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory, **asr
) -> tuple[list[dict], list[dict]]:
    """Two questions through the ONNX streaming runtime and the tiny offline ONNX model: the
    turns and partials of the session log, the partials checked to be live ones (before the
    endpoint, the first while the user still spoke)."""
    from voiceloop.testing.tiny_funasr_onnx import build_and_export as build_offline

    offline = build_offline(tmp_path_factory.getbasetemp() / "tiny-funasr-onnx")
    punc = {"punc_model": str(offline.punc)} if asr.pop("punctuated", False) else {}
    turns, partials = await two_questions_on_2pass(
        room_settings,
        {
            "streaming_runtime": "onnx",
            "streaming_model": str(streaming_onnx_dir),
            "paraformer-onnx": {"model": str(offline.paraformer), "threads": 1, **punc},
            **asr,
        },
    )
    assert len(turns) == 2 and all(turn["outcome"] == "answered" and turn["transcript"] for turn in turns)
    assert len(partials) >= 2 and all(partial["t"] <= turns[0]["endpoint_at"] for partial in partials)
    assert partials[0]["t"] < turns[0]["speech_end_at"]  # the first while the user still spoke
    return turns, partials


@pytest.mark.slow
async def test_the_loop_shows_onnx_partials_before_the_endpoint(
    room_settings, streaming_onnx_dir, tmp_path_factory: pytest.TempPathFactory
):
    turns, _ = await onnx_2pass_room(room_settings, streaming_onnx_dir, tmp_path_factory, punctuated=True)

    assert set("，。？、") & set(turns[0]["transcript"])  # the offline pass's text, punctuated


@pytest.mark.slow
async def test_480_ms_partials_arrive_before_the_endpoint_in_the_virtual_room(
    room_settings, streaming_onnx_dir, tmp_path_factory: pytest.TempPathFactory
):
    _, partials = await onnx_2pass_room(
        room_settings, streaming_onnx_dir, tmp_path_factory, streaming_chunk_ms=480
    )

    # Each partial covers whole 480 ms chunks of audio.
    assert all(round(partial["audio_s"] * 1000) % 480 == 0 for partial in partials)


async def test_the_stream_starts_one_vad_chunk_before_the_onset_not_at_the_pre_roll(streamer, tmp_path: Path):
    """A chunk's text ends a look-ahead before the audio fed, so a stream that began with the
    whole 300 ms pre-roll would spend its first chunk on the silence before the onset; the
    live transcriber skips all but the last STREAMING_PREROLL_MS of it."""
    import asyncio
    import time

    import numpy as np

    from voiceloop.engine.events import SpeechStarted
    from voiceloop.engine.partials import STREAMING_PREROLL_MS, PartialTranscriber
    from voiceloop.session.log import SessionLog
    from voiceloop.vad.endpointer import EndpointConfig, Endpointer

    class Clock:
        def now(self) -> float:
            return time.monotonic()

    endpointer = Endpointer(EndpointConfig(preroll_ms=300))
    shown: list = []
    partials = PartialTranscriber(
        streamer, endpointer, Clock(), SessionLog(tmp_path, record_wav=False), shown.append, print
    )
    quiet = (np.random.default_rng(3).standard_normal(16 * 512) * 3e-3).astype(np.float32)
    speech = render("what time is it now, tell me please", "en-us")
    audio = np.concatenate([quiet, speech[: len(speech) // 512 * 512]])
    for index in range(len(audio) // 512):
        chunk = audio[index * 512 : (index + 1) * 512]
        for event in endpointer.feed(chunk, 0.0 if index < 16 else 0.9, index * 512 / 16000):
            partials.observe(event)
            if isinstance(event, SpeechStarted):
                preroll = endpointer.utterance_preroll
    for _ in range(200):  # the worker decodes off this thread
        if shown:
            break
        await asyncio.sleep(0.05)
    partials.close()

    assert preroll >= 300 * 16 and shown
    first = shown[0]
    start = 16 * 512 - STREAMING_PREROLL_MS * 16
    samples = round(first.audio_s * 16000)
    expected = streamer.start()
    expected.feed(audio[start : start + samples])
    assert first.text == expected.text
    whole = streamer.start()  # what the stream would read had it begun with the whole pre-roll
    whole.feed(audio[16 * 512 - preroll : 16 * 512 - preroll + samples])
    assert whole.text != expected.text


async def test_a_pause_segment_being_decoded_offline_does_not_hold_back_the_next_partial(
    streamer, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
):
    """The offline pass decodes each pause's segment (its length x the RTF plus ~115 ms on the
    real model); on the streaming worker that held the next partial back by as much. Here the
    segment's decode is held open until the partial after the pause has been shown."""
    import asyncio
    import threading
    import time

    import numpy as np

    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
    from voiceloop.asr.segments import PrefixDecodingRecognizer
    from voiceloop.engine.events import SpeechPaused
    from voiceloop.engine.partials import PartialTranscriber
    from voiceloop.session.log import SessionLog
    from voiceloop.testing.tiny_funasr_onnx import build_and_export as build_offline
    from voiceloop.vad.endpointer import EndpointConfig, Endpointer

    class Clock:
        def now(self) -> float:
            return time.monotonic()

    offline = ParaformerOnnxRecognizer(
        str(build_offline(tmp_path_factory.getbasetemp() / "tiny-funasr-onnx").paraformer), threads=1
    )
    segment_may_finish, segment_started = threading.Event(), threading.Event()
    decode = offline.recognize_raw

    def held_decode(audio, hotwords=None):
        segment_started.set()
        segment_may_finish.wait(timeout=30)
        return decode(audio, hotwords)

    offline.recognize_raw = held_decode  # type: ignore[method-assign]
    endpointer = Endpointer(EndpointConfig(preroll_ms=300, stop_ms=2000, speculate_ms=100))
    shown: list = []
    partials = PartialTranscriber(
        streamer,
        endpointer,
        Clock(),
        SessionLog(tmp_path, record_wav=False),
        shown.append,
        print,
        primer=PrefixDecodingRecognizer(offline),
    )
    speech = render("set a timer for", "en-us")
    rest = render("five minutes from now please", "en-us")
    chunk = 512
    quiet = np.zeros(chunk * 16, np.float32)
    gap = np.zeros(chunk * 12, np.float32)  # ~380 ms: a pause, not the endpoint
    audio = np.concatenate([quiet, speech, gap, rest, quiet])
    voiced = np.concatenate([quiet, np.ones(len(speech)), gap, np.ones(len(rest)), quiet])
    # The stream begins STREAMING_PREROLL_MS before the onset: a partial whose audio reaches
    # past this many seconds has heard the words after the pause.
    after_pause_s = (len(speech) + len(gap)) / 16000 + 0.1
    paused = False
    for index in range(len(audio) // chunk):
        piece = audio[index * chunk : (index + 1) * chunk]
        probability = 0.9 if voiced[index * chunk : (index + 1) * chunk].mean() > 0.5 else 0.0
        for event in endpointer.feed(piece, probability, index * chunk / 16000):
            partials.observe(event)
            paused = paused or isinstance(event, SpeechPaused)
        await asyncio.sleep(0)  # let the workers' results reach the loop
    for _ in range(200):
        if any(partial.audio_s > after_pause_s for partial in shown):
            break
        await asyncio.sleep(0.05)
    heard_after_pause = [partial.audio_s for partial in shown if partial.audio_s > after_pause_s]
    segment_was_held = segment_started.is_set() and not segment_may_finish.is_set()
    segment_may_finish.set()
    partials.close()

    assert paused and segment_was_held
    assert heard_after_pause  # partials went on after the pause, its segment still undecoded
