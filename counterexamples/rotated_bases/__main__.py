import sys

from simsgd.cli import run

from .rotated_bases import main

sys.exit(run(main, prog="python -m counterexamples.rotated_bases"))
