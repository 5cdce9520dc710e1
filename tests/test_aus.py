import numpy as np
import pytest

from aulib import aus


def test_catalog_sizes_and_groups():
    assert len(aus.AUS_2020) == 23 and len(set(aus.AUS_2020)) == 23
    assert aus.GROUPS["17au"] + aus.GROUPS["6au"] == aus.AUS_2020
    assert aus.GROUPS["6au"] == (51, 52, 53, 54, 55, 56)
    assert len(aus.AUS_2018) == 12 and set(aus.AUS_2018) <= set(aus.GROUPS["17au"])
    assert all(aus.AU_NAMES[a] for a in aus.AUS_2020)


def test_columns_round_trip():
    cols = aus.au_columns("6au")
    assert cols == ["AU51", "AU52", "AU53", "AU54", "AU55", "AU56"]
    assert [aus.parse_au_column(c) for c in cols] == list(aus.GROUPS["6au"])
    with pytest.raises(ValueError, match="AU column"):
        aus.parse_au_column("AU 12")
    with pytest.raises(ValueError, match="unknown AU group"):
        aus.group_aus("7au")


def test_flip_permutation_swaps_only_head_pose_pairs():
    perm = aus.flip_permutation(aus.AUS_2020)
    moved = {aus.AUS_2020[i]: aus.AUS_2020[p] for i, p in enumerate(perm) if i != p}
    assert moved == {51: 52, 52: 51, 55: 56, 56: 55}
    assert np.array_equal(perm[perm], np.arange(23))  # an involution
    assert np.array_equal(aus.flip_permutation(aus.GROUPS["17au"]), np.arange(17))


# --------------------------------------------------------------------------- the FACS catalog (issue 24, point 1)
PUBLIC_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28, 43, 45, 46,
              51, 52, 53, 54, 55, 56, 57, 58, 61, 62, 63, 64)


def test_catalog_covers_the_public_data_sets_with_facs_names():
    assert set(PUBLIC_AUS) <= set(aus.AU_NAMES) and aus.CATALOG == tuple(sorted(aus.AU_NAMES))
    assert aus.AU_NAMES[7] == "Lid tightener" and aus.AU_NAMES[14] == "Dimpler" and aus.AU_NAMES[23] == "Lip tightener"
    assert aus.AU_NAMES[57] == "Head forward" and aus.AU_NAMES[61] == "Eyes turn left"
    # EmotioNet's 23 and the paper's groups are as they were
    assert aus.AUS_2020 == (1, 2, 4, 5, 6, 9, 10, 12, 15, 17, 18, 20, 24, 25, 26, 28, 43, 51, 52, 53, 54, 55, 56)
    assert aus.GROUPS["23au"] == aus.AUS_2020 and aus.GROUPS["12au"] == aus.AUS_2018


def test_benchmark_groups():
    assert aus.GROUPS["bp4d12"] == (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
    assert aus.GROUPS["disfa8"] == (1, 2, 4, 6, 9, 12, 25, 26)
    assert aus.GROUPS["affwild12"] == (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
    assert {aus.group_crop(g) for g in ("bp4d12", "disfa8", "affwild12")} == {"aligned"}


def test_flip_swaps_only_lateral_aus():
    perm = aus.flip_permutation(aus.CATALOG)
    moved = {aus.CATALOG[i]: aus.CATALOG[p] for i, p in enumerate(perm) if i != p}
    assert moved == {51: 52, 52: 51, 55: 56, 56: 55, 61: 62, 62: 61}     # 57/58, 63/64 are not lateral


@pytest.mark.parametrize("bad", [1.9, "1.9", True, None, 12.0])
def test_group_aus_must_be_whole_catalog_numbers(bad):
    with pytest.raises(ValueError, match=rf"group 'g': {bad!r} is not an AU number"):
        aus.define_group("g", [1, bad])
    assert "g" not in aus.GROUPS
    with pytest.raises(ValueError, match="AU 99 is not in the kit's FACS catalog"):
        aus.define_group("g", [1, 99])
    assert aus.define_groups({"g7": {"aus": [1, "7", 14]}}) == {"g7": (1, 7, 14)}
    del aus.GROUPS["g7"], aus.CROP_STYLE["g7"]
