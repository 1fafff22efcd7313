"""SIGKILL of the test host during an OUTPUT stream, then replay until it completes.

The feed is ``CHUNKS`` chunks of ``PER_CHUNK`` records, each record with a unique
``id`` and the number of its ``chunk``; ``out_sql`` writes them with ``workers 2``
into PostgreSQL, MariaDB and a SQLite file (two writers on one file).
The host is killed with SIGKILL ``KILLS`` times at random moments (some at a random
delay after the start, during Init or the re-sent chunks, the others once the
table has grown by a random amount, i.e. mid-stream; either way before the run has
written half of what it has to, so a fast writer cannot finish the feed first). After every kill:

* atomicity: one flush is one transaction, so the rows of any chunk are all there
  or none are (grouped by ``chunk``: every count is 0 or a whole number of chunks);

then the whole feed is delivered again, as Fluent Bit's filesystem storage would
re-deliver every chunk it still holds after a crash (at worst all of them: a chunk
is deleted only after its flush returned FLB_OK, which the kill may have beaten).

* With ``unique_key id`` (idempotent mode) the final table holds every id exactly
  once: count == N and the key set is exactly 0..N-1.
* Without ``unique_key`` delivery is at-least-once: every id is there (count >= N),
  and each re-delivered chunk that had already committed is written again, whole.
  The plugin cannot tell a re-delivery from new data without a key; that is what
  ``unique_key`` is for.

Proving the checks can fail: ``split-commit`` makes the writer commit after every
50-row batch (no longer one transaction per flush) and the atomicity check fails
after a kill; ``no-dedup`` creates the table without the unique key and writes plain
INSERTs, and the exactly-once check fails. ``test_each_sabotage_fails_its_check``
runs each one and expects that check's own message, so a sabotage that stops
sabotaging (a renamed function it patches, say) fails the suite.
SQLite without ``columns`` (the default shape, whose rows come from C) has its own
at-least-once test, and ``c-drops-row`` (the C path losing a record) shows it can fail.
``FLBSQL_CHAOS_SABOTAGE=<name>`` runs the two tests above under one sabotage, by hand.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests import fix_db
from tests.behaviour.output_helpers import qt
from tests.fix_db import unique_table
from tests.fix_host import Host, event_v2, props, write_frames

pytestmark = [pytest.mark.chaos, pytest.mark.shim]

CHUNKS = int(os.environ.get("FLBSQL_OUTPUT_KILL_CHUNKS", "200"))
PER_CHUNK = 500
N = CHUNKS * PER_CHUNK
KILLS = int(os.environ.get("FLBSQL_OUTPUT_KILLS", "8"))
SABOTAGE = os.environ.get("FLBSQL_CHAOS_SABOTAGE", "")

# Deliberate bugs, injected through sitecustomize, to show the checks can fail.
SABOTAGE_CODE = {
    "split-commit": """
        import flbsql.output.batching as b
        _attempt = b.Savepoints.attempt
        def attempt(self, write, rows):
            err = _attempt(self, write, rows)
            if err is None:
                self.cur.connection.commit()  # BUG on purpose: a flush is no longer atomic
            return err
        b.Savepoints.attempt = attempt
    """,
    "no-dedup": """
        import flbsql.dialects.sql as s
        from flbsql.dialects import mysql, postgresql, sqlite
        _create = s.create_table
        s.create_table = lambda d, t, c, unique=(): _create(d, t, c, ())  # BUG on purpose
        for cls in (postgresql.PostgreSQLDialect, mysql.MySQLDialect, sqlite.SQLiteDialect):
            cls.upsert = lambda self, cur, t, cols, rows, key, update, types=None: (
                self.bulk_insert(cur, t, cols, rows, types))
    """,
    "c-drops-row": """
        import flbsql.dialects.sqlite as q
        _encode = q.SQLiteDialect.encode_chunk
        def encode_chunk(self, *args, **kwargs):
            got = _encode(self, *args, **kwargs)
            if got is None:
                return None
            rows, n = got
            return list(rows)[:-1], n - 1  # BUG on purpose: the C path loses a record
        q.SQLiteDialect.encode_chunk = encode_chunk
    """,
}
# sabotage -> (unique_key?, the start of the message of the check it must fail)
SABOTAGE_CAUGHT_BY = {
    "split-commit": (False, "chunks written in part"),
    "no-dedup": (True, "chunks written twice with unique_key"),
}


@pytest.fixture(
    params=[
        pytest.param("pg_db", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("mysql_db", marks=pytest.mark.mysql, id="mysql"),
        pytest.param("sqlite_db", marks=pytest.mark.sqlite, id="sqlite"),
    ]
)
def db(request: pytest.FixtureRequest) -> fix_db.TestDB:
    """The session database of each server dialect, and a SQLite file."""
    found: fix_db.TestDB = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The feed: CHUNKS frames of PER_CHUNK records with ids 0..N-1."""
    path = tmp_path_factory.mktemp("feed") / "frames.bin"
    return write_frames(
        path,
        (
            b"".join(
                event_v2(
                    {"id": c * PER_CHUNK + i, "chunk": c, "msg": f"record {i} of {c}"},
                    sec=1_700_000_000 + c,
                    nsec=i * 1000,
                )
                for i in range(PER_CHUNK)
            )
            for c in range(CHUNKS)
        ),
    )


