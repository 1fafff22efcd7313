"""The ``extern "Python"`` functions the C shim calls; nothing else happens here.

Each function turns C arguments into Python ones, calls the plugin object, and
turns the result (or any exception) into an explicit return code. No exception
ever reaches cffi, whose default would be a silent 0 (= FLB_ERROR, a dropped
chunk; docs/fluent-bit-abi.md T5). ``onerror`` is a last resort that logs to stderr.

Handles: Init stores ``ffi.new_handle(plugin)`` in the instance context and keeps
the handle referenced here until Exit.
"""

from __future__ import annotations

import itertools
import sys
import threading
import traceback
from typing import Any

from flbsql import __version__
from flbsql.errors import FlbSqlError
from flbsql.outcome import Outcome, to_outcome
from flbsql.plugin.log import callback_scope, instance_logger
from flbsql.settings import parse

__all__ = ["install"]

KIND_INPUT = 1
KIND_OUTPUT = 2
EV_PAUSE, EV_RESUME, EV_PRE_EXIT, EV_EXIT = 1, 2, 3, 4

_live: dict[int, Any] = {}  # id(handle) -> handle, kept alive until Exit
_live_lock = threading.Lock()
_instance_no = itertools.count(1)  # module globals are shared by every instance (T10)


def _last_resort(exc_type: Any, exc: Any, tb: Any) -> None:
    sys.stderr.write("[flbsql] uncaught in a plugin callback:\n")
    traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    sys.stderr.flush()


def _getter(ffi: Any, lib: Any, kind_no: int, api: Any, ins: Any) -> Any:
    def get(key: str) -> str | None:
        raw = lib.shim_get_property(kind_no, api, ins, key.encode())
        if raw == ffi.NULL:
            return None
        value: str = ffi.string(raw).decode("utf-8", "replace")
        return value

    return get


def _counters(ffi: Any, lib: Any, api: Any, ins: Any) -> Any:
    out = ffi.new("long long[3]")

    def read() -> tuple[int, int, int] | None:
        if lib.shim_input_counters(api, ins, out) != 0:
            return None
        return int(out[0]), int(out[1]), int(out[2])

    return read


def _init(ffi: Any, lib: Any, kind_no: int, api: Any, ins: Any, handle_out: Any) -> int:
    log = instance_logger(lib, kind_no, api, ins, f"{'in' if kind_no == 1 else 'out'}_sql")
    with callback_scope(log):
        return _init_scoped(ffi, kind_no, api, ins, handle_out, log, lib)


def _init_scoped(
    ffi: Any, kind_no: int, api: Any, ins: Any, handle_out: Any, log: Any, lib: Any
) -> int:
    log.info(
        "flbsql %s on Python %s (%s), instance %d of this process",
        __version__,
        sys.version.split()[0],
        sys.prefix,
        next(_instance_no),
    )
    try:
        get = _getter(ffi, lib, kind_no, api, ins)
        plugin: Any
        if kind_no == KIND_INPUT:
            from flbsql.plugin.input import InputPlugin

            plugin = InputPlugin(parse("input", get), log, _counters(ffi, lib, api, ins))
        else:
            from flbsql.plugin.output import OutputPlugin

            plugin = OutputPlugin(parse("output", get), log)
            plugin.choose_workers(lambda want: int(lib.shim_output_workers(ins, want)))
    except FlbSqlError as exc:
        log.error("init failed: %s", exc)
        return int(Outcome.ERROR)
    except BaseException:
        log.error("init failed:\n%s", traceback.format_exc())
        return int(Outcome.ERROR)
    handle = ffi.new_handle(plugin)
    with _live_lock:
        _live[id(plugin)] = handle
    handle_out[0] = handle
    return int(Outcome.OK)


def _release(plugin: Any) -> None:
    with _live_lock:
        _live.pop(id(plugin), None)


def install(ffi: Any, lib: Any, kind: str) -> None:
    """Define the callbacks of one library (``kind`` 'input' or 'output')."""
    if kind == "output":
        _install_output(ffi, lib)
    else:
        _install_input(ffi, lib)


