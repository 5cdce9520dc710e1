"""The import graph of aulib: every module imports, no cycles, and no module
hides an aulib dependency inside a function."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import aulib

ROOT = Path(aulib.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(mod: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_package else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(mod: str) -> list[tuple[str, bool]]:
    """(imported aulib module, at module level?) for every import statement of ``mod``."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, path.name == "__init__.py", node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out += [(t, id(node) in top) for t in targets if t.split(".")[0] == "aulib"]
    return out


def graph() -> dict[str, set[str]]:
    """Module -> aulib modules its import statements run: the target and its
    parent packages, except the module's own packages (already being imported)."""
    g = {}
    for mod in MODULES:
        own = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 2)}
        deps = set()
        for target, _ in imports_of(mod):
            parts = target.split(".")
            deps |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & set(MODULES)
        g[mod] = deps - own
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_aulib_imports_are_at_module_level():
    hidden = [f"{mod} imports {target} inside a function" for mod in MODULES
              for target, top in imports_of(mod) if not top]
    assert not hidden, "\n".join(hidden)


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports(mod):
    importlib.import_module(mod)


def test_every_module_at_the_package_top_defines_something():
    """``ls aulib`` shows the stage packages and modules that hold code: no alias of an
    old import path (a module whose only content is a re-export) stands at the top."""
    def defines(node) -> bool:          # a def, a class, or a name bound at module level
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        return any(isinstance(t, ast.Name) for t in targets)

    top = sorted(p for p in ROOT.glob("*.py") if p.name != "__init__.py")
    empty = [p.name for p in top if not any(defines(n) for n in ast.parse(p.read_text()).body)]
    assert not empty, f"modules at the top of aulib/ that define nothing: {empty}"
    for gone in ("config", "choose", "ensemble", "multicrop", "predict_io"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"aulib.{gone}")


#: aulib.data by concern: each module family may import (besides aulib's shared bottom modules)
#: only the data modules listed; a module that mixes two concerns shows up as a forbidden import.
DATA_CONCERNS = {
    "aulib.data.images": (),                                            # safe decoding
    "aulib.data.faces": ("aulib.data.images", "aulib.data.faces"),      # detect, cache, align
    "aulib.data.labels": (),                                            # the label-table contract
    "aulib.data.sources": ("aulib.data.labels", "aulib.data.images", "aulib.data.sources"),   # data sets
    "aulib.data.packed": (),
    "aulib.data.crops": ("aulib.data.images", "aulib.data.faces", "aulib.data.packed"),
}


def test_data_modules_keep_to_one_concern():
    """Readers never touch faces or crops, faces never read labels, decoding stands alone;
    only the face detector imports facenet-pytorch."""
    bad = []
    for mod in MODULES:
        family = next((f for f in DATA_CONCERNS if mod == f or mod.startswith(f + ".")), None)
        if family is None:
            continue
        for target, _ in imports_of(mod):
            if target.startswith("aulib.data.") and not any(
                    target == a or target.startswith(a + ".") for a in (family, *DATA_CONCERNS[family])):
                bad.append(f"{mod} imports {target}")
    assert not bad, bad
    facenet = [m for m, p in MODULES.items() if "facenet_pytorch" in p.read_text()]
    assert facenet == ["aulib.data.faces.detect"], facenet
    for old in ("faces", "synth", "synth_face", "synth_labels"):
        assert not (ROOT / "data" / f"{old}.py").exists(), f"aulib/data/{old}.py is back"
    from aulib.data import labels    # the label-table contract, no data set's reader or writer
    assert not [n for n in vars(labels) if n.startswith(("read_emotionet", "read_generic", "write_emotionet",
                                                          "write_generic"))]


def test_public_entry_points():
    from aulib.infer import load_model  # noqa: F401
    from aulib.predict import Predictor  # noqa: F401
    from aulib.train import TrainConfig, train  # noqa: F401
