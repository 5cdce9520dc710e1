"""Stage 8, prediction on new pictures: :class:`Predictor` (chosen models ->
per-face AU probabilities and decisions), ``inputs`` (files, folders, video
frames, annotation), ``plot`` (pictures with their AU bars), ``cli``
(``python -m aulib.predict``)."""
from .cli import main
from .predictor import (ERROR_COLUMNS, META_COLUMNS, SYNTHAU_NOTE, Predictor, available_chosen, errors_path, errors_table,
                        plan_chosen, predict_files, read_predictions, resolve_device, summarize_predictions,
                        training_dataset)

__all__ = ["Predictor", "plan_chosen", "predict_files", "available_chosen", "read_predictions", "errors_table",
           "errors_path", "summarize_predictions", "resolve_device", "META_COLUMNS", "ERROR_COLUMNS", "SYNTHAU_NOTE",
           "training_dataset", "main"]
