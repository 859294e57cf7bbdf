"""One conversation's life around `Conversation.run`: the pipeline built, the recogniser warm,
the session log opened; afterwards the device released, its statistics logged, the log closed
and every adapter closed, in that order, whatever ended the conversation.

`voiceloop demo`, `voiceloop run` and the server's live sessions all go through here, so a
session started from any of them leaves the same log and releases the same things.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from voiceloop.config import Settings
from voiceloop.engine.runtime import Conversation, Observer
from voiceloop.session.log import SessionLog


@asynccontextmanager
async def conversation(
    settings: Settings,
    device: Any,
    *,
    llm: Any,
    aec: Any = None,
    asr: Any = None,
    tts: Any = None,
    observer: Observer | None = None,
) -> AsyncIterator[Conversation]:
    """Yields a ready Conversation; run it inside the block. `llm` is closed afterwards even
    when building the rest fails."""
    from voiceloop.build import build_pipeline

    pipeline = session = talk = None
    try:
        pipeline = build_pipeline(settings, device=device, aec=aec, asr=asr, llm=llm, tts=tts)
        await asyncio.to_thread(pipeline.asr.warm_up)
        if pipeline.turn is not None:
            await asyncio.to_thread(pipeline.turn.warm_up)
        session = SessionLog(settings.log.dir, record_wav=settings.log.record_wav)
        if (attach_log := getattr(device, "attach_log", None)) is not None:
            attach_log(session)  # the virtual room logs what the scripted user really said, and when
        talk = Conversation(settings, pipeline, session, observer)
        yield talk
    finally:
        with contextlib.suppress(Exception):
            await device.aclose()  # every device's aclose may be called again
        if session is not None:
            if hasattr(device, "describe") and hasattr(device, "stats"):  # a real device: its xruns
                session.write("audio_device", **device.describe(), **device.stats.as_dict())
            # A canceller that measures the speaker/mic clock drift says what it found.
            aec_fields = getattr(pipeline.aec, "session_fields", None) if pipeline is not None else None
            session.close(
                turns=len(talk.finished_turns) if talk is not None else 0,
                **(aec_fields() if aec_fields is not None else {}),
            )
        with contextlib.suppress(Exception):
            await llm.aclose()
        if pipeline is not None:
            with contextlib.suppress(Exception):
                await pipeline.tts.aclose()
            pipeline.asr.close()
            if pipeline.turn is not None:
                pipeline.turn.close()
