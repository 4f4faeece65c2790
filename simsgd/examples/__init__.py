"""Runnable examples (need torch): ``python -m simsgd.examples.train --world-size 4``."""
