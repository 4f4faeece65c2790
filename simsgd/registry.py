"""Compressors by name: what ``simulate(problem, method="name")`` looks up.

Each name maps to a factory that builds the compressor from the run's options (an object with the
attributes of :class:`simsgd.algorithm.Config`: ``rank``, ``restart_period``, ``restart``, …), so
the same options mean the same thing for every method. Register your own once::

    from simsgd.registry import register
    register("topk-half", lambda options: TopK(k=2))
    simulate(problem, method="topk-half")

or pass the object itself: ``simulate(problem, method=TopK(k=2))``.
"""

from __future__ import annotations

from collections.abc import Callable

from . import baselines
from .compression import Compressor, missing_members
from .methods import GaLore, PowerSGD, PowerSGDPlus, Uncompressed

__all__ = ["register", "unregister", "names", "build", "Factory"]

Factory = Callable[[object], Compressor]
"""A function of the run's options returning a :class:`~simsgd.compression.Compressor`."""


def _power_options(o, **extra):
    return dict(
        rank=o.rank,
        orthogonalization=o.orthogonalization,
        orthogonalization_epsilon=o.orthogonalization_epsilon,
        degenerate_qr=o.degenerate_qr,
        **extra,
    )


_FACTORIES: dict[str, Factory] = {
    "powersgd+": lambda o: PowerSGDPlus(
        **_power_options(
            o,
            rule=o.restart_period,
            restart=o.restart,
            restart_oversampling=o.restart_oversampling,
            restart_power_steps=o.restart_power_steps,
        )
    ),
    "powersgd": lambda o: PowerSGD(**_power_options(o)),
    "full": lambda o: Uncompressed(),
    "galore": lambda o: GaLore(o.rank, o.restart_period),
    "power-iteration": lambda o: PowerSGD(
        **_power_options(o, power_steps=o.power_steps, name="power-iteration")
    ),
    **baselines.FACTORIES,
}
BUILT_IN = tuple(_FACTORIES)
"""The names that come with the package (see :func:`simsgd.simulate`'s ``method``)."""


def register(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Make ``method=name`` build ``factory(options)``.

    Raises
    ------
    ValueError
        ``name`` is not a non-empty string, is taken (unless ``replace``), or is a built-in name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name in BUILT_IN:
        raise ValueError(f"name {name!r} is a built-in method; choose another")
    if name in _FACTORIES and not replace:
        raise ValueError(f"a compressor is already registered as {name!r}; pass replace=True to replace it")
    if not callable(factory):
        raise ValueError(f"factory must be callable (options -> Compressor), got {factory!r}")
    _FACTORIES[name] = factory


def unregister(name: str) -> None:
    """Remove a name :func:`register` added (built-in names stay)."""
    if name in BUILT_IN:
        raise ValueError(f"name {name!r} is a built-in method and cannot be removed")
    _FACTORIES.pop(name, None)


def names() -> tuple[str, ...]:
    """Every name ``method=`` accepts now."""
    return tuple(_FACTORIES)


def build(method, options) -> Compressor:
    """The compressor ``method`` names (built from ``options``), or ``method`` itself if it is one.

    Raises
    ------
    ValueError
        An unknown name, or an object without the :class:`~simsgd.compression.Compressor` members.
    """
    if isinstance(method, str):
        if method not in _FACTORIES:
            raise ValueError(f"method must be one of {names()} or a Compressor object, got {method!r}")
        compressor = _FACTORIES[method](options)
    else:
        compressor = method
    if not isinstance(compressor, Compressor):
        raise ValueError(
            f"method must be a registered name or a Compressor (simsgd.compression); "
            f"{type(compressor).__name__} lacks {missing_members(compressor)}"
        )
    return compressor
