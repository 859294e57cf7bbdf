"""What a command adds to an error that stops it from starting: the way forward a newcomer
needs, such as the offline profile when the default one's models are not here."""

from __future__ import annotations

OFFLINE_HINT = (
    "To try voiceloop now without downloading anything: -c offline "
    "(English, with the embedded recogniser and voice)."
)


def startup_error(exc: BaseException) -> str:
    """The whole message on one line (a download command in it must stay whole), plus a hint."""
    from voiceloop.asr.models import ModelNotAvailable

    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ModelNotAvailable):
        return f"{message.rstrip('.')}. {OFFLINE_HINT}"
    return message
