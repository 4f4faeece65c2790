"""Ctrl-C on the training examples: one line from the parent, nothing from the children."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # spawns processes that import torch

from simsgd.distributed.launch import launch  # noqa: E402
from simsgd.examples._quiet import launch_quietly  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _sigint_disposition():
    return "ignored" if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else "raises"


def test_children_of_launch_quietly_ignore_sigint_and_the_parent_keeps_it():
    assert launch_quietly(launch, _sigint_disposition, 2, timeout=60) == ["ignored", "ignored"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back to this process
    # Negative control: plain launch's children raise KeyboardInterrupt on Ctrl-C.
    assert launch(_sigint_disposition, 2, timeout=60) == ["raises", "raises"]


def _children(pid):
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("module", ["simsgd.examples.lm", "simsgd.examples.train"])
def test_ctrl_c_while_the_children_start_is_one_line(module, tmp_path):
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    out = (
        ["--quick", "--out", str(tmp_path / "lm")]
        if module.endswith("lm")
        else ["--out", str(tmp_path / "t.png")]
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *out],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before its children started"
        time.sleep(0.5)  # the children are importing torch now
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.strip().splitlines() == [f"python -m {module}: interrupted; nothing was written"], err
    assert not _children(proc.pid)
