"""A stage's section: its choice, its shared keys, and one options table per adapter."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from voiceloop.adapter_options import AdapterOptions
from voiceloop.config.errors import format_validation_error


class StageSection(BaseModel):
    """A stage's section (`[asr]`, `[tts]`, `[aec]`): the adapter chosen, the keys every adapter
    of the stage shares, and one table per adapter (`[asr.paraformer]`) validated by that
    adapter's own options model (`voiceloop.registry`). A third-party adapter's table is
    validated by its spec's model when the profile names it.

    Keys that moved into an adapter's table (`moved`) or left (`gone`) are refused with the
    line saying where they went, not merely "unknown".
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    kind: ClassVar[str]
    moved: ClassVar[dict[str, tuple[str, ...]]] = {}
    gone: ClassVar[dict[str, str]] = {}

    @classmethod
    def check_value(cls, key: str, value: Any) -> str | None:
        """A problem with a shared key's value that only its stage knows; None = fine."""
        return None

    @model_validator(mode="before")
    @classmethod
    def _tables_and_moved_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lines: list[str] = []
        checked = dict(data)
        for key, value in data.items():
            where = f"{cls.kind}.{key}"
            if key in cls.model_fields:
                if problem := cls.check_value(key, value):
                    lines.append(problem)
            elif key in cls.moved:
                lines.append(f"unknown config key '{where}': it moved to {cls._moved_to(key, data)}")
            elif key in cls.gone:
                lines.append(f"unknown config key '{where}': {cls.gone[key]}")
            elif (options := _plugin_options(cls.kind, key)) is None:
                lines.append(f"unknown config key '{where}'")
            else:
                try:
                    checked[key] = options.model_validate(value)
                except ValidationError as exc:
                    lines += format_validation_error(exc, None, prefix=f"{where}.").splitlines()
        if lines:
            raise PydanticCustomError("config_lines", "{text}", {"text": "; ".join(lines), "lines": lines})
        return checked

    @classmethod
    def _moved_to(cls, key: str, data: dict[str, Any]) -> str:
        targets = cls.moved[key]
        chosen = [
            t for t in targets if t.split(".", 1)[0] == data.get("name", cls.model_fields["name"].default)
        ]
        return " or ".join(f"'{cls.kind}.{t}'" for t in (chosen or targets))

    def options_for(self, name: str) -> AdapterOptions:
        """Adapter `name`'s options: its table as configured, else its model's defaults."""
        if name in type(self).model_fields and isinstance(value := getattr(self, name), AdapterOptions):
            return value
        extra = (self.model_extra or {}).get(name)
        if isinstance(extra, AdapterOptions):
            return extra
        from voiceloop.registry import spec

        return spec(self.kind, name).options()  # type: ignore[arg-type]


def _plugin_options(kind: str, name: str) -> type[AdapterOptions] | None:
    """The options model of a third-party adapter `name`, or None if there is no such adapter."""
    from voiceloop.registry import BUILTIN, AdapterNotFound, spec

    if name in BUILTIN[kind]:  # type: ignore[index]
        return BUILTIN[kind][name].options  # type: ignore[index]  # one without a table of its own
    try:
        return spec(kind, name).options  # type: ignore[arg-type]
    except AdapterNotFound:
        return None
