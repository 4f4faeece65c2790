"""The explorer notebook as a user sees it: served by Voilà on localhost, opened in headless
Chromium (Debian's /usr/bin/chromium driven by Playwright's Python package; no browser download).

Used by tests/test_notebook_browser.py, and run as a script to make the screenshots in docs/::

    python -m tests.notebook_page --out docs

which opens the page, waits for the curves tab, runs the τ × r map at its defaults and writes
``notebook-curves.png`` and ``notebook-map.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from simsgd.explore import PROBLEMS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explore_tau_rank.ipynb"
CHROMIUM = "/usr/bin/chromium"
# Headless as root, and nothing that reaches out of this machine (its network is closed).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1700, "height": 1100}


def browser_path() -> str | None:
    """The Chromium binary to drive, or None where none is installed."""
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila(notebook: Path = NOTEBOOK, timeout: float = 90.0):
    """Serve ``notebook`` with Voilà on a free localhost port; yields its URL. Stops it (and the
    kernels it started) on exit.
    """
    port = _free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"voila exited with {server.returncode}: {server.stderr.read().decode()[-2000:]}"
                )
            try:  # listening is enough: a request for the page would start a kernel of its own
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"voila did not answer on {url} within {timeout:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)  # Voilà shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def page(url: str, timeout_ms: float = 120_000):
    """``url`` open in headless Chromium, the explorer's first figure drawn; yields the Playwright page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path(), args=FLAGS)
        try:
            tab = browser.new_page(viewport=VIEWPORT)
            tab.set_default_timeout(timeout_ms)
            tab.goto(url, timeout=timeout_ms)
            figure(tab).wait_for(state="visible")
            tab.wait_for_function(
                "document.querySelector('.simsgd-status').innerText.startsWith('Updated in')"
            )
            yield tab
        finally:
            browser.close()


def figure(tab, name: str = "simsgd-figure"):
    """The <img> of the curves figure (or of the map: ``name="simsgd-map"``)."""
    return tab.locator(f"img.{name}, .{name} img").first


def text(tab, name: str) -> str:
    return tab.locator(f".{name}").first.inner_text()


def move_slider(tab, name: str, presses: int = 1) -> None:
    """Move the slider with class ``name`` by ``presses`` steps right, with the keyboard on its handle."""
    handle = tab.locator(f".{name} .noUi-handle").first
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")


def wait_for_change(tab, selector_js: str, before: str, timeout_s: float = 120.0) -> str:
    """Poll the JavaScript expression ``selector_js`` until it differs from ``before``; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = tab.evaluate(selector_js)
        if now != before:
            return now
        time.sleep(0.2)
    raise TimeoutError(f"{selector_js} stayed {before!r} for {timeout_s:.0f} s")


FIGURE_SRC = "document.querySelector('.simsgd-figure img, img.simsgd-figure').src"
MAP_SRC = "(document.querySelector('.simsgd-map img, img.simsgd-map') || {}).src || ''"


def screenshots(out: Path) -> list[Path]:
    """Both tabs as PNG files in ``out``: the curves at the defaults (ψ, aligned basis), and the
    τ × r map of PowerSGD+ on the general counterexample (r up to 4) at its default τ values.
    """
    out.mkdir(parents=True, exist_ok=True)
    with voila() as url, page(url) as tab:
        curves = out / "notebook-curves.png"
        tab.screenshot(path=str(curves), full_page=True)
        status = text(tab, "simsgd-status")
        tab.locator(".simsgd-problem select").select_option(label=PROBLEMS["general"])
        tab.wait_for_function(
            "s => { const t = document.querySelector('.simsgd-status').innerText;"
            " return t.startsWith('Updated in') && t !== s; }",
            arg=status,
        )
        tab.locator(".lm-TabBar-tabLabel", has_text="τ × r map").first.click()
        before = tab.evaluate(MAP_SRC)
        tab.locator(".simsgd-map-run").first.click()
        wait_for_change(tab, MAP_SRC, before, timeout_s=600)
        tab.wait_for_function("document.querySelector('.simsgd-status').innerText.startsWith('Map of')")
        tab.locator(".simsgd-cell").first.wait_for(state="visible")
        grid = out / "notebook-map.png"
        tab.screenshot(path=str(grid), full_page=True)
    return [curves, grid]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for notebook-curves.png and notebook-map.png"
    )
    args = parser.parse_args(argv)
    if browser_path() is None:
        print(f"no Chromium at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 1
    for path in screenshots(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
