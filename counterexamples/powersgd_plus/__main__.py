import sys

from simsgd.cli import run

from .powersgd_plus import main

sys.exit(run(main, prog="python -m counterexamples.powersgd_plus"))
