import sys

from simsgd.cli import run

from .any_optimizer import main

sys.exit(run(main, prog="python -m counterexamples.any_optimizer"))
