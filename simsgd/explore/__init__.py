"""Explore τ and rank interactively: the notebook's library (``notebooks/explore_tau_rank.ipynb``).

:mod:`simsgd.explore.model` computes (:mod:`~simsgd.explore.settings` in, curves, locked
fractions, the theory of :mod:`~simsgd.explore.overlay` and a τ × r map out) and
:mod:`simsgd.explore.figures` draws, none of them importing ipywidgets;
:func:`app` builds the widgets (:mod:`simsgd.explore.widgets`, which needs the ``notebooks``
extra)::

    from simsgd.explore import app
    app()                       # or app(problem=your_problem)
"""

from .model import Explorer, Stopped, SweepMap, View
from .settings import CUSTOM, PROBLEMS, RULES, Settings

__all__ = ["app", "Explorer", "Settings", "View", "SweepMap", "Stopped", "PROBLEMS", "RULES", "CUSTOM"]


def app(problem=None, settings: Settings | None = None, **options):
    """The explorer as ipywidgets (two tabs: curves, τ × r map), computing its first view.

    Parameters
    ----------
    problem : problem object, optional
        A problem of your own, selectable beside the built-in ones (and selected).
    settings : Settings, optional
        Where the controls start (default :class:`Settings`'s defaults).
    **options
        Passed to :class:`simsgd.explore.widgets.App` (``cache_dir``, …).

    Returns
    -------
    simsgd.explore.widgets.App
        Displays itself as the last expression of a cell.

    Raises
    ------
    ImportError
        ipywidgets is not installed (``pip install "simsgd[notebooks]"``).
    """
    try:
        from .widgets import App
    except ImportError as err:
        raise ImportError(f'{err}; the explorer needs ipywidgets: pip install "simsgd[notebooks]"') from err
    return App(problem=problem, settings=settings, **options)
