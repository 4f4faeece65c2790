"""Every notebook in notebooks/ executed headless (nbclient), as CI runs it; the explorer's widgets
must come up with a drawn figure (slow: a kernel per notebook).
"""

import base64
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUDGET = 120  # seconds per notebook (CI's limit)


@pytest.fixture(scope="module")
def executed():
    """Each notebook executed once, by path (the tests below share the runs)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    done = {}
    with pytest.MonkeyPatch.context() as env:
        # the kernel inherits this environment: the checkout's simsgd, one BLAS thread, no display
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.setenv("OMP_NUM_THREADS", "1")
        env.setenv("MPLBACKEND", "Agg")
        for path in NOTEBOOKS:
            notebook = nbformat.read(path, as_version=4)
            start = time.monotonic()
            nbclient.NotebookClient(
                notebook,
                timeout=BUDGET,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
            done[path] = notebook, time.monotonic() - start
    return done


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_headless(path, executed):
    notebook, seconds = executed[path]
    assert seconds < BUDGET
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_the_explorer_notebook_shows_its_widgets_with_a_figure(executed):
    pytest.importorskip("ipywidgets")
    notebook, _ = executed[ROOT / "notebooks" / "explore_tau_rank.ipynb"]
    views = [
        o
        for c in notebook.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 1
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {
        name: [m for m in state.values() if m["model_name"] == name]
        for name in ("ImageModel", "HTMLModel", "TabModel")
    }
    images = [base64.b64decode(b["data"]) for m in models["ImageModel"] for b in m.get("buffers", [])]
    assert any(
        image.startswith(b"\x89PNG") for image in images
    )  # the curves figure (the map waits for a click)
    assert any("Updated in" in m["state"].get("value", "") for m in models["HTMLModel"])
    assert models["TabModel"][0]["state"]["titles"] == ["curves", "τ × r map"]
