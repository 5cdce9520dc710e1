"""The software and CPU a run was made with: a record written beside results.

CPU training is deterministic on one machine but not across machines or
package versions (the float rounding of a kernel changes which AUs a short
run learns), so every workspace and ``results/`` keep ``environment.txt``:
Python, platform, CPU, torch's CPU kernel level and threads, and every
installed distribution with its version.
"""
from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from .io import write_text


def package_versions() -> dict[str, str]:
    """{distribution name (lower case): version} of every installed distribution, sorted."""
    out = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if name:
            out[name] = dist.version
    return dict(sorted(out.items()))


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_lines() -> list[str]:
    """The record as ``key: value`` lines, then ``name==version`` per distribution."""
    import torch

    lines = [f"python: {sys.version.split()[0]}", f"platform: {platform.platform()}", f"cpu: {cpu_model()}",
             f"torch cpu capability: {torch.backends.cpu.get_cpu_capability()}",
             f"torch threads: {torch.get_num_threads()}", f"cuda: {torch.version.cuda or 'none'}", ""]
    return lines + [f"{n}=={v}" for n, v in package_versions().items()]


def write_environment(path) -> Path:
    """Write :func:`environment_lines` to ``path`` (atomically); returns it."""
    path = Path(path)
    write_text(path, "\n".join(environment_lines()) + "\n")
    return path
