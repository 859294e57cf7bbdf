"""Config errors as one line per key: what pydantic reports, said the way a user reads it."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(ValueError):
    """A config file or value is wrong; str() is one line per problem, naming the key."""


# Keys whose values are never echoed back in an error, even a wrong one.
SECRET_KEYS = frozenset({"token", "api_key"})


def format_validation_error(exc: ValidationError, path: Path | None, prefix: str = "") -> str:
    where = f"{path}: " if path else ""
    lines = []
    for error in exc.errors():
        if error["type"] == "config_lines":  # a stage section's own lines, keys already named
            lines += [f"{where}{line}" for line in error["ctx"]["lines"]]
            continue
        key = prefix + ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}unknown config key '{key}'")
        else:
            given = error.get("input")
            secret = any(part in SECRET_KEYS for part in error["loc"])
            shown = "" if secret or isinstance(given, (dict, list)) or given is None else f" (got {given!r})"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{where}bad value for '{key}': {message}{shown}")
    return "\n".join(lines)
