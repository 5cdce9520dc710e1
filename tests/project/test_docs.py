"""The README is the short front page and the pages it links hold the rest; each page is what the
rehearsals run (docs/emotionet.md step 1 and 3 are tests/e2e/test_rehearsal.py's layout and commands)."""
import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("usage", "explore", "emotionet", "bp4d", "disfa", "affwild2", "benchmarks", "scale", "own_data", "noisy_labels",
         "several_machines", "failure_modes", "decisions", "layout", "architecture")


def _links(path: Path) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()) if "://" not in t]


def test_readme_is_a_two_minute_front_page_linking_every_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 160, "README.md grew past ~150 lines: move the detail to a docs/ page"
    for section in ("## Fresh machine: two commands", "## What you get", "## Data sets it reads", "## Where the results are"):
        assert section in text, section
    for page in PAGES:
        assert f"](docs/{page}.md)" in text, page
    for moved in ("## Reproducing on EmotioNet", "## Failure modes", "## Where the kit departs from the paper"):
        assert moved not in text


def test_every_relative_link_resolves():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in _links(path):
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to {target}, which is not there"


def _bash_blocks(text: str) -> list[str]:
    return [re.sub(r"\\\n\s*", " ", b) for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_emotionet_page_is_what_the_rehearsal_runs(tmp_path):
    """Step 1's layout is the one test_rehearsal writes; step 3's two commands are the ones it runs."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from test_rehearsal import write_emotionet_layout

    text = (ROOT / "docs" / "emotionet.md").read_text()
    layout = re.search(r"1\. Put the challenge files under one data root:\n\s*```\n(.*?)```", text, re.S).group(1)
    data = tmp_path / "emotionet"
    write_emotionet_layout(data, 3, 2)
    for line in layout.strip().splitlines():
        rel = line.split()[0].replace("/data/emotionet/", "").rstrip("…").rstrip("/")
        assert list(data.glob(rel.replace("…", "*"))), f"docs/emotionet.md step 1 names {rel}; the rehearsal writes no such file"
    commands = [shlex.split(c) for b in _bash_blocks(text) for c in b.strip().splitlines() if "aulib.pipeline" in c]
    rehearse = next(c for c in commands if "aulib.pipeline.rehearsal" in c)
    assert rehearse[rehearse.index("--rows") + 1: rehearse.index("--rows") + 3] == ["200", "100"]   # the test's slice
    assert "--data-root" in rehearse and "--out" in rehearse
    run = next(c for c in commands if c[:3] == [".venv/bin/python", "-m", "aulib.pipeline"] and "--workspace" in c)
    assert run[run.index("--profile") + 1] == rehearse[rehearse.index("--out") + 1]          # runs the profile it wrote
    rehearsal_test = (ROOT / "tests" / "e2e" / "test_rehearsal.py").read_text()
    assert '"--rows", "200", "100"' in rehearsal_test and '"-m", "aulib.pipeline", "--profile"' in rehearsal_test


def test_own_data_page_is_the_template_the_own_data_rehearsal_runs():
    text = (ROOT / "docs" / "own_data.md").read_text()
    assert "notebooks/profiles/own_data_template.yaml" in text
    header = re.search(r"```\n(image,subject,split,AU[^\n]*)\n", text).group(1).split(",")
    assert header[:3] == ["image", "subject", "split"] and all(re.fullmatch(r"AU\d+", c) for c in header[3:])
    assert "own_data_template.yaml" in (ROOT / "tests" / "e2e" / "test_owndata_rehearsal.py").read_text()


def test_noisy_labels_page_is_the_template_the_noisy_labels_rehearsal_runs():
    text = (ROOT / "docs" / "noisy_labels.md").read_text()
    assert "notebooks/profiles/noisy_labels_template.yaml" in text
    assert "docs/noisy_labels.md" in (ROOT / "README.md").read_text()
    assert "noisy_labels_template.yaml" in (ROOT / "tests" / "e2e" / "test_noisy_labels_rehearsal.py").read_text()
    template = yaml.safe_load((ROOT / "notebooks" / "profiles" / "noisy_labels_template.yaml").read_text())
    assert template["common"]["dataset"] == "machine_labels" and template["defaults"]["02_split"]["faces"] == "mtcnn"


def test_readme_and_usage_document_aulib_root_as_it_behaves(tmp_path, monkeypatch):
    """Issue 25.6: the README names AULIB_ROOT and links its section in docs/usage.md,
    and the page says what the code does: workspace and profiles under that folder."""
    from aulib.workspace import Workspace, repo_root

    readme, usage = (ROOT / "README.md").read_text(), (ROOT / "docs" / "usage.md").read_text()
    assert "AULIB_ROOT" in readme and "docs/usage.md#where-notebooks-write-aulib_root" in readme
    assert "## Where notebooks write (`AULIB_ROOT`)" in usage
    assert "writes ~/au-project/runs/<profile>/" in usage
    monkeypatch.setenv("AULIB_ROOT", str(tmp_path))
    assert repo_root() == tmp_path.resolve()
    ws = Workspace.for_profile("demo")
    assert ws.root == tmp_path.resolve() / "runs" / "demo" and ws.results == ws.root / "results"     # issue 35.6
    assert "--profile demo --publish" in usage and "--profile demo --publish" in readme


def test_benchmark_pages_hold_the_commands_their_rehearsal_runs():
    """tests/e2e/test_benchmark_rehearsal.py runs step 2 of each data-set page as written; here, cheaply,
    that each page has those two commands for its own shipped profile and names the table they end in."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from test_benchmark_rehearsal import CASES, page_commands

    for dataset, (example_root, group, _, _) in CASES.items():
        rehearse, run = page_commands(dataset)
        argv = shlex.split(rehearse)
        assert argv[:3] == ["python", "-m", "aulib.pipeline.rehearsal"] and argv[argv.index("--profile") + 1] == dataset
        assert argv[argv.index("--data-root") + 1] == example_root
        assert (ROOT / "notebooks" / "profiles" / f"{dataset}.yaml").exists()
        assert shlex.split(run)[:5] == ["python", "-m", "aulib.pipeline", "--profile", argv[argv.index("--out") + 1]]
        assert f"benchmark_{dataset}_{group}.md" in (ROOT / "docs" / f"{dataset}.md").read_text()
