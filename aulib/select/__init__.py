"""Stage 6, choice after training (reads predictions, never re-runs a model):
``threshold`` (exact per-AU threshold search), ``folds`` (image-grouped
folds), ``choose`` (per-AU checkpoint and threshold strategies, the honest
estimate), ``ensemble`` (linear ensembles), ``chosen`` (chosen-model files)."""
