import sys

from simsgd.cli import run

from .remark2 import main

sys.exit(run(main, prog="python -m counterexamples.remark2"))
