"""SIGTERM as an exception, so that cleanup code runs: :func:`sigterm_as_exit`.

Python's default SIGTERM ends the process at once, skipping every
``finally``: a launcher's torchrun job would live on. Inside
:func:`sigterm_as_exit` SIGTERM raises ``SystemExit(143)`` instead (in the
main thread; elsewhere it changes nothing), so the launcher stops torchrun
(:mod:`aulib.train.launch`), as Ctrl-C (KeyboardInterrupt) already does.
"""
from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def sigterm_as_exit():
    """While the block runs, SIGTERM raises ``SystemExit(128 + SIGTERM)``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
