"""Typed, validated settings: one :class:`Spec` (type, range, one-line
meaning; the default where the key has one) per key, and :func:`check` that
refuses a value naming the key, where it was set, the value and what is allowed.

Who owns which keys: :class:`aulib.model.config.TrainConfig` (its fields'
specs, :func:`setting`) and :mod:`aulib.pipeline.params` (every notebook
parameter a profile may set). Both are checked before anything is written.
This module knows no key itself and imports nothing heavy (``--help`` uses it).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

#: Kinds of value: ``int`` (not bool), ``float`` (a number, not bool), ``bool``,
#: ``str``, ``name`` (a non-empty str that is no path: no ``/``, not ``.``/``..``),
#: ``list`` (items of kind ``item``), ``dict``.
KINDS = ("int", "float", "bool", "str", "name", "list", "dict")
_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a text",
          "name": "a plain name (no '/')", "list": "a list", "dict": "a mapping"}


class SettingError(ValueError):
    """A setting's value is refused (a ValueError, so callers that catch those still do)."""


def one_line(error: BaseException) -> str:
    """An error's message on one line (whitespace runs collapsed): how the
    command-line tools print a refused input, never a traceback."""
    return " ".join(str(error).split())


@dataclass(frozen=True)
class Spec:
    """What a key allows. ``kinds``: accepted kinds (:data:`KINDS`);
    ``choices``: literal values allowed besides them (alone when ``kinds`` is
    empty); ``lo``/``hi``: bounds of numbers (and of list items), open when
    ``lo_open``/``hi_open``; ``item``: the kind of a list's items (with the
    same bounds); ``length``: a list's exact length; ``nullable``: None allowed;
    ``help``: one line; ``default``: shown in help (:data:`NO_DEFAULT`: none)."""

    kinds: tuple = ()
    help: str = ""
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    item: str | None = None
    length: int | None = None
    nullable: bool = False
    default: object = None

    def nullable_copy(self) -> "Spec":
        """The same spec with None allowed (a notebook's None: "take TrainConfig's")."""
        return dataclasses.replace(self, nullable=True)

    def allowed(self) -> str:
        """What the spec allows, in words: ``an integer >= 1``."""
        parts = []
        for kind in self.kinds:
            word = _WORDS[kind]
            if kind == "list" and self.item:
                word = f"a list of {self.length or ''} {_WORDS[self.item].split(' ', 1)[1]}s".replace("  ", " ")
                word += self._bounds(" each")
            elif kind in ("int", "float"):
                word += self._bounds("")
            parts.append(word)
        parts += [repr(c) for c in self.choices]
        if self.nullable:
            parts.append("null")
        return " or ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " or " + parts[-1]

    def _bounds(self, prefix: str) -> str:
        lo = None if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo:g}"
        hi = None if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi:g}"
        if lo and hi:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{prefix} in {left}{self.lo:g}, {self.hi:g}{right}"
        return f"{prefix} {lo or hi}" if (lo or hi) else ""


NO_DEFAULT = object()


def _is_kind(kind: str, v) -> bool:
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "name":
        return isinstance(v, str) and v.strip() == v and v not in ("", ".", "..") and "/" not in v and "\\" not in v
    if kind == "list":
        return isinstance(v, (list, tuple))
    if kind == "dict":
        return isinstance(v, dict)
    raise ValueError(f"unknown kind {kind!r}")


def _in_range(spec: Spec, v) -> bool:
    if spec.lo is not None and (v < spec.lo or (spec.lo_open and v == spec.lo)):
        return False
    return not (spec.hi is not None and (v > spec.hi or (spec.hi_open and v == spec.hi)))


def is_valid(spec: Spec, value) -> bool:
    """Whether ``value`` is one the spec allows."""
    if value is None:
        return spec.nullable
    if any(type(value) is type(c) and value == c for c in spec.choices):
        return True
    for kind in spec.kinds:
        if not _is_kind(kind, value):
            continue
        if kind in ("int", "float"):
            return _in_range(spec, value)
        if kind == "list":
            if spec.length is not None and len(value) != spec.length:
                return False
            return spec.item is None or all(_is_kind(spec.item, x) and (spec.item not in ("int", "float")
                                                                        or _in_range(spec, x)) for x in value)
        return True
    return False


def check(spec: Spec, key: str, value, where: str) -> None:
    """SettingError naming ``where`` (file and section, or step), ``key``, the
    value and what is allowed, unless ``value`` is allowed."""
    if is_valid(spec, value):
        return
    hint = ""
    if isinstance(value, str) and any(k in spec.kinds for k in ("int", "float", "list")):
        try:
            number = float(value)
            hint = (f" (YAML reads {value} as text: write it with a dot, e.g. {number!r})"
                    if "e" in value.lower() and "float" in spec.kinds else " (a text: remove the quotes)")
        except ValueError:
            pass
    what = f" ({spec.help})" if spec.help else ""
    raise SettingError(f"{where}: {key} = {value!r} is not allowed{hint}; {key}{what} must be {spec.allowed()}")


def check_all(specs: dict, values: dict, where: str) -> None:
    """:func:`check` every key of ``values`` that ``specs`` knows."""
    for key, value in values.items():
        if key in specs:
            check(specs[key], key, value, where)


def setting(default, kinds, help: str, **spec):
    """A dataclass field whose default and :class:`Spec` are declared together
    (``metadata["spec"]``); a list or dict default is copied per instance."""
    s = Spec(kinds=tuple(kinds) if not isinstance(kinds, str) else (kinds,), help=help, default=default, **spec)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"spec": s})
    return dataclasses.field(default=default, metadata={"spec": s})


def specs_of(cls) -> dict:
    """{field name: Spec} of a dataclass built with :func:`setting`."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(cls) if "spec" in f.metadata}


def help_table(specs: dict) -> str:
    """One block per key: ``key (default: ...)``, what it allows, its meaning."""
    lines = []
    for key, s in specs.items():
        default = "" if s.default is NO_DEFAULT else f"  [default: {json.dumps(s.default)}]"
        lines.append(f"  {key}{default}")
        lines.append(f"      {s.help}; {s.allowed()}" if s.help else f"      {s.allowed()}")
    return "\n".join(lines)
