"""Action Unit catalog: the FACS AUs, the EmotioNet AU sets, the model groups, flip pairs.

The built-in groups are a read-only table (:data:`BUILTIN`); a profile's own
group is an :class:`AUGroup` value made where its definition is read and
passed on, never registered here.

Every AU is referred to by its FACS number (int). Label tables name the
column of AU ``n`` as ``f"AU{n}"``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

#: The FACS catalog (Ekman, Friesen & Hager, FACS manual 2002): every action
#: unit a public AU data set labels, with its FACS name, in number order (the
#: order of a label table's AU columns).
AU_NAMES: dict[int, str] = {
    1: "Inner brow raiser",
    2: "Outer brow raiser",
    4: "Brow lowerer",
    5: "Upper lid raiser",
    6: "Cheek raiser",
    7: "Lid tightener",
    9: "Nose wrinkler",
    10: "Upper lip raiser",
    11: "Nasolabial deepener",
    12: "Lip corner puller",
    13: "Sharp lip puller",
    14: "Dimpler",
    15: "Lip corner depressor",
    16: "Lower lip depressor",
    17: "Chin raiser",
    18: "Lip pucker",
    20: "Lip stretcher",
    22: "Lip funneler",
    23: "Lip tightener",
    24: "Lip pressor",
    25: "Lips part",
    26: "Jaw drop",
    27: "Mouth stretch",
    28: "Lip suck",
    43: "Eyes closed",
    45: "Blink",
    46: "Wink",
    51: "Head turn left",
    52: "Head turn right",
    53: "Head up",
    54: "Head down",
    55: "Head tilt left",
    56: "Head tilt right",
    57: "Head forward",
    58: "Head back",
    61: "Eyes turn left",
    62: "Eyes turn right",
    63: "Eyes up",
    64: "Eyes down",
}
#: Every AU of the catalog, in number order.
CATALOG: tuple[int, ...] = tuple(AU_NAMES)

#: The 23 AUs of the EmotioNet Challenge 2020, in challenge order.
AUS_2020: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 10, 12, 15, 17, 18, 20, 24, 25, 26, 28, 43,
                             51, 52, 53, 54, 55, 56)
#: The 12 AUs of the EmotioNet Challenge 2018 (the paper's Table 3).
AUS_2018: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)

#: Built-in model groups (read-only). ``17au`` (expression) and ``6au`` (head
#: pose) are the paper's two models; ``12au`` is the 2018 set used for the ablation table.
BUILTIN_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "17au": AUS_2020[:17],
    "6au": AUS_2020[17:],
    "12au": AUS_2018,
    "23au": AUS_2020,
    # the field's standard sets (docs/benchmarks.md)
    "bp4d12": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "disfa8": (1, 2, 4, 6, 9, 12, 25, 26),
    "affwild12": (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26),
})
#: Crop style each built-in group is trained on (paper, Sec. 2.1): expression
#: AUs use 5-point aligned faces; head-pose AUs the unaligned detector box x1.5.
BUILTIN_CROP: Mapping[str, str] = MappingProxyType({
    "17au": "aligned", "12au": "aligned", "23au": "aligned", "6au": "box1.5",
    "bp4d12": "aligned", "disfa8": "aligned", "affwild12": "aligned"})


@dataclass(frozen=True)
class AUGroup:
    """An AU group as a value: its ``name``, AU numbers ``aus`` (in order) and
    the ``crop`` style its models are trained on. A built-in group is one of
    :data:`BUILTIN`; a profile's own group is made once, where its definition
    is read (the profile's ``groups:``, a run's config.yaml, a chosen-model
    file), by :func:`make_group`, and passed on as this value. Nothing keeps
    a registry of them."""

    name: str
    aus: tuple[int, ...]
    crop: str = "aligned"


#: The built-in groups as :class:`AUGroup` values (read-only).
BUILTIN: Mapping[str, AUGroup] = MappingProxyType(
    {name: AUGroup(name, aus, BUILTIN_CROP[name]) for name, aus in BUILTIN_GROUPS.items()})

#: A horizontal flip swaps the lateral AUs: head turn left/right (51/52),
#: head tilt left/right (55/56), eyes turn left/right (61/62). Every other AU
#: is kept (57/58 head forward/back and 63/64 eyes up/down are not lateral).
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((51, 52), (55, 56), (61, 62))


def check_crop_style(style: str, where: str = "crop style") -> str:
    """``aligned`` or ``box<scale>`` (``box1.5``: the detector box x1.5); returns it."""
    style = str(style)
    if style == "aligned":
        return style
    try:
        ok = style.startswith("box") and float(style[3:]) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{where} {style!r} is not a crop style; use 'aligned' (5-point aligned face) "
                         "or 'box<scale>' such as 'box1.5' (unaligned detector box x scale)")
    return style


def check_au(value, where: str = "AU") -> int:
    """An AU number of the catalog (:data:`AU_NAMES`) as int: an integer, or a
    string of digits (``"12"``); anything else (``1.9``, ``"1.9"``, ``True``)
    or an AU outside the catalog is a ValueError naming ``where`` and the value."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        au = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        au = int(value.strip())
    else:
        raise ValueError(f"{where}: {value!r} is not an AU number; AUs are whole FACS numbers such as 12 "
                         "(not 1.9 or '1.9')")
    if au not in AU_NAMES:
        raise ValueError(f"{where}: AU {au} is not in the kit's FACS catalog {list(CATALOG)}")
    return au