@dataclass
class Table:
    """What the test reads back: per-chunk counts, total rows, ids."""

    db: fix_db.TestDB
    name: str
    default_shape: bool = False  # tag, time, the record as JSON in `data` (SQLite)
    _conn: Any = field(default=None, repr=False)

    def _col(self, key: str) -> str:
        if self.default_shape:
            return f"json_extract({qt(self.db, 'data')}, '$.{key}')"
        return qt(self.db, key)

    def _cur(self) -> Any:
        if self._conn is None:
            self._conn = self.db.connect()
        return self._conn.cursor()

    def exists(self) -> bool:
        """The output has created the table (a kill may come before it does)."""
        cur = self._cur()
        if self.db.dialect == "sqlite":
            cur.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (self.name,)
            )
            return int(cur.fetchone()[0]) > 0
        schema = "DATABASE()" if self.db.dialect == "mysql" else "CURRENT_SCHEMA"
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            f"WHERE table_schema = {schema} AND table_name = %s",
            (self.name,),
        )
        return int(cur.fetchone()[0]) > 0

    def rows(self) -> int:
        """Committed rows (0 while the table does not exist yet)."""
        if not self.exists():
            return 0
        cur = self._cur()
        cur.execute(f"SELECT COUNT(*) FROM {qt(self.db, self.name)}")
        return int(cur.fetchone()[0])

    def per_chunk(self) -> dict[int, int]:
        """chunk -> rows of that chunk (none while the table does not exist yet)."""
        if not self.exists():
            return {}
        cur = self._cur()
        cur.execute(
            f"SELECT {self._col('chunk')}, COUNT(*) FROM {qt(self.db, self.name)} "
            f"GROUP BY {self._col('chunk')}"
        )
        return {int(c): int(n) for c, n in cur.fetchall()}

    def ids(self) -> list[int]:
        """Every stored id (with repeats)."""
        cur = self._cur()
        cur.execute(f"SELECT {self._col('id')} FROM {qt(self.db, self.name)}")
        return [int(r[0]) for r in cur.fetchall()]

    def close(self) -> None:
        """Drop the polling connection."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def sabotage_env(tmp_path: Any, sabotage: str) -> dict[str, str]:
    """Environment of the host: empty, or a sitecustomize that injects ``sabotage``."""
    if not sabotage:
        return {}
    d = tmp_path / "sabotage"
    d.mkdir()
    (d / "sitecustomize.py").write_text(textwrap.dedent(SABOTAGE_CODE[sabotage]))
    return {"PYTHONPATH": str(d), "FLBSQL_T_SABOTAGE": sabotage}


@pytest.fixture
def env(tmp_path: Any) -> dict[str, str]:
    """Environment of the host: empty, or the sabotage asked for by FLBSQL_CHAOS_SABOTAGE."""
    return sabotage_env(tmp_path, SABOTAGE)


def _start(
    host: Host,
    db: fix_db.TestDB,
    table: str,
    frames: Any,
    env: dict[str, str],
    unique: bool,
    log: Any,
    default_shape: bool = False,
) -> subprocess.Popen[str]:
    p: dict[str, Any] = {
        "url": db.url,
        "table": table,
        "workers": 2,
        "retry_limit": "no_limits",
    }
    if not default_shape:
        p["columns"] = "id=id:int,chunk=chunk:int"
    if unique:
        p["unique_key"] = "id"
    if env.get("FLBSQL_T_SABOTAGE") == "split-commit":
        p["batch_rows"] = 50
    return host.start(
        "--flush",
        "0.05",  # kills land from 0.05 s on: chunks must be in flight by then
        "--grace",
        "30000",
        "--retry-wait",
        "100",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(**p),
        env=env,
        stderr=log,
    )


def _check_atomic(table: Table, unique: bool, when: str) -> dict[int, int]:
    counts = table.per_chunk()
    partial = {c: n for c, n in counts.items() if n % PER_CHUNK}
    assert not partial, f"{when}: chunks written in part (chunk: rows): {partial}"
    if unique:
        over = {c: n for c, n in counts.items() if n != PER_CHUNK}
        assert not over, f"{when}: chunks written twice with unique_key: {over}"
    return counts


def _kill_and_replay(
    host: Host,
    db: fix_db.TestDB,
    frames: Any,
    env: dict[str, str],
    tmp_path: Any,
    unique: bool,
    default_shape: bool = False,
) -> tuple[Table, list[dict[str, Any]], dict[str, Any]]:
    """KILLS runs killed at random moments, each followed by the atomicity check; a replay."""
    table = Table(db, unique_table("okill"), default_shape)
    rng = random.Random(f"{db.dialect}-{unique}")
    kills: list[dict[str, Any]] = []
    try:
        for k in range(KILLS):
            before = table.rows()
            with open(tmp_path / f"host{k}.log", "w") as log:
                proc = _start(host, db, table.name, frames, env, unique, log, default_shape)
            start = time.monotonic()
            # never wait for more than half of what this run has to write (all of the
            # feed without a key, what is missing with one): a fast writer finishes
            # the feed within the random delay, and a kill after the end tests nothing
            half = before + (N - before * unique) // 2
            if k % 3 == 0:  # any moment: Init, re-sent chunks, new ones
                mode = "time"
                deadline = start + rng.uniform(0.05, 0.8)
                while proc.poll() is None and time.monotonic() < deadline:
                    if table.rows() >= half:
                        break
                    time.sleep(0.005)
            else:  # once this run has added a random share of the feed
                mode = "progress"
                target = min(before + int(rng.uniform(0.02, 0.10) * N), half)
                while proc.poll() is None and table.rows() < target:
                    if time.monotonic() - start > 60:
                        break
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.02))
            proc.kill()
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()
            finished = proc.returncode == 0
            counts = _check_atomic(table, unique, f"after kill {k + 1}")
            after = sum(counts.values())
            kills.append(
                {
                    "mode": mode,
                    "after_s": round(time.monotonic() - start, 2),
                    "rows_before": before,
                    "rows_after": after,
                    "finished_first": finished,
                    "keyed": unique,
                }
            )
        with open(tmp_path / "final.log", "w") as log:
            proc = _start(host, db, table.name, frames, env, unique, log, default_shape)
            out, _ = proc.communicate(timeout=180)
        stats: dict[str, Any] = next(
            (json.loads(ln) for ln in reversed(out.splitlines()) if ln.startswith("{")), {}
        )
        assert proc.returncode == 0, (tmp_path / "final.log").read_text()[-3000:]
        return table, kills, stats
    except BaseException:
        table.close()
        raise


def _mid_stream(kills: list[dict[str, Any]]) -> int:
    """Kills that landed while the run was adding rows, before it had sent the whole feed."""
    return sum(
        1
        for k in kills
        if not k["finished_first"]
        and 0 < k["rows_after"] - k["rows_before"] < N - k["rows_before"] * k["keyed"]
    )


def test_sigkill_during_idempotent_output_then_replay_gives_every_id_once(
    host, db, frames, env, tmp_path
):
    table, kills, stats = _kill_and_replay(host, db, frames, env, tmp_path, unique=True)
    try:
        counts = _check_atomic(table, True, "after the final replay")
        ids = table.ids()
    finally:
        table.close()
    print(
        f"\n{db.dialect} unique_key: {len(kills)} kills {kills}; final rows={len(ids)} "
        f"distinct={len(set(ids))} stats={stats}"
    )
    assert stats["flush_error"] == 0 and stats["chunks_dropped"] == 0
    assert stats["flush_ok"] == CHUNKS
    assert len(ids) == N, f"{len(ids) - len(set(ids))} duplicates"
    assert set(ids) == set(range(N))
    assert set(counts) == set(range(CHUNKS))
    assert not any(k["finished_first"] for k in kills), "a run ended before its kill"
    assert _mid_stream(kills) >= KILLS // 2, f"too few kills landed mid-stream: {kills}"


def test_sigkill_without_unique_key_is_at_least_once(host, db, frames, env, tmp_path):
    """Without a key, re-delivered chunks that had committed are written again, whole."""
    _check_at_least_once(*_kill_and_replay(host, db, frames, env, tmp_path, unique=False))


@pytest.mark.sqlite
def test_sigkill_during_sqlites_default_shape_is_at_least_once_in_whole_chunks(
    host, sqlite_db, frames, env, tmp_path
):
    """No ``columns``: tag, time and the record as JSON, which SQLite gets from C
    (``csrc/pgcopy.c`` ``flbsql_lines_iso``); the same whole-chunk guarantee."""
    _check_at_least_once(
        *_kill_and_replay(host, sqlite_db, frames, env, tmp_path, unique=False, default_shape=True)
    )


@pytest.mark.sqlite
def test_the_default_shape_check_catches_a_c_path_that_loses_a_record(
    host, sqlite_db, frames, tmp_path
):
    """The test above can fail on that path: a C encoder that drops a record is caught."""
    env = sabotage_env(tmp_path, "c-drops-row")
    with pytest.raises(AssertionError, match="chunks written in part") as caught:
        table, _, _ = _kill_and_replay(
            host, sqlite_db, frames, env, tmp_path, unique=False, default_shape=True
        )
        table.close()
    print(f"\nsqlite default shape, c-drops-row: {str(caught.value).splitlines()[0][:120]}")


def _check_at_least_once(table: Table, kills: list[dict[str, Any]], stats: dict[str, Any]) -> None:
    db = table.db
    try:
        counts = _check_atomic(table, False, "after the final replay")
        ids = table.ids()
    finally:
        table.close()
    duplicates = len(ids) - len(set(ids))
    print(
        f"\n{db.dialect} no key: {len(kills)} kills {kills}; final rows={len(ids)} "
        f"duplicates={duplicates} chunks written more than once="
        f"{sum(1 for n in counts.values() if n > PER_CHUNK)} stats={stats}"
    )
    assert stats["flush_error"] == 0 and stats["chunks_dropped"] == 0
    assert set(ids) == set(range(N)), "a record was lost"
    assert len(ids) >= N
    # each duplicate is a whole chunk delivered again: the ones committed before a kill
    assert duplicates == sum(counts.values()) - N
    assert duplicates == sum(n - PER_CHUNK for n in counts.values())
    # the final replay sends every chunk once more: all that had committed is doubled
    assert duplicates == kills[-1]["rows_after"]
    assert _mid_stream(kills) >= KILLS // 2, f"too few kills landed mid-stream: {kills}"


@pytest.mark.parametrize("sabotage", sorted(SABOTAGE_CAUGHT_BY))
def test_each_sabotage_fails_its_check(host, db, frames, tmp_path, sabotage):
    """The checks above can fail: each deliberate bug is caught, by the check meant for it."""
    unique, message = SABOTAGE_CAUGHT_BY[sabotage]
    env = sabotage_env(tmp_path, sabotage)
    with pytest.raises(AssertionError, match=message) as caught:
        table, _, _ = _kill_and_replay(host, db, frames, env, tmp_path, unique)
        try:
            _check_atomic(table, unique, "after the final replay")
        finally:
            table.close()
    print(f"\n{db.dialect} {sabotage}: {str(caught.value).splitlines()[0]}")
