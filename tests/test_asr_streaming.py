"""`asr.streaming`: live partial text from FunASR's streaming Paraformer while the user speaks,
and the offline recogniser's final text at the endpoint ("2pass"), on tiny random-init models
built with FunASR's own classes (voiceloop/testing/tiny_funasr_streaming.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import check_chunk_by_chunk, script, two_questions_on_2pass
from voiceloop.asr.base import AsrError, StreamingRecognizer
from voiceloop.asr.paraformer_streaming import StreamingParaformer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.tiny_funasr import TinyModels
from voiceloop.testing.tiny_funasr import build_once as build_tiny
from voiceloop.testing.tiny_funasr_streaming import build_once
from voiceloop.tts.espeak import render


@pytest.fixture(scope="session")
def streaming_dir(tmp_path_factory: pytest.TempPathFactory):
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr-streaming")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_tiny(tmp_path_factory.getbasetemp() / "tiny-funasr")


def test_a_stream_gives_text_chunk_by_chunk_and_its_cache_carries_over(streaming_dir):
    streamer = StreamingParaformer(str(streaming_dir))
    audio = render("what time is it now, tell me please", "en-us")
    assert isinstance(streamer, StreamingRecognizer)
    check_chunk_by_chunk(streamer, audio)


def test_480_ms_chunks_make_a_partial_wait_for_480_ms_of_audio(streaming_dir):
    """`asr.streaming_chunk_ms = 480`: FunASR's other published setting, [0, 8, 4]."""
    streamer = StreamingParaformer(str(streaming_dir), chunk_ms=480)
    audio = render("what time is it now, tell me please", "en-us")
    assert (streamer.chunk_samples, streamer.lookahead_samples) == (7680, 3840)
    stream = streamer.start()
    stream.feed(audio[:7679])
    assert stream.decoded_s == 0.0 and not stream.text  # one sample short of a chunk
    stream.feed(audio[7679:7680])
    assert stream.decoded_s == pytest.approx(0.48)
    check_chunk_by_chunk(streamer, audio)


def test_a_chunk_length_the_model_was_not_trained_on_is_refused(streaming_dir):
    with pytest.raises(AsrError, match=r"asr.streaming_chunk_ms = 500: .* 600 or 480"):
        StreamingParaformer(str(streaming_dir), chunk_ms=500)


def test_a_model_that_is_not_a_streaming_one_is_refused(tiny: TinyModels):
    with pytest.raises(AsrError, match="not a streaming Paraformer"):
        StreamingParaformer(str(tiny.seaco))


@pytest.mark.slow
async def test_partials_arrive_while_the_user_speaks_and_the_final_text_is_the_offline_passes(
    room_settings, tiny: TinyModels, streaming_dir
):
    room_settings.asr.name = "paraformer"
    room_settings.asr.paraformer.model = str(tiny.seaco)
    room_settings.asr.paraformer.ncpu = 1
    room_settings.asr.streaming = True
    room_settings.asr.streaming_model = str(streaming_dir)
    room_settings.loop.greeting = ""
    user = script(
        {"say": "what time is it in the city of London right now", "pause_ms": 300},
        {"say": "tell me a joke about a cat and a dog and a mouse"},
    )

    result = await run_demo(room_settings, user, say=lambda _: None)

    lines = read_session(result.session_dir / "session.jsonl")
    turns = [line for line in lines if line["event"] == "turn"]
    assert len(turns) == 2 and all(turn["outcome"] == "answered" for turn in turns)
    first = turns[0]
    partials = [line for line in lines if line["event"] == "partial_transcript" and line["utterance"] == 1]
    # Several partials, each extending the last, all shown before the endpoint...
    assert len(partials) >= 2
    assert all(
        later["text"].startswith(earlier["text"])
        for earlier, later in zip(partials, partials[1:], strict=False)
    )
    assert all(partial["t"] <= first["endpoint_at"] for partial in partials)
    assert partials[0]["t"] < first["speech_end_at"]  # ...the first while the user still spoke
    # ...and the turn's text is the offline recogniser's, decoded after the endpoint.
    assert first["transcript"] and first["transcript"] != partials[-1]["text"]
    assert first["asr_elapsed_s"] > 0


# -- 2pass: the offline model decodes at pauses -------------------------------------------------


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("funasr_onnx", reason="funasr-onnx is not installed (scripts/setup.sh --test)")
    from voiceloop.testing.tiny_funasr_onnx import build_and_export

    return build_and_export(tmp_path_factory.getbasetemp() / "tiny-funasr-onnx")


