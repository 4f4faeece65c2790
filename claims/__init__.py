"""The claims ledger (``claims/ledger.toml``): every statement of the paper and every finding of the
project, with its verdict, scope, evidence, control, sensitivity and independent re-derivation.
``python -m claims --quick --out DIR`` replays them; ``python -m claims --render`` writes
docs/claims.md and the README's findings from them.
"""
