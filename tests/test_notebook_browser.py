"""The explorer notebook in a real browser: served by Voilà on localhost, opened in headless
Chromium, a slider moved with the keyboard; the figure must change (its image and the numbers
beside it) and must not change without it. Skipped, saying why, where no browser is installed.
"""

import importlib.util
import time

import pytest
from notebook_page import FIGURE_SRC, browser_path, figure, move_slider, page, text, voila, wait_for_change

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _missing():
    if browser_path() is None:
        return "no Chromium installed (Debian: apt-get install chromium)"
    for module, extra in (("voila", "notebooks"), ("playwright", "test"), ("ipywidgets", "notebooks")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install '.[{extra}]')"
    return None


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_a_slider_moved_in_the_browser_redraws_the_figure():
    with voila() as url, page(url) as tab:
        src, shot = tab.evaluate(FIGURE_SRC), figure(tab).screenshot()
        numbers, status = text(tab, "simsgd-theory"), text(tab, "simsgd-status")
        assert "Theorem 4" in numbers and text(tab, "simsgd-tau").strip().endswith("10")
        time.sleep(1.5)  # the control: nothing changes by itself
        assert tab.evaluate(FIGURE_SRC) == src and text(tab, "simsgd-status") == status

        move_slider(tab, "simsgd-tau")  # τ: 10 → 11
        tab.wait_for_function(
            "document.querySelector('.simsgd-tau .widget-readout').innerText.trim() === '11'"
        )
        wait_for_change(tab, FIGURE_SRC, src)
        tab.wait_for_function(
            "s => { const t = document.querySelector('.simsgd-status').innerText;"
            " return t.startsWith('Updated in') && t !== s; }",
            arg=status,
        )
        assert figure(tab).screenshot() != shot
        after = text(tab, "simsgd-theory")
        assert after != numbers
        # only PowerSGD+ restarts: its row and Theorem 4's measurement moved, PowerSGD's did not
        row = {line.split()[0]: line for line in after.splitlines() if line.startswith("powersgd")}
        before_row = {line.split()[0]: line for line in numbers.splitlines() if line.startswith("powersgd")}
        assert row["powersgd+"] != before_row["powersgd+"] and row["powersgd"] == before_row["powersgd"]
        assert "1 run(s) made and 2 from the cache" in text(tab, "simsgd-status")
