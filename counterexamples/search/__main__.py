import sys

from simsgd.cli import run

from .search import main

sys.exit(run(main, prog="python -m counterexamples.search"))
