"""Faces of the images: detection (:mod:`.detect`), the face cache (:mod:`.cache`,
row format in :mod:`.columns`) and crops by 5-point alignment or detector box (:mod:`.align`)."""
