"""The face-cache row format (docs/layout.md, ``faces.csv``): its columns.

Coordinates are continuous pixel coordinates of the original image: pixel
``(i, j)`` covers ``[j, j+1) x [i, i+1)``, so its centre is ``(j + 0.5, i + 0.5)``.
"""
from __future__ import annotations

#: Face cache columns (docs/layout.md). Landmarks in MTCNN order: eye at
#: image-left, eye at image-right, nose tip, mouth corner at image-left, mouth
#: corner at image-right.
BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
LANDMARK_COLUMNS = [f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y")]
FACE_COLUMNS = ["image", "width", "height", "n_faces", "score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
#: The cache the kit writes adds ``status``: ``ok`` (at least one face),
#: ``no_face`` (none found), ``too_small`` (shorter side under
#: :data:`MIN_FACE_PX`: MTCNN cannot search it, no face) or ``unreadable``
#: (file missing, corrupt or not an image). Readers that only know
#: :data:`FACE_COLUMNS` can ignore it.
CACHE_COLUMNS = [*FACE_COLUMNS, "status"]