def _install_output(ffi: Any, lib: Any) -> None:
    @ffi.def_extern(error=int(Outcome.ERROR), onerror=_last_resort)
    def py_output_init(api: Any, ins: Any, handle_out: Any) -> int:
        return _init(ffi, lib, KIND_OUTPUT, api, ins, handle_out)

    @ffi.def_extern(error=int(Outcome.RETRY), onerror=_last_resort)
    def py_output_flush(ctx: Any, data: Any, size: int, tag: Any) -> int:
        plugin = ffi.from_handle(ctx)
        with callback_scope(plugin.log):
            if not plugin.thread_noted:
                plugin.note_thread(bool(lib.shim_flush_on_engine()))
            try:
                return int(
                    plugin.flush(ffi.buffer(data, size), ffi.string(tag).decode("utf-8", "replace"))
                )
            except BaseException as exc:  # the plugin reports its own failures: this is a bug
                outcome = to_outcome(exc)
                plugin.log.error(
                    "flush failed, returning %s:\n%s", outcome.name, traceback.format_exc()
                )
                return int(outcome)

    @ffi.def_extern(error=int(Outcome.OK), onerror=_last_resort)
    def py_output_exit(ctx: Any) -> int:
        plugin = ffi.from_handle(ctx)
        with callback_scope(plugin.log):
            try:
                plugin.close()
            except BaseException:
                plugin.log.error("exit failed:\n%s", traceback.format_exc())
            finally:
                _release(plugin)
        return int(Outcome.OK)


def _install_input(ffi: Any, lib: Any) -> None:
    @ffi.def_extern(error=int(Outcome.ERROR), onerror=_last_resort)
    def py_input_init(api: Any, ins: Any, handle_out: Any) -> int:
        return _init(ffi, lib, KIND_INPUT, api, ins, handle_out)

    @ffi.def_extern(error=-1, onerror=_last_resort)
    def py_input_collect(ctx: Any, data_out: Any, size_out: Any) -> int:
        plugin = ffi.from_handle(ctx)
        with callback_scope(plugin.log):
            return _collect(ffi, lib, plugin, data_out, size_out)

    @ffi.def_extern(error=-1, onerror=_last_resort)
    def py_input_cleanup(ctx: Any) -> int:
        plugin = ffi.from_handle(ctx)
        with callback_scope(plugin.log):
            try:
                plugin.commit()  # Fluent Bit appended the batch: the position may move
                return 0
            except BaseException:
                plugin.log.error("position commit failed:\n%s", traceback.format_exc())
                return -1

    @ffi.def_extern(onerror=_last_resort)
    def py_input_event(ctx: Any, event: int) -> None:
        plugin = ffi.from_handle(ctx)
        with callback_scope(plugin.log):
            _event(plugin, event)


def _collect(ffi: Any, lib: Any, plugin: Any, data_out: Any, size_out: Any) -> int:
    """One input callback: hand a malloc'd copy of the batch to Fluent Bit."""
    try:
        pieces: list[bytes] = plugin.collect()
        size = sum(len(p) for p in pieces)
        if size:
            buf = lib.shim_alloc(size)
            if buf == ffi.NULL:
                plugin.abort_batch()
                return -1
            at = ffi.cast("char *", buf)
            for piece in pieces:  # straight into Fluent Bit's buffer: one copy of the batch
                ffi.memmove(at, piece, len(piece))
                at += len(piece)
            data_out[0] = buf
            size_out[0] = size
        return 0
    except BaseException:
        plugin.log.error("collect failed:\n%s", traceback.format_exc())
        return -1


def _event(plugin: Any, event: int) -> None:
    """Pause, resume, pre-exit and exit of an input instance."""
    try:
        if event in (EV_PAUSE, EV_PRE_EXIT):
            plugin.pause()
        elif event == EV_RESUME:
            plugin.resume()
        elif event == EV_EXIT:
            try:
                plugin.close()
            finally:
                _release(plugin)
    except BaseException:
        plugin.log.error("event %d failed:\n%s", event, traceback.format_exc())
