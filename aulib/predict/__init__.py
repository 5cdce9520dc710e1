"""Stage 8, prediction on new pictures: :class:`Predictor` (chosen models ->
per-face AU probabilities and decisions), ``inputs`` (files, folders, video
frames, annotation), ``plot`` (pictures with their AU bars), ``formats`` (the
table as the kit, OpenFace 2 or py-feat write it), ``cli``
(``python -m aulib.predict``).

The names below are loaded on first use, so ``python -m aulib.predict --help``
does not import torch.
"""
from __future__ import annotations

import importlib

_FROM_PREDICTOR = ("ERROR_COLUMNS", "META_COLUMNS", "SYNTHAU_NOTE", "Predictor", "available_chosen", "errors_path",
                   "errors_table", "plan_chosen", "predict_files", "read_predictions", "resolve_device",
                   "summarize_predictions", "training_dataset")

__all__ = ["Predictor", "plan_chosen", "predict_files", "available_chosen", "read_predictions", "errors_table",
           "errors_path", "summarize_predictions", "resolve_device", "META_COLUMNS", "ERROR_COLUMNS", "SYNTHAU_NOTE",
           "training_dataset", "main"]


def __getattr__(name: str):
    if name in _FROM_PREDICTOR:
        return getattr(importlib.import_module(".predictor", __name__), name)
    if name == "main":
        return importlib.import_module(".cli", __name__).main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
