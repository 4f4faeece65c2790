"""Remark 2: lighter PowerSGD+ restarts; see remark2.py."""
