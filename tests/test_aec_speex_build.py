"""speexdsp built at -O3 by voiceloop: the same canceller as the system's, or no build at all.

The build is only worth having if it changes nothing but the time: each test here either
holds its output to the system library's sample for sample, or checks that a build that cannot
be had (a wrong tarball, no compiler, a broken file) says so and leaves the system's in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voiceloop.aec import speex, speex_build
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.virtual import EchoPath, room_impulse_response
from voiceloop.tts.espeak import render

pytestmark = pytest.mark.skipif(not ctypes.util.find_library("speexdsp"), reason="no system libspeexdsp")

CACHED_SOURCE = speex_build.cache_dir() / speex_build.TARBALL
REPLY = (
    "The weather today is sunny with a light breeze from the west.",
    "Tomorrow it will rain in the afternoon, so take an umbrella.",
)
USER_AT_S = 4


@pytest.fixture
def fresh_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """load_library() as in a new process, with a cache of our own."""
    monkeypatch.setattr(speex, "_library", None)
    monkeypatch.setattr(speex, "library_name", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(speex.LIBRARY_ENV, raising=False)


def echo_and_user() -> tuple[np.ndarray, np.ndarray]:
    """(mic, reference), whole frames: a reply through a room, then the user talking over it."""
    reply = np.concatenate([render(line, "en-us") for line in REPLY])
    user = render("Stop, set a timer instead.", "en-us+f3")
    frames = reply.size // FRAME_SAMPLES
    speaker = reply[: frames * FRAME_SAMPLES]
    path = EchoPath(30.0, 0.0, room_impulse_response(0.3, np.random.default_rng(7)), False)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    mic = echo + 10 ** (-55 / 20) * np.random.default_rng(8).standard_normal(echo.size).astype(np.float32)
    mic[USER_AT_S * SAMPLE_RATE :][: user.size] += user[: mic.size - USER_AT_S * SAMPLE_RATE]
    reference = np.concatenate([np.zeros(320, np.float32), speaker])[: speaker.size]
    return mic.astype(np.float32), reference


def cancelled_with(library: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setattr(speex, "_library", library)
    canceller = speex.SpeexCanceller()
    mic, reference = echo_and_user()
    pairs = zip(mic.reshape(-1, FRAME_SAMPLES), reference.reshape(-1, FRAME_SAMPLES), strict=True)
    return np.concatenate([canceller.process(m, r) for m, r in pairs])


@pytest.mark.slow
@pytest.mark.skipif(
    not CACHED_SOURCE.is_file(), reason=f"speexdsp's source is not cached ({CACHED_SOURCE}): scripts/setup.sh"
)
def test_the_o3_build_cancels_sample_for_sample_as_the_system_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = speex_build.build(tarball=CACHED_SOURCE, target=tmp_path / "libspeexdsp.so")
    system = ctypes.CDLL(ctypes.util.find_library("speexdsp"))
    speex._declare(system)
    ours = ctypes.CDLL(str(built))
    speex._declare(ours)

    by_system = cancelled_with(system, monkeypatch)
    by_ours = cancelled_with(ours, monkeypatch)

    mic, _ = echo_and_user()
    echo_only = slice(2 * SAMPLE_RATE, USER_AT_S * SAMPLE_RATE)  # converged, before the user
    late = slice(echo_only.start + FRAME_SAMPLES, echo_only.stop + FRAME_SAMPLES)  # one frame late
    erle_db = 10 * np.log10(np.mean(mic[echo_only] ** 2) / np.mean(by_ours[late] ** 2))
    assert erle_db > 15  # it cancels: the two agree on real work, not on silence
    np.testing.assert_array_equal(by_ours, by_system)


def test_a_tarball_that_is_not_the_release_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    impostor = tmp_path / speex_build.TARBALL
    impostor.write_bytes(b"not speexdsp")
    target = tmp_path / "libspeexdsp.so"

    with pytest.raises(speex_build.SpeexBuildError, match="sha256"):
        speex_build.build(tarball=impostor, target=target)

    assert not target.exists()


def test_without_a_compiler_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))

    with pytest.raises(speex_build.SpeexBuildError) as error:
        speex_build.build(tarball=tmp_path / "unused.tar.gz", target=tmp_path / "libspeexdsp.so")

    assert "apt-get install gcc" in str(error.value) and "system libspeexdsp is used" in str(error.value)


def test_a_build_that_does_not_load_leaves_the_system_library_in_use(
    fresh_library: None, caplog: pytest.LogCaptureFixture
) -> None:
    broken = speex_build.library_path()
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x7fELF truncated")

    with caplog.at_level(logging.WARNING, logger="voiceloop.aec.speex"):
        speex.load_library()

    assert speex.library_name == (ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1")
    assert str(broken) in caplog.text and "using the system libspeexdsp" in caplog.text
    silence = np.zeros(FRAME_SAMPLES, np.float32)
    assert speex.SpeexCanceller().process(silence, silence).shape == (FRAME_SAMPLES,)


def test_doctor_names_the_library_the_canceller_actually_loads(fresh_library: None) -> None:
    from voiceloop.cli.doctor import _speex_build_check

    system = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    label, ok, detail = _speex_build_check()
    assert ok is None and detail.startswith(system) and "not built" in detail

    broken = speex_build.library_path()  # built, but not a library: the loader passes it over
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x7fELF truncated")
    speex._library = None
    label, ok, detail = _speex_build_check()
    assert ok is None and detail.startswith(system)
    assert str(broken) in detail and "does not load" in detail and "--force" in detail


def test_the_environment_can_skip_the_build_or_name_a_library(
    fresh_library: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(speex.LIBRARY_ENV, "system")
    speex.load_library()
    assert speex.library_name == (ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1")

    monkeypatch.setattr(speex, "_library", None)
    monkeypatch.setenv(speex.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(speex.SpeexError, match=r"VOICELOOP_SPEEXDSP=.*missing\.so does not load"):
        speex.load_library()


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local HTTP server answering GET /NAME with files[NAME] (404 otherwise)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()


def test_the_download_tries_each_source_and_keeps_only_the_checked_release(
    fresh_library: None, server: tuple[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, files = server
    files["wrong.tar.gz"] = b"a mirror serving something else"
    files["huge.tar.gz"] = b"\0" * (speex_build.MAX_TARBALL_BYTES + 1)

    with pytest.raises(speex_build.SpeexBuildError) as error:
        speex_build.fetch_source((f"{base}/gone.tar.gz", f"{base}/wrong.tar.gz", f"{base}/huge.tar.gz"))

    message = str(error.value)
    assert "gone.tar.gz: HTTP Error 404" in message
    assert "wrong.tar.gz" in message and "sha256" in message
    assert "huge.tar.gz" in message and "more than" in message
    assert not any(speex_build.cache_dir().glob("*"))  # nothing half-written is kept

    if not CACHED_SOURCE.is_file():
        pytest.skip(f"speexdsp's source is not cached ({CACHED_SOURCE}): scripts/setup.sh")
    files["release.tar.gz"] = CACHED_SOURCE.read_bytes()
    (speex_build.cache_dir() / speex_build.TARBALL).write_bytes(b"a truncated earlier download")
    fetched = speex_build.fetch_source((f"{base}/gone.tar.gz", f"{base}/release.tar.gz"))
    assert (
        fetched == speex_build.cache_dir() / speex_build.TARBALL
        and fetched.read_bytes() == files["release.tar.gz"]
    )
