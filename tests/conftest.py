import inspect
import os

import pytest
from hypothesis import HealthCheck, settings

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
    defaults) differ; annotations are not compared.
    """
    wrong = []
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
