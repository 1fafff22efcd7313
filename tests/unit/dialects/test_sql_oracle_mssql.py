"""Every statement the Oracle and SQL Server dialects send, through recording cursors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from flbsql.dialects import get_dialect, sql
from flbsql.errors import DisconnectError, RecordError, TerminalError, TransientError
from flbsql.output.batching import Savepoints, isolate


class RecordingCursor:
    """Records execute/executemany calls; fails rows whose first value is 'bad'."""

    def __init__(self, batch_errors=()):
        self.calls = []
        self.sizes: Any = None
        self._batch_errors = list(batch_errors)

    def execute(self, stmt, params=None):
        self.calls.append(("execute", stmt, params))

    def executemany(self, stmt, rows, **kw):
        self.calls.append(("executemany", stmt, list(rows), kw))

    def setinputsizes(self, *sizes):
        self.sizes = sizes

    def getbatcherrors(self):
        return self._batch_errors


def test_oracle_array_dml_insert_and_merge():
    d = get_dialect("oracle")
    cur: Any = RecordingCursor()
    d.bulk_insert(
        cur, d.table_sql("app.logs"), ["tag", "data"], [("a", "{}")], ["varchar2", "clob"]
    )
    assert cur.calls[0][:3] == (
        "executemany",
        'INSERT INTO "app"."logs" ("tag", "data") VALUES (:1, :2)',
        [("a", "{}")],
    )
    assert cur.sizes[0] is None and cur.sizes[1] is not None  # CLOB bound as a LOB
    d.upsert(cur, '"logs"', ["id", "v"], [(1, "x")], ["id"], update=False)
    assert cur.calls[1][1] == (
        'MERGE INTO "logs" t USING (SELECT :1 AS "id", :2 AS "v" FROM dual) s '
        'ON (t."id" = s."id") WHEN NOT MATCHED THEN INSERT ("id", "v") VALUES (s."id", s."v")'
    )


def test_oracle_batch_errors_isolate_rows_in_one_round_trip():
    d: Any = get_dialect("oracle")  # bulk_insert_partial is Oracle's own
    err = SimpleNamespace(offset=1, full_code="ORA-12899", message="value too large")
    cur: Any = RecordingCursor([err])
    failed = d.bulk_insert_partial(cur, '"t"', ["a"], [("ok",), ("long",), ("ok",)])
    assert cur.calls[0][3] == {"batcherrors": True}
    assert [(i, type(e)) for i, e in failed] == [(1, RecordError)]
    cur = RecordingCursor([SimpleNamespace(offset=0, full_code="ORA-00060", message="deadlock")])
    with pytest.raises(TransientError):
        d.bulk_insert_partial(cur, '"t"', ["a"], [("x",)])


def _ora_exc(code):
    return Exception(SimpleNamespace(full_code=code, isrecoverable=False))


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ORA-03113", DisconnectError),
        ("DPY-4011", DisconnectError),
        ("ORA-00060", TransientError),
        ("DPY-4024", TransientError),
        ("ORA-12899", RecordError),
        ("ORA-01722", RecordError),
        ("ORA-00001", RecordError),
        ("ORA-00942", TerminalError),
    ],
)
def test_oracle_classify(code, kind):
    err = get_dialect("oracle").classify(_ora_exc(code))
    assert type(err) is kind


def test_oracle_savepoints_and_limits():
    d = get_dialect("oracle")
    assert d.savepoint_sql("s1") == "SAVEPOINT s1"
    assert d.rollback_to_sql("s1") == "ROLLBACK TO SAVEPOINT s1"
    assert d.release_sql("s1") is None
    assert d.limit("SELECT 1 FROM dual", 5) == "SELECT 1 FROM dual FETCH FIRST 5 ROWS ONLY"
    assert sql.create_table(d, '"t"', [("a", "CLOB")]) == 'CREATE TABLE "t" ("a" CLOB)'


def test_mssql_values_batches_respect_1000_rows_and_2100_params():
    d = get_dialect("mssql")
    cur: Any = RecordingCursor()
    rows = [(i, "x", "y") for i in range(2500)]
    d.bulk_insert(cur, d.table_sql("dbo.logs"), ["a", "b", "c"], rows)
    sizes = [len(c[2]) // 3 for c in cur.calls]
    assert sizes == [699, 699, 699, 403]  # 2,099 parameters / 3 columns
    assert all(len(c[2]) <= 2099 for c in cur.calls)
    assert cur.calls[0][1].startswith(
        "INSERT INTO [dbo].[logs] ([a], [b], [c]) VALUES (%s, %s, %s), "
    )
    cur = RecordingCursor()
    d.bulk_insert(cur, "[t]", ["a"], [(i,) for i in range(1500)])
    assert [len(c[2]) for c in cur.calls] == [1000, 500]


def test_mssql_merge_statement():
    d = get_dialect("mssql")
    cur: Any = RecordingCursor()
    d.upsert(cur, "[t]", ["id", "v"], [(1, "a"), (2, "b")], ["id"], update=True)
    assert cur.calls[0][1] == (
        "MERGE INTO [t] WITH (HOLDLOCK) AS t USING (VALUES (%s, %s), (%s, %s)) AS s ([id], [v]) "
        "ON (t.[id] = s.[id]) WHEN MATCHED THEN UPDATE SET t.[v] = s.[v] "
        "WHEN NOT MATCHED THEN INSERT ([id], [v]) VALUES (s.[id], s.[v]);"
    )
    assert cur.calls[0][2] == (1, "a", 2, "b")


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        (20047, DisconnectError),
        (20006, DisconnectError),
        (1205, TransientError),
        (8152, RecordError),
        (245, RecordError),
        (8114, RecordError),
        (2627, RecordError),
        (2601, RecordError),
        (208, TerminalError),
    ],
)
def test_mssql_classify(number, kind):
    import pymssql

    exc = pymssql.OperationalError(number, b"message")
    assert type(get_dialect("mssql").classify(exc)) is kind


def test_mssql_savepoints_through_isolation():
    d = get_dialect("mssql")

    class Cur(RecordingCursor):
        pass

    cur = Cur()
    calls = []

    def write(rows):
        calls.append(list(rows))
        if any(r[0] == "bad" for r in rows):
            import pymssql

            raise pymssql.OperationalError(8152, b"String or binary data would be truncated")

    sp = Savepoints(cur, d)
    rows = [("ok",), ("bad",), ("ok",), ("ok",)]
    bad = isolate(sp, write, rows)
    assert [i for i, _ in bad] == [1]
    stmts = [c[1] for c in cur.calls]
    assert "SAVE TRANSACTION flbsql_sp1" in stmts
    assert any(s.startswith("ROLLBACK TRANSACTION flbsql_sp") for s in stmts)
    assert not any("RELEASE" in s for s in stmts)
    # a write that raised was rolled back to its savepoint; the ones that did not are kept
    kept = [r for c in calls if all(r[0] == "ok" for r in c) for r in c]
    assert kept == [("ok",)] * 3  # each good row exactly once, the bad one never


class _QueryCursor(RecordingCursor):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class _Conn:
    def __init__(self, rows):
        self.cur = _QueryCursor(rows)

    def cursor(self):
        return self.cur


def test_mssql_introspection_defaults_to_the_session_schema():
    d = get_dialect("mssql")
    conn: Any = _Conn([("id", "BIGINT", "NO"), ("msg", "nvarchar", "YES")])
    cols = d.columns(conn, None, "logs")
    _, stmt, params = conn.cur.calls[0]
    assert "COALESCE(%s, SCHEMA_NAME())" in stmt and "data_type" in stmt
    assert params == (None, "logs")
    assert [(c.name, c.type, c.nullable) for c in cols] == [
        ("id", "bigint", False),
        ("msg", "nvarchar", True),
    ]
    conn = _Conn([("id",)])
    assert d.primary_key(conn, "app", "logs") == ["id"]
    _, stmt, params = conn.cur.calls[0]
    assert "constraint_type = 'PRIMARY KEY'" in stmt and params == ("app", "logs")
