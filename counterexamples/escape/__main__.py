import sys

from simsgd.cli import run

from .escape_study import main

sys.exit(run(main, prog="python -m counterexamples.escape"))
