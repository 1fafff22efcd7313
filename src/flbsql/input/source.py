"""The source skeleton: what the input plugin needs from a source of events, and its choice.

A :class:`BatchSource` is chosen by ``mode``: ``poll``
(:class:`flbsql.input.poll.PollSource`, keyset reads) or ``cdc`` (logical decoding,
:class:`flbsql.cdc.source.CdcSource`). Fluent Bit calls the input once a second, fixed
(docs/fluent-bit-abi.md §9), so a source must have its batch ready: database I/O belongs on the
source's own thread, which hands encoded events over through the bounded
:class:`~flbsql.input.handoff.ChunkQueue`, never in :meth:`BatchSource.next_batch`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["BatchSource"]


@runtime_checkable
class BatchSource(Protocol):
    """What the input plugin needs from a source of events.

    Call order, all from the input's thread: ``landed(n)``, ``next_batch()``; if it
    returned events, either ``commit()`` (Fluent Bit copied them into its ring buffer:
    the cleanup callback) or ``rewind()`` (they never reached Fluent Bit); then
    ``landed(n)`` and ``next_batch()`` again. ``pause()``/``resume()`` may come at any
    time; ``landed(n)`` then ``close()`` once, last.
    """

    batch_rows: int
    """Events in the batch the last :meth:`next_batch` returned (0 after [])."""

    def next_batch(self) -> list[bytes]:
        """The batch: pieces of concatenated Fluent Bit events (msgpack), [] when nothing is due.

        The caller copies the pieces straight into Fluent Bit's buffer (one copy of the
        batch, not two). Must return within milliseconds. The batch is *pending* until
        ``commit()`` or ``rewind()``; a ``next_batch()`` that finds a batch still
        pending must treat it as not delivered (rewind) before handing out more.
        """
        ...

    def commit(self) -> None:
        """Fluent Bit copied the pending batch into its ring buffer: read on after it.

        Its position is stored only once :meth:`landed` says so.
        """
        ...

    def landed(self, batches: int) -> None:
        """The oldest ``batches`` committed batches are in Fluent Bit's chunks now.

        Their positions may be stored (:mod:`flbsql.input.intake`); a crash re-delivers
        the rest.
        """
        ...

    def rewind(self) -> None:
        """The pending batch was not delivered: resume at the last committed end."""
        ...

    def pause(self) -> None:
        """Stop reading from the database (Fluent Bit's buffers are full)."""
        ...

    def resume(self) -> None:
        """Read again after :meth:`pause`."""
        ...

    def connection_stats(self) -> dict[str, int]:
        """The connection counters for the metrics (the pool's, or CDC's own)."""
        ...

    def close(self) -> None:
        """Stop threads, store the committed position, release resources."""
        ...
