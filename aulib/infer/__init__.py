"""Stage 4-8, inference with trained runs: ``checkpoints`` (a run's config
and weights), ``multicrop`` (multi-crop test-time views), ``sharded`` (predicting over a
loader or a whole split, in resumable chunks, sharded across ranks)."""
from .checkpoints import checkpoint_epochs, checkpoint_path, load_model, load_run_config
from .sharded import autocast, predict_probs, predict_split_probs, predict_views
from .multicrop import multicrop_probs, multicrop_views, view_probs

__all__ = ["checkpoint_epochs", "checkpoint_path", "load_model", "load_run_config", "autocast", "predict_probs",
           "predict_split_probs", "predict_views", "multicrop_probs", "multicrop_views", "view_probs"]
