"""Settings sources with keys taken out: how `load_settings(replacing=...)` replaces a table."""

from __future__ import annotations

from typing import Any


class Without:
    """A settings source with some keys taken out (pydantic-settings merges sources key by
    key, so an override of `{}` could never empty a table the profile fills)."""

    def __init__(self, source: Any, paths: list[tuple[str, ...]]) -> None:
        self.source, self.paths = source, paths
        self.__name__ = type(source).__name__

    def __call__(self) -> dict[str, Any]:
        data = self.source()
        for path in self.paths:
            parent = data
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
        return data


def leaf_paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Each key path of `values`, down to its sections' keys (a dict value there is one leaf)."""
    paths: list[tuple[str, ...]] = []
    for key, value in values.items():
        if isinstance(value, dict) and not prefix:
            paths += leaf_paths(value, (key,))
        else:
            paths.append((*prefix, key))
    return paths