def test_segments_decoded_at_pauses_leave_only_the_rest_for_the_endpoint(onnx_models):
    from voiceloop.asr.paraformer import join_units
    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
    from voiceloop.asr.segments import PrefixDecodingRecognizer

    inner = ParaformerOnnxRecognizer(str(onnx_models.seaco), punc_model=str(onnx_models.punc), threads=1)
    recognizer = PrefixDecodingRecognizer(inner)
    first, second = render("what time is it in London", "en-us"), render("and in Paris", "en-us")
    pause = np.zeros(int(0.4 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([first, pause, second, pause])
    cut = len(first) + int(0.05 * SAMPLE_RATE)

    assert recognizer.reserve(audio[: int(0.5 * SAMPLE_RATE)]) is None  # too short to be worth it
    segment = recognizer.reserve(audio[:cut])
    assert segment is not None
    recognizer.decode(segment, audio[:cut])  # the partials worker's job
    result = recognizer.transcribe(audio)

    head, tail = inner.recognize_raw(audio[:cut]), inner.recognize_raw(audio[cut:])
    assert result.text == inner.punctuate(join_units([head.text, tail.text]))
    assert result.text != inner.punctuate(head.text)  # the rest was decoded too
    ends = [end for _, _, end in result.timestamps]
    assert ends == sorted(ends) and ends[-1] > cut / SAMPLE_RATE  # the tail's times come after the cut
    # Audio that does not begin with the reserved segment is decoded whole.
    other = np.concatenate([second, pause, first])
    assert recognizer.transcribe(other).text == inner.transcribe(other).text


def test_a_tail_shorter_than_the_stop_window_is_silence_and_not_decoded(onnx_models):
    """The endpointer ends an utterance only after its stop window of silence: less than that
    after the last segment means the user did not speak again."""
    from voiceloop.asr.paraformer import join_units
    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
    from voiceloop.asr.segments import PrefixDecodingRecognizer

    inner = ParaformerOnnxRecognizer(str(onnx_models.seaco), punc_model=str(onnx_models.punc), threads=1)
    first, second = render("what time is it in London", "en-us"), render("and in Paris", "en-us")
    quiet = (np.random.default_rng(1).standard_normal(int(0.15 * SAMPLE_RATE)) * 1e-3).astype(np.float32)
    ended = np.concatenate([first, quiet])  # 150 ms after the cut: inside a 200 ms window
    cut = len(first) + int(0.05 * SAMPLE_RATE)
    recognizer = PrefixDecodingRecognizer(inner, silent_tail_s=0.2)
    segment = recognizer.reserve(ended[:cut])
    assert segment is not None
    recognizer.decode(segment, ended[:cut])

    result = recognizer.transcribe(ended)

    head = inner.recognize_raw(ended[:cut])
    assert result.text == inner.punctuate(head.text)
    assert result.timestamps[-1][2] <= cut / SAMPLE_RATE + 0.01  # nothing after the cut
    # Speech after the pause makes the tail longer than the window: it is decoded.
    resumed = np.concatenate([first, quiet, second, quiet])
    tail = inner.recognize_raw(resumed[cut:])
    assert recognizer.transcribe(resumed).text == inner.punctuate(join_units([head.text, tail.text]))


@pytest.mark.slow
async def test_the_loop_runs_2pass_on_paraformer_onnx_in_the_virtual_room(
    room_settings, onnx_models, streaming_dir
):
    turns, partials = await two_questions_on_2pass(
        room_settings,
        {
            "streaming_model": str(streaming_dir),
            "paraformer-onnx": {
                "model": str(onnx_models.paraformer),
                "punc_model": str(onnx_models.punc),
                "threads": 1,
            },
        },
    )

    assert len(turns) == 2 and all(turn["outcome"] == "answered" and turn["transcript"] for turn in turns)
    assert partials and all(partial["t"] <= turns[0]["endpoint_at"] for partial in partials)
    assert set("，。？、") & set(turns[0]["transcript"])  # the offline pass punctuates; partials do not


def test_a_streamed_api_request_gets_the_streaming_models_partials_then_the_offline_text(
    streaming_dir, tiny: TinyModels, tmp_path
):
    """`serve` with asr.streaming: OpenAI's stream=true deltas are real partials (one per chunk
    that grew the hypothesis), and the done text is the offline recogniser's."""
    import openai

    from voiceloop.config import load_settings
    from voiceloop.testing.clips import encoded
    from voiceloop.testing.serve import running_server

    settings = load_settings("offline")
    settings.log.dir = tmp_path
    settings.asr.name = "paraformer"
    settings.asr.paraformer.model = str(tiny.seaco)
    settings.asr.paraformer.device = "cpu"
    settings.asr.paraformer.ncpu = 1
    settings.asr.streaming = True
    settings.asr.streaming_model = str(streaming_dir)
    audio = render("what time is it now, tell me please", "en-us")
    with running_server(settings) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        offline = client.audio.transcriptions.create(model="paraformer", file=("q.wav", encoded(audio))).text
        events = list(
            client.audio.transcriptions.create(
                model="paraformer", file=("q.wav", encoded(audio)), stream=True
            )
        )
    deltas = [e.delta for e in events if type(e).__name__ == "TranscriptionTextDeltaEvent"]
    (done,) = [e for e in events if type(e).__name__ == "TranscriptionTextDoneEvent"]
    assert len(deltas) >= 2  # the hypothesis grew chunk by chunk, each growth a delta
    assert done.text == offline and offline  # not a partial: the offline pass's text
