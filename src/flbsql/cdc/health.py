"""The CDC slot's health, reported: a log line every 30 s, and the slot's gauges.

The worker reads the slot's row (:meth:`~flbsql.cdc.postgresql.PgCdc.slot_health`)
every :data:`~flbsql.cdc.worker.HEALTH_INTERVAL`; :func:`report_health` logs it (a
warning when the WAL kept for the slot grows: docs/cdc.md) and sets
``slot_retained_bytes`` and ``cdc_lag_bytes`` (docs/metrics.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flbsql.text import show_bytes

if TYPE_CHECKING:
    import logging

    from flbsql.cdc.postgresql import SlotHealth
    from flbsql.metrics import Metrics
    from flbsql.settings import InputConfig

__all__ = ["report_health"]


def report_health(
    cfg: InputConfig,
    h: SlotHealth,
    lag: float | None,
    counters: dict[str, int],
    metrics: Metrics | None,
    log: logging.Logger,
) -> None:
    """Log the slot's retention (a warning before trouble); set the slot's gauges."""
    if metrics is not None:
        metrics.set("slot_retained_bytes", h.retained_bytes)
        metrics.set("cdc_lag_bytes", h.pending_bytes)
    warn = cfg.slot_warn_bytes
    msg = (
        "slot %s: wal_status=%s retained=%s pending=%s safe_wal_size=%s "
        "lag=%s; changes=%d snapshot_rows=%d"
    )
    args = (
        cfg.slot,
        h.wal_status,
        show_bytes(h.retained_bytes),
        show_bytes(h.pending_bytes),
        show_bytes(h.safe_wal_size),
        f"{lag:.2f}s" if lag is not None else "n/a",
        counters["changes"],
        counters["snapshot_rows"],
    )
    if (
        h.wal_status in ("unreserved", "extended")
        or h.retained_bytes > warn
        or (h.safe_wal_size is not None and h.safe_wal_size < warn)
    ):
        log.warning(msg + " (WAL kept for the slot is growing; see docs/cdc.md)", *args)
    else:
        log.info(msg, *args)
