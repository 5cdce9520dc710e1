"""Make a virtual environment holding only aulib's core and test dependencies.

``.venv/bin/python scripts/core_env.py DIR`` (run with the full environment's
Python, the one scripts/setup.sh made): a venv at DIR whose site-packages holds
links to exactly the installed distributions that ``aulib[test]`` requires,
directly or through their own requirements (markers evaluated here), and aulib
itself from this checkout. Nothing is downloaded or copied, so it takes seconds;
the ``notebooks`` extra's own packages (ipywidgets, tensorboard, JupyterLab) are
not there, as on a server installed with ``pip install -e '.[test]'``. CI runs
one pipeline pass in it (scripts/test.sh).
"""
from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "aulib", extras: tuple[str, ...] = ("test",)) -> dict[str, md.Distribution]:
    """Installed distributions ``root[extras]`` needs, by normalised name (``root`` included)."""
    found: dict[str, md.Distribution] = {}
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"core_env: {name} is required but not installed in {sys.prefix}; "
                             "run scripts/setup.sh first") from None
        key = _key(dist.metadata["Name"])
        if key in found and not wanted:
            continue
        found[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                if _key(req.name) not in found or req.extras:
                    todo.append((req.name, set(req.extras)))
    return found


def make(target: Path) -> list[str]:
    """Create the venv at ``target``; returns the distributions linked into it."""
    dists = closure()
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(target)], check=True)
    site = Path(subprocess.run([str(target / "bin" / "python"), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"])
    linked = set()
    for key, dist in sorted(dists.items()):
        if key == "aulib":
            continue
        base = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        tops.add(Path(dist._path).name)      # its .dist-info folder
        for top in tops:
            src, dst = base / top, site / top
            if src.exists() and not dst.exists() and not top.endswith(".pth"):
                dst.symlink_to(src)
        linked.add(key)
    (site / "aulib_checkout.pth").write_text(f"{REPO}\n")
    assert here != site
    return sorted(linked)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    target = Path(args[0]).resolve()
    linked = make(target)
    missing = subprocess.run([str(target / "bin" / "python"), "-c", "import importlib.util as u; print(["
                              "m for m in ('ipywidgets', 'tensorboard', 'jupyterlab') if u.find_spec(m)])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    print(f"core environment {target}: {len(linked)} distributions linked; notebooks-only modules present: "
          f"{missing}")
    return 0 if missing == "[]" else 1


if __name__ == "__main__":
    sys.exit(main())
