"""Load on `/v1/audio/transcriptions`: 50 concurrent 5 s clips, three rounds, on one shared
recogniser. Every request must succeed with the right words, and memory must come back: the
process may not grow by more than MEMORY_BOUND_MB between the end of the first round and the
end of the third (each round moves ~50 x 160 KB of uploads and 50 x 320 KB of decoded audio)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
import psutil

from voiceloop.config import load_settings
from voiceloop.testing.clips import encoded, spoken_clip
from voiceloop.testing.serve import running_server

CONCURRENT = 50
ROUNDS = 3
MEMORY_BOUND_MB = 40.0
LINES = ["what time is it", "turn on the lights", "play some music", "tell me a joke", "how are you"]


async def test_fifty_concurrent_five_second_clips(tmp_path: Path) -> None:
    settings = load_settings("offline")
    settings.log.dir = tmp_path / "runs"
    clips = [encoded(spoken_clip(line, seconds=5.0, seed=i)) for i, line in enumerate(LINES)]
    process = psutil.Process()
    rss_after_round: list[float] = []
    with running_server(settings) as url:
        async with httpx.AsyncClient(
            base_url=url, timeout=120, limits=httpx.Limits(max_connections=CONCURRENT)
        ) as client:

            async def one(k: int) -> tuple[int, str, str]:
                response = await client.post(
                    "/v1/audio/transcriptions", files={"file": (f"clip{k}.wav", clips[k % len(clips)])}
                )
                return response.status_code, response.json().get("text", ""), LINES[k % len(LINES)]

            for _ in range(ROUNDS):
                results = await asyncio.gather(*(one(k) for k in range(CONCURRENT)))
                assert [status for status, _, _ in results] == [200] * CONCURRENT
                assert [text for _, text, _ in results] == [expected for _, _, expected in results]
                gc.collect()
                rss_after_round.append(process.memory_info().rss / 2**20)
            stats = (await client.get("/info")).json()["queue"]

    assert stats["completed"] >= CONCURRENT * ROUNDS and stats["failed"] == 0 and stats["rejected"] == 0
    assert rss_after_round[-1] - rss_after_round[0] < MEMORY_BOUND_MB, rss_after_round
