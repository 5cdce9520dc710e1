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
