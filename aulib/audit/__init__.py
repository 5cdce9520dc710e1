"""The selection audit of any code's per-epoch predictions (docs/audit.md):
``inputs`` (the CSV layout, checked), ``run`` (the benchmark table from
them), ``export`` (a kit workspace in that layout), ``cli`` (``python -m aulib.audit``)."""
