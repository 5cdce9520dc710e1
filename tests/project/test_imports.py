"""The import graph of aulib: every module imports, no cycles, no arrow that
runs back down-to-up against the layer order of docs/architecture.md, and no
module hides an aulib dependency inside a function.

The graph reads every way a module can load another: ``import`` and
``from ... import``, ``importlib.import_module`` / ``__import__`` calls, and
lazy name tables (a module-level ``__getattr__`` loading the modules a table
names). A call whose module name is computed cannot be read and fails."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import aulib

ROOT = Path(aulib.__file__).parent
DOCS = ROOT.parent / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
LOADERS = ("import_module", "__import__")


def _relative(package: str, name: str) -> str:
    """``name`` (``.x``, ``..x.y``, ``.``) against ``package``."""
    level = len(name) - len(name.lstrip("."))
    if not level:
        return name
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join(base + ([name[level:]] if name[level:] else []))


def loads(mod: str, source: str, is_package: bool, modules=None) -> list[tuple[str, bool]]:
    """(loaded module, at module level?) for every way ``source`` (module ``mod``)
    loads a module: import statements, ``import_module`` / ``__import__`` calls with
    a literal name, and the modules a lazy name table names (strings of a module
    with a module-level ``__getattr__`` that name a module of ``modules``). A call
    with a computed name gives ``("<computed>", at module level?)``."""
    modules = MODULES if modules is None else modules
    package = mod if is_package else mod.rpartition(".")[0]
    tree = ast.parse(source)
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
              for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        top = id(node) not in nested
        if isinstance(node, ast.Import):
            out += [(a.name, top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _relative(package, "." * node.level + (node.module or ""))
            out += [(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base, top) for a in node.names]
        elif isinstance(node, ast.Call):
            f = node.func
            if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) not in LOADERS:
                continue
            arg = node.args[0] if node.args else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                out.append(("<computed>", top))
                continue
            anchor = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords
                                                                   if k.arg == "package"), None)
            where = {"__name__": mod, "__package__": package}.get(getattr(anchor, "id", None), package)
            if isinstance(anchor, ast.Constant):
                where = anchor.value
            out.append((_relative(where, arg.value), top))
    lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    if lazy:
        names = {c.value for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)) for c in ast.walk(n)
                 if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        out += [(m, True) for v in sorted(names) for m in (f"{package}.{v}", v) if m in modules]
    return [(t, top) for t, top in out if t == "<computed>" or t.split(".")[0] == "aulib"]


def imports_of(mod: str) -> list[tuple[str, bool]]:
    """(aulib module loaded, at module level?) for every way ``mod`` loads one."""
    path = MODULES[mod]
    return loads(mod, path.read_text(encoding="utf-8"), path.name == "__init__.py")


def graph() -> dict[str, set[str]]:
    """Module -> aulib modules it loads: the target and its parent packages,
    except the module's own packages (already being imported)."""
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
    hidden = [f"{mod} loads {target} inside a function" for mod in MODULES
              for target, top in imports_of(mod) if not top and target != "<computed>"]
    assert not hidden, "\n".join(hidden)


def test_no_module_loads_a_computed_name_or_keeps_a_lazy_name_table():
    """A name built at run time, or a module-level ``__getattr__``, hides an arrow from readers of the code."""
    computed = [mod for mod in MODULES if ("<computed>", True) in imports_of(mod)
                or ("<computed>", False) in imports_of(mod)]
    lazy = [mod for mod, p in MODULES.items() if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
                                                     for n in ast.parse(p.read_text(encoding="utf-8")).body)]
    assert not computed and not lazy, f"computed imports: {computed}; lazy name tables: {lazy}"