def make_group(name: str, aus, crop: str = "aligned", where: str = "group") -> AUGroup:
    """The :class:`AUGroup` ``name`` with AU numbers ``aus`` (whole numbers of
    the FACS catalog :data:`AU_NAMES`, no repeats; :func:`check_au`) and crop
    style ``crop``: checks the definition and returns it; registers nothing.
    A built-in name with its own AUs and crop gives the built-in group; with
    other AUs or another crop it is a ValueError naming ``where``."""
    name = str(name)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"{where}: group name {name!r} must be a plain name such as 'disfa12'")
    if isinstance(aus, (str, bytes)) or not hasattr(aus, "__iter__"):
        raise ValueError(f"{where}: group {name!r} needs a list of AU numbers, got {aus!r}")
    aus = tuple(check_au(a, f"{where}: group {name!r}") for a in aus)
    if not aus or len(set(aus)) != len(aus):
        raise ValueError(f"{where}: group {name!r} needs at least one AU and no repeats, got {list(aus)}")
    crop = check_crop_style(crop, f"{where}: group {name!r} crop")
    group = AUGroup(name, aus, crop)
    if name in BUILTIN and BUILTIN[name] != group:
        raise ValueError(f"{where}: group {name!r} is a built-in group with AUs {list(BUILTIN[name].aus)}, crop "
                         f"{BUILTIN[name].crop!r}; give the new group {list(aus)} ({crop}) another name")
    return group


def parse_groups(spec: Mapping | None, where: str = "groups") -> dict[str, AUGroup]:
    """The groups of a profile's ``groups:`` mapping ``{name: {aus: [...],
    crop: aligned | box1.5}}`` as {name: :class:`AUGroup`} (:func:`make_group`)."""
    out = {}
    for name, g in (spec or {}).items():
        if not isinstance(g, dict) or "aus" not in g or set(g) - {"aus", "crop"}:
            raise ValueError(f"{where}: group {name!r} must be a mapping with keys 'aus' (AU numbers) and "
                             f"optionally 'crop' (aligned | box1.5), got {g!r}")
        out[str(name)] = make_group(name, g["aus"], g.get("crop", "aligned"), where=where)
    return out


def groups_spec(groups: Mapping[str, AUGroup]) -> dict:
    """The ``groups:`` mapping of :class:`AUGroup` values (what :func:`parse_groups` reads back)."""
    return {name: {"aus": list(g.aus), "crop": g.crop} for name, g in groups.items()}


def get_group(group, groups: Mapping[str, AUGroup] | None = None) -> AUGroup:
    """The :class:`AUGroup` of ``group``: an AUGroup as it is; a name of
    ``groups`` (a profile's own groups, :attr:`aulib.pipeline.StepSettings.groups`)
    or of the built-in groups :data:`BUILTIN`."""
    if isinstance(group, AUGroup):
        return group
    if groups and group in groups:
        return groups[group]
    try:
        return BUILTIN[group]
    except (KeyError, TypeError):
        known = sorted({*BUILTIN, *(groups or {})})
        raise ValueError(f"unknown AU group {group!r}; choose one of {known}, or declare it in the profile: "
                         "groups: {name: {aus: [1, 2, ...], crop: aligned}}") from None


def group_aus(group, groups: Mapping[str, AUGroup] | None = None) -> tuple[int, ...]:
    """AU numbers of a group (:func:`get_group`: an :class:`AUGroup`, a name of
    ``groups``, or a built-in name ``17au``, ``6au``, ``12au``, ``23au``, ...)."""
    return get_group(group, groups).aus


def group_crop(group, groups: Mapping[str, AUGroup] | None = None) -> str:
    """Crop style of a group (:func:`get_group`): ``aligned`` or ``box<scale>``."""
    return get_group(group, groups).crop


def aus_of(aus_or_group) -> tuple[int, ...]:
    """AU numbers of a group (a built-in name or an :class:`AUGroup`) or of a
    sequence of AU numbers."""
    if isinstance(aus_or_group, (str, AUGroup)):
        return group_aus(aus_or_group)
    return tuple(int(a) for a in aus_or_group)


def crop_styles(groups=()) -> list[str]:
    """Every crop style the built-in groups and ``groups`` (AUGroup values, or
    a mapping of them, e.g. a profile's own) need, ``aligned`` and ``box1.5`` first."""
    own = groups.values() if isinstance(groups, Mapping) else groups
    return list(dict.fromkeys(["aligned", "box1.5", *BUILTIN_CROP.values(), *(g.crop for g in own)]))


def au_column(au: int) -> str:
    """Label-table column name of an AU number: 12 -> 'AU12'."""
    return f"AU{int(au)}"


def au_columns(aus_or_group) -> list[str]:
    """Column names for a group (:func:`aus_of`) or a sequence of AU numbers."""
    return [au_column(a) for a in aus_of(aus_or_group)]


def _is_au_column(name: str) -> bool:
    return name.startswith("AU") and name[2:].isdigit()


def au_columns_in(columns) -> list[str]:
    """The AU column names (``AU<n>``, any number) among ``columns``, in their order."""
    return [c for c in columns if _is_au_column(c)]


def parse_au_column(name: str) -> int:
    """'AU12' -> 12 (any number; :func:`check_au` checks it is in the catalog).
    Raises ValueError for anything else."""
    if not _is_au_column(name):
        raise ValueError(f"{name!r} is not an AU column name like 'AU12'")
    return int(name[2:])


def flip_permutation(aus) -> np.ndarray:
    """Index permutation that maps a label/probability vector over ``aus`` to
    the horizontally flipped face: ``flipped = vec[..., perm]``.

    Shape: (len(aus),) int64. Pairs of which only one member is in ``aus`` are
    left alone (the other side cannot be represented).
    """
    aus = list(aus)
    perm = np.arange(len(aus))
    pos = {a: i for i, a in enumerate(aus)}
    for a, b in FLIP_PAIRS:
        if a in pos and b in pos:
            perm[pos[a]], perm[pos[b]] = pos[b], pos[a]
    return perm
