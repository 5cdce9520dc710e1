import numpy as np
import pytest

from aulib import aus


def test_catalog_sizes_and_groups():
    assert len(aus.AUS_2020) == 23 and len(set(aus.AUS_2020)) == 23
    assert aus.BUILTIN_GROUPS["17au"] + aus.BUILTIN_GROUPS["6au"] == aus.AUS_2020
    assert aus.BUILTIN_GROUPS["6au"] == (51, 52, 53, 54, 55, 56)
    assert len(aus.AUS_2018) == 12 and set(aus.AUS_2018) <= set(aus.BUILTIN_GROUPS["17au"])
    assert all(aus.AU_NAMES[a] for a in aus.AUS_2020)


def test_columns_round_trip():
    cols = aus.au_columns("6au")
    assert cols == ["AU51", "AU52", "AU53", "AU54", "AU55", "AU56"]
    assert [aus.parse_au_column(c) for c in cols] == list(aus.BUILTIN_GROUPS["6au"])
    with pytest.raises(ValueError, match="AU column"):
        aus.parse_au_column("AU 12")
    with pytest.raises(ValueError, match="unknown AU group"):
        aus.group_aus("7au")


def test_flip_permutation_swaps_only_head_pose_pairs():
    perm = aus.flip_permutation(aus.AUS_2020)
    moved = {aus.AUS_2020[i]: aus.AUS_2020[p] for i, p in enumerate(perm) if i != p}
    assert moved == {51: 52, 52: 51, 55: 56, 56: 55}
    assert np.array_equal(perm[perm], np.arange(23))  # an involution
    assert np.array_equal(aus.flip_permutation(aus.BUILTIN_GROUPS["17au"]), np.arange(17))


# --------------------------------------------------------------------------- the FACS catalog (issue 24, point 1)
PUBLIC_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28, 43, 45, 46,
              51, 52, 53, 54, 55, 56, 57, 58, 61, 62, 63, 64)


def test_catalog_covers_the_public_data_sets_with_facs_names():
    assert set(PUBLIC_AUS) <= set(aus.AU_NAMES) and aus.CATALOG == tuple(sorted(aus.AU_NAMES))
    assert aus.AU_NAMES[7] == "Lid tightener" and aus.AU_NAMES[14] == "Dimpler" and aus.AU_NAMES[23] == "Lip tightener"
    assert aus.AU_NAMES[57] == "Head forward" and aus.AU_NAMES[61] == "Eyes turn left"
    # EmotioNet's 23 and the paper's groups are as they were
    assert aus.AUS_2020 == (1, 2, 4, 5, 6, 9, 10, 12, 15, 17, 18, 20, 24, 25, 26, 28, 43, 51, 52, 53, 54, 55, 56)
    assert aus.BUILTIN_GROUPS["23au"] == aus.AUS_2020 and aus.BUILTIN_GROUPS["12au"] == aus.AUS_2018


def test_benchmark_groups():
    assert aus.BUILTIN_GROUPS["bp4d12"] == (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
    assert aus.BUILTIN_GROUPS["disfa8"] == (1, 2, 4, 6, 9, 12, 25, 26)
    assert aus.BUILTIN_GROUPS["affwild12"] == (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
    assert {aus.group_crop(g) for g in ("bp4d12", "disfa8", "affwild12")} == {"aligned"}


def test_flip_swaps_only_lateral_aus():
    perm = aus.flip_permutation(aus.CATALOG)
    moved = {aus.CATALOG[i]: aus.CATALOG[p] for i, p in enumerate(perm) if i != p}
    assert moved == {51: 52, 52: 51, 55: 56, 56: 55, 61: 62, 62: 61}     # 57/58, 63/64 are not lateral


@pytest.mark.parametrize("bad", [1.9, "1.9", True, None, 12.0])
def test_group_aus_must_be_whole_catalog_numbers(bad):
    with pytest.raises(ValueError, match=rf"group 'g': {bad!r} is not an AU number"):
        aus.make_group("g", [1, bad])
    with pytest.raises(ValueError, match="AU 99 is not in the kit's FACS catalog"):
        aus.make_group("g", [1, 99])
    assert aus.parse_groups({"g7": {"aus": [1, "7", 14]}}) == {"g7": aus.AUGroup("g7", (1, 7, 14), "aligned")}
    assert "g" not in aus.BUILTIN and "g7" not in aus.BUILTIN


def test_builtin_groups_are_a_read_only_table():
    """The built-in groups cannot be changed; a custom group is a value, never registered."""
    for table in (aus.BUILTIN, aus.BUILTIN_GROUPS, aus.BUILTIN_CROP):
        with pytest.raises(TypeError):
            table["mine"] = None
    with pytest.raises(AttributeError):
        aus.BUILTIN["17au"].aus = (1,)
    assert not any(hasattr(aus, name) for name in ("GROUPS", "CROP_STYLE", "define_group", "define_groups"))
    mine = aus.make_group("mine", [1, 2], "box1.3")
    assert aus.get_group(mine) is mine and aus.group_aus(mine) == (1, 2) and aus.group_crop(mine) == "box1.3"
    assert aus.group_aus("mine", {"mine": mine}) == (1, 2) and aus.au_columns(mine) == ["AU1", "AU2"]
    assert "box1.3" in aus.crop_styles([mine]) and "box1.3" not in aus.crop_styles()
    with pytest.raises(ValueError, match="unknown AU group 'mine'"):
        aus.group_aus("mine")                               # making it registered nothing
    assert aus.make_group("6au", aus.BUILTIN_GROUPS["6au"], "box1.5") == aus.BUILTIN["6au"]
    with pytest.raises(ValueError, match="'17au' is a built-in group"):
        aus.make_group("17au", [1, 2])
