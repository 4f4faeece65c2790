"""Escape from Theorem 1's lock in floating point; see escape_study.py."""
