"""Settings as TOML text that `tomllib` reads back: what `voiceloop config show` prints, so its
output can be saved as a profile or piped into another tool."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Scalars and arrays first, then one `[table]` per nested dict. TOML has no None: an unset
    key is shown as a comment, so the reader still sees that it exists (and that its value is
    decided elsewhere, e.g. `asr.streaming_chunk_ms` by the runtime) and the text reads back."""
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is None:
            scalars.append(f"# {toml_key(key)}: unset")
        else:
            scalars.append(f"{toml_key(key)} = {toml_value(value)}")
    out = []
    if prefix and (scalars or not tables):  # an empty table is still shown, e.g. `[llm.backends]`
        out.append(f"[{prefix}]")
    if scalars or (prefix and not tables):
        out.extend(scalars)
        out.append("")
    for key, value in tables:
        out.append(to_toml(value, f"{prefix}.{toml_key(key)}" if prefix else toml_key(key)))
    return "\n".join(out)


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float | str):
        # A JSON string or number is a TOML one (TOML reads JSON's \uXXXX escapes too).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")
