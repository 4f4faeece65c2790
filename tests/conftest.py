import inspect
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]

# "ci" is fast enough for 2 cores and derandomized, so a CI failure reproduces locally without the
# example database; run `HYPOTHESIS_PROFILE=deep pytest` for a thorough (random) search.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _parameters(function, bound):
    """(name, kind, default) of each parameter, without ``self`` when ``bound``."""
    params = list(inspect.signature(function).parameters.values())[1 if bound else 0 :]
    return [(p.name, p.kind, p.default) for p in params]


def protocol_mismatches(cls, protocol):
    """Methods of ``protocol`` that ``cls`` lacks or whose parameters (names, kinds,
    defaults) differ, and data members it declares (``name: str``) that ``cls`` lacks;
    annotations are not compared.
    """
    declared = vars(protocol).get("__annotations__", {})
    wrong = [f"{name}: missing" for name in declared if not hasattr(cls, name)]
    for name, method in vars(protocol).items():
        if name.startswith("_") or not callable(method):
            continue
        try:
            attr = inspect.getattr_static(cls, name)
        except AttributeError:
            wrong.append(f"{name}: missing")
            continue
        if isinstance(attr, staticmethod):
            got = _parameters(attr.__func__, bound=False)
        elif callable(attr):
            got = _parameters(attr, bound=True)
        else:
            wrong.append(f"{name}: not a method")
            continue
        if got != _parameters(method, bound=True):
            wrong.append(f"{name}: parameters {got}")
    return wrong


@pytest.fixture
def interface_mismatches():
    return protocol_mismatches


def out_snapshot(root: Path) -> dict:
    """Every file and folder under ``root/out`` with its size and modification time.

    Stricter than ``git status --ignored out/``, which shows only ``!! out/`` however its
    files change: a test that rewrites ``out/bounds/REPORT.md`` changes this snapshot.
    """
    snapshot = {}
    for folder, dirs, files in os.walk(root / "out"):
        for name in dirs + files:
            path = Path(folder, name)
            stat = path.lstat()
            snapshot[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return snapshot


@pytest.fixture(scope="session", autouse=True)
def checkout_out_untouched():
    """Tests write under their tmp folders only: the checkout's ``out/`` is as it was after the run."""
    before = out_snapshot(ROOT)
    yield
    after = out_snapshot(ROOT)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the test suite changed the checkout's out/: {changed[:10]}"
