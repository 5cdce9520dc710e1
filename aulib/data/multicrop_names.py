"""Test-time view names of multi-crop inference, without torch (a training
config checks them; :mod:`aulib.infer.multicrop` makes the views)."""
from __future__ import annotations

#: Test-time views of multi-crop inference (:mod:`aulib.infer.multicrop` makes them).
#: (scale, anchor) of the crop views: a square of ``scale`` times the side,
#: anchored at the top-left (0) or bottom-right (1) corner of the image.
CROP_VIEWS: dict[str, tuple[float, float]] = {"crop_tl": (0.9, 0.0), "crop_br": (0.9, 1.0)}
#: Every view by name, in the order :func:`aulib.infer.multicrop.multicrop_views` returns them.
VIEWS: tuple[str, ...] = ("image", "flip", *CROP_VIEWS)


def check_views(views) -> tuple[str, ...]:
    """``views`` as a tuple of known names, ``image`` first (else a ValueError naming them)."""
    views = tuple(str(v) for v in ([views] if isinstance(views, str) else views))
    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views or views[0] != "image" or len(set(views)) != len(views):
        raise ValueError(f"multicrop_views {list(views)}: give distinct names of {list(VIEWS)}, 'image' first "
                         f"(unknown: {unknown})")
    return views
