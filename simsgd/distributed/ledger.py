"""What a communication hook sent, bucket by bucket and step by step: :class:`Ledger`.

Both DDP hooks (:func:`~simsgd.distributed.hook.powersgd_plus_hook` and the generic
:func:`~simsgd.distributed.compressor_hook.hook_for`) keep their counts here; a hook's state
class derives from it, so the counters stay public attributes of the state (as PyTorch's
``PowerSGDState.iter``).
"""

from __future__ import annotations

__all__ = ["Ledger"]


class Ledger:
    """The counters of a communication hook.

    Attributes
    ----------
    iter : int
        Iterations seen (as PyTorch's ``PowerSGDState.iter``).
    floats_sent_last_step, floats_sent_total, bytes_sent_last_step, bytes_sent_total : int
        What one node put into collectives in the last step, and in all steps.
    floats_uncompressed_last_step : int
        What a plain all-reduce would have sent in the last step.
    numel_before_compression, numel_after_compression : int
        Over compressed steps (PyTorch's ``compression_stats``).
    restarts, fallbacks, nonfinite_steps : int
        Restarts run (per bucket), failed factorisations replaced by a fallback, and steps a
        non-finite gradient was met (per bucket).
    """

    COUNTERS = (
        "iter",
        "floats_sent_last_step",
        "floats_sent_total",
        "floats_uncompressed_last_step",
        "bytes_sent_last_step",
        "bytes_sent_total",
        "numel_before_compression",
        "numel_after_compression",
        "restarts",
        "fallbacks",
        "nonfinite_steps",
    )

    def reset_ledger(self):
        for name in self.COUNTERS:
            setattr(self, name, 0)
        self._buckets: dict[int, dict] = {}  # this step's record per bucket (see stats())
        self._last_buckets: dict[int, dict] = {}

    def count(self, index, floats, element_size, uncompressed, kind):
        """Bucket ``index`` sends ``floats`` of ``element_size`` bytes this step (``uncompressed``: a
        plain all-reduce's count; ``kind``: "all-reduce", "power", "fixed", "restart", …).
        """
        record = self._buckets.setdefault(
            index,
            dict(floats=0, bytes=0, floats_uncompressed=0, relative_error=None, relative_error_local=None),
        )
        record["floats"] += floats
        record["bytes"] += floats * element_size
        record["floats_uncompressed"] += uncompressed
        record["kind"] = kind

    def note(self, index, **fields):
        """Set fields of bucket ``index``'s record of this step (e.g. ``relative_error``)."""
        self._buckets.setdefault(index, {}).update(fields)

    def end_bucket(self, bucket):
        """PyTorch's ``maybe_increase_iter``, closing the step's counts on the last bucket."""
        if not bucket.is_last():
            return
        self.iter += 1
        self._last_buckets, self._buckets = self._buckets, {}
        records = self._last_buckets.values()
        self.floats_sent_last_step = sum(r["floats"] for r in records)
        self.bytes_sent_last_step = sum(r["bytes"] for r in records)
        self.floats_uncompressed_last_step = sum(r["floats_uncompressed"] for r in records)
        self.floats_sent_total += self.floats_sent_last_step
        self.bytes_sent_total += self.bytes_sent_last_step
        compressed = [r for r in records if r["kind"] not in ("all-reduce", "nonfinite")]
        self.numel_before_compression += sum(r["floats_uncompressed"] for r in compressed)
        self.numel_after_compression += sum(r["floats"] for r in compressed)

    def counters(self) -> dict:
        return {name: getattr(self, name) for name in self.COUNTERS}

    def stats(self) -> dict:
        """What the last step sent and how well it compressed; cheap, so it can stay on.

        Returns
        -------
        dict
            The counters, and ``buckets``: per bucket index of the last step, ``floats``,
            ``bytes``, ``floats_uncompressed``, ``kind`` ("all-reduce", "power", "fixed",
            "restart", "nonfinite", or the compressor's name), ``relative_error`` =
            ‖Δ̄ − Δ̂‖²/‖Δ̄‖² over the bucket's compressed matrices (where Δ̄ is known, else None)
            and ``relative_error_local`` = ‖Δ^{(i)} − Δ̂‖²/‖Δ^{(i)}‖² on this node (what the error
            memory keeps; with error feedback, else None).
        """
        out = self.counters()
        out["buckets"] = {k: dict(v) for k, v in self._last_buckets.items()}
        return out

    def compression_stats(self):
        """As PyTorch's: (numel before / numel after, numel before, numel after), over all
        compressed steps; "after" counts every float sent, restarts included.
        """
        before, after = self.numel_before_compression, self.numel_after_compression
        return (before / after if after > 0 else 0, before, after)
