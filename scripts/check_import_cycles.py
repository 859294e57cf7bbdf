"""Import cycles among voiceloop's own modules, found by reading the source (nothing imported).

Every import counts, those inside functions too (a lazy import that closes a loop is still a
loop, only a slower one to notice); imports under `if TYPE_CHECKING:` do not, as they never
run. Importing `a.b.c` runs `a` and `a.b` first, so those count as imported as well.

    python scripts/check_import_cycles.py [ROOT]   # exit 1 and one line per cycle if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

_BLOCKS = (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in (root / "voiceloop").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, _BLOCKS):
                for part in ("body", "orelse", "finalbody"):
                    visit(getattr(node, part, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(node.body)
            elif isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                out.add(base)
                out.update(f"{base}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    found = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        edges: set[str] = set()
        for target in imported_names(
            ast.parse(path.read_text(encoding="utf-8")), name, path.stem == "__init__"
        ):
            parts = target.split(".")
            edges.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        parents = {".".join(name.split(".")[:i]) for i in range(2, name.count(".") + 1)}
        graph[name] = {e for e in edges | parents if e in found and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module, leaving out a package and its own
    submodules (an __init__ re-exporting its submodules is no cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            strong(v)

    def family(group: list[str]) -> bool:
        return all(
            any(a.startswith(b + ".") or b.startswith(a + ".") for b in group if b != a) for a in group
        )

    return [group for group in groups if not family(group)]


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    found = cycles(import_graph(root))
    for group in found:
        print("import cycle:", " ↔ ".join(group))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
