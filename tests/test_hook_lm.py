"""The byte-level LM comparison (``python -m simsgd.examples.lm``): quick mode and its CLI."""

import csv
import json
import math

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # spawns gloo process groups

from simsgd.cli import run  # noqa: E402
from simsgd.examples import lm  # noqa: E402


def test_quick_run_writes_a_complete_comparison(tmp_path, capsys):
    assert run(lm.main, ["--quick", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["lm.csv", "lm.png", "lm_paired.md", "lm_table.md", "provenance.json"]
    with open(tmp_path / "lm.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == set(lm.METHODS)
    assert all(math.isfinite(float(r["validation_loss"])) for r in rows)
    last = {r["method"]: r for r in rows if r["step"] == "20"}
    floats = {m: int(r["floats_per_node"]) for m, r in last.items()}
    # Warm-up (10 steps) sends everything; then PowerSGD (m+n)r per matrix, PowerSGD+ τ = 10
    # adds one mn restart, the GaLore-style baseline one mn refresh and nr in between.
    assert floats["PowerSGD"] < floats["GaLore-style"] < floats["all-reduce"]
    assert floats["PowerSGD"] < floats["PowerSGD+"] < floats["all-reduce"]
    first = {r["method"]: float(r["validation_loss"]) for r in rows if r["step"] == "0"}
    assert len(set(first.values())) == 1  # the same initial weights for every method
    final = {m: float(r["validation_loss"]) for m, r in last.items()}
    assert all(final[m] < first[m] for m in final)  # every method learns something
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["corpus"]["train"]["bytes"] > 0 and provenance["options"]["quick"]
    assert "| PowerSGD+ r=4 τ=10 |" in capsys.readouterr().out


def test_corpus_is_split_by_file_and_reproducible():
    train, validation, info = lm.read_corpus(50_000)
    again = lm.read_corpus(50_000)[2]
    assert info == again
    assert info["train"]["sha256"] != info["validation"]["sha256"]
    assert 0 < len(validation) < len(train) <= 50_000 + info["train"]["files"]
    assert int(train.max()) < 256


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps"),
        (["--lr", "-1"], "--lr"),
        (["--ranks", "0"], "--ranks"),
        (["--width", "30", "--heads", "4"], "--width"),
        (["--out", "/proc/nope"], "--out"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert run(lm.main, argv, prog="lm") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
