"""voiceloop's language codes ("zh", "en") and Qwen3-ASR's language names ("Chinese", "English").

qwen-asr takes and returns full English names and rejects anything else with a ValueError
listing all 30; voiceloop's `[asr] language` is an ISO 639 code like every other stage's. Kept
apart from the recogniser so the mapping is checked when settings are built, without
importing qwen-asr (tens of seconds).
"""

from __future__ import annotations

from voiceloop.asr.base import AsrError

# qwen_asr.inference.utils.SUPPORTED_LANGUAGES (0.0.6), keyed by ISO 639-1 (639-3 where none).
NAMES: dict[str, str] = {
    "zh": "Chinese",
    "en": "English",
    "yue": "Cantonese",
    "ar": "Arabic",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "id": "Indonesian",
    "it": "Italian",
    "ko": "Korean",
    "ru": "Russian",
    "th": "Thai",
    "vi": "Vietnamese",
    "ja": "Japanese",
    "tr": "Turkish",
    "hi": "Hindi",
    "ms": "Malay",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "fil": "Filipino",
    "fa": "Persian",
    "el": "Greek",
    "ro": "Romanian",
    "hu": "Hungarian",
    "mk": "Macedonian",
}
CODES: dict[str, str] = {name.lower(): code for code, name in NAMES.items()}
AUTO = "auto"


def hint(language: str | None) -> str | None:
    """The name qwen-asr wants for a voiceloop language ("zh", "zh-CN", "Chinese"); None (or
    "auto") lets the model detect it. An unsupported language fails here, naming the choices."""
    if language is None or not language.strip() or language.strip().lower() == AUTO:
        return None
    value = language.strip()
    code = value.lower().replace("_", "-").split("-")[0]
    if code in NAMES:
        return NAMES[code]
    if value.lower() in CODES:
        return NAMES[CODES[value.lower()]]
    raise AsrError(
        f"Qwen3-ASR does not know the language '{language}': set asr.language (or asr.qwen3.language) "
        f"to one of {', '.join(NAMES)}, or 'auto' to let it detect the language"
    )


def codes(names: str) -> str:
    """ISO codes for what qwen-asr reports: "Chinese" → "zh", "Chinese,English" (a file that
    switches) → "zh,en"; a name outside the table is kept, lower-cased, rather than lost."""
    found = [name.strip().lower() for name in names.split(",") if name.strip()]
    return ",".join(CODES.get(name, name) for name in found)
