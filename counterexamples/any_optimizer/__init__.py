"""Theorem 1 under Adam and AdamW: eq. (10) beside the shifted construction; see any_optimizer.py."""
