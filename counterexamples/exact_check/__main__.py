import sys

from simsgd.cli import run

from .exact_check import main

sys.exit(run(main, prog="python -m counterexamples.exact_check"))