def test_the_reader_sees_every_way_to_load_a_module():
    """The ways the house hid its circle before (issue 34): an ``import_module`` inside a method and a lazy
    table in a package's ``__init__``; each is an arrow of the graph."""
    modules = {"aulib.p", "aulib.p.config", "aulib.p.losses", "aulib.p.loop"}
    config = ("import importlib\nclass C:\n    def resolved(self):\n"
              "        return importlib.import_module('aulib.p.losses').TERMS\n")
    assert loads("aulib.p.config", config, False, modules) == [("aulib.p.losses", False)]
    init = ("import importlib\n_LAZY = {'train': 'loop'}\n"
            "def __getattr__(name):\n    return getattr(importlib.import_module(f'.{_LAZY[name]}', __name__), name)\n")
    assert loads("aulib.p", init, True, modules) == [("<computed>", False), ("aulib.p.loop", True)]
    calls = "from importlib import import_module\nimport_module('.losses', __package__)\n__import__('aulib.p.loop')\n"
    assert loads("aulib.p.config", calls, False, modules) == [("aulib.p.losses", True), ("aulib.p.loop", True)]
    assert find_cycle({"aulib.p.config": {"aulib.p.losses"}, "aulib.p.losses": {"aulib.p.config"}})


def layer_order() -> tuple[list[list[str]], dict[tuple[str, str], str]]:
    """The layers of docs/architecture.md's "Layers" section, bottom first (each a list of
    ``aulib.<name>`` prefixes), and its named exceptions {(from, to): why}."""
    text = DOCS.read_text(encoding="utf-8").split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    layers = [[f"aulib.{n}" for n in re.findall(r"`([\w.]+)`", line.split(":", 1)[0])]
              for line in re.findall(r"^\d+\. (.*)$", text, re.M)]
    exceptions = {(f"aulib.{a}", f"aulib.{b}"): why.strip() for a, b, why in
                  re.findall(r"^- `([\w.]+)` -> `([\w.]+)`: (.+)$", text, re.M)}
    return layers, exceptions


def layer_of(mod: str, layers: list[list[str]]) -> int | None:
    hits = [(len(p), i) for i, layer in enumerate(layers) for p in layer if mod == p or mod.startswith(p + ".")]
    return max(hits)[1] if hits else None


def test_every_arrow_runs_down_the_documented_layers():
    """docs/architecture.md names the layers bottom to top; a module loads only its own layer or lower ones,
    but for at most two named exceptions, each with why."""
    layers, exceptions = layer_order()
    assert len(layers) >= 8 and len(exceptions) <= 2 and all(exceptions.values()), (layers, exceptions)
    unplaced = sorted(m for m in MODULES if m != "aulib" and layer_of(m, layers) is None)
    assert not unplaced, f"modules in no layer of docs/architecture.md: {unplaced}"
    up = [f"{m} -> {d}" for m, deps in graph().items() if m != "aulib" for d in sorted(deps)
          if layer_of(d, layers) > layer_of(m, layers) and not any(
              (m == a or m.startswith(a + ".")) and (d == b or d.startswith(b + ".")) for a, b in exceptions)]
    assert not up, "arrows that run back up the layers:\n" + "\n".join(up)
    for a, b in exceptions:      # a named exception that no longer exists is taken out of the docs
        assert any((m == a or m.startswith(a + ".")) and any(d == b or d.startswith(b + ".") for d in deps)
                   for m, deps in graph().items()), f"exception {a} -> {b} names no arrow"


def test_the_model_lies_below_inference():
    """Inference and prediction load trained models through aulib.model, never through the training loop."""
    bad = [f"{m} -> {d}" for m, deps in graph().items() if m.startswith(("aulib.infer", "aulib.predict", "aulib.model"))
           for d in deps if d.startswith("aulib.train")]
    assert not bad, bad


def test_the_pipeline_runs_notebooks_and_imports_no_stage_that_makes_a_result():
    """The runner runs notebooks and nothing else: the k-fold summary is notebook 09's step, not the
    runner's code (issue "The house, round 3"); the pipeline reads profiles against the data sets' and
    the training config's facts only."""
    results = ("aulib.runs", "aulib.infer", "aulib.select", "aulib.report", "aulib.train", "aulib.noisy",
               "aulib.predict", "aulib.audit", "aulib.explore")
    bad = [f"{m} -> {d}" for m, deps in graph().items() if m.startswith("aulib.pipeline")
           for d in deps if d.startswith(results)]
    assert not bad, bad


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
    from aulib.predict.predictor import Predictor  # noqa: F401
    from aulib.train import TrainConfig  # noqa: F401
    from aulib.train.loop import train  # noqa: F401
