"""The exact upsert statement every dialect sends, through recording cursors (no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from flbsql.dialects import get_dialect, sql


class Cur:
    """Records statements; COPY is a context manager that records what is written."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.connection = SimpleNamespace(flbsql_max_stmt=1 << 20)  # PyMySQL sizing
        self.max_stmt_length = 0

    def execute(self, stmt: str, params: Any = None) -> None:
        self.calls.append(("execute", stmt, params))

    def executemany(self, stmt: str, rows: Any, **kw: Any) -> None:
        self.calls.append(("executemany", stmt, list(rows)))

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def copy(self, stmt: str) -> Any:
        calls = self.calls

        class Copy:
            def __enter__(self) -> Copy:
                calls.append(("copy", stmt, None))
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def write(self, data: bytes) -> None:
                pass

        return Copy()


COLS = ["id", "msg", "n"]
ROWS = [(1, "a", 10), (2, "b", 20)]


def _statements(dialect: str, update: bool) -> list[Any]:
    d = get_dialect(dialect)
    cur: Any = Cur()
    d.upsert(cur, d.table_sql("logs"), COLS, ROWS, ["id"], update, ["bigint", "text", "bigint"])
    return [stmt for _, stmt, _ in cur.calls]


def test_postgresql_copies_into_a_stage_then_inserts_on_conflict():
    d: Any = get_dialect("postgresql")
    stage = d.staging_table('"logs"', COLS)
    for update, tail in (
        (False, 'ON CONFLICT ("id") DO NOTHING'),
        (True, 'ON CONFLICT ("id") DO UPDATE SET "msg" = EXCLUDED."msg", "n" = EXCLUDED."n"'),
    ):
        assert _statements("postgresql", update) == [
            f'CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT "id", '
            '"msg", "n" FROM "logs" WITH NO DATA',
            f'COPY {stage} ("id", "msg", "n") FROM STDIN (FORMAT BINARY)',
            f'INSERT INTO "logs" ("id", "msg", "n") SELECT "id", "msg", "n" FROM {stage} {tail}',
            f"TRUNCATE {stage}",
        ]


def test_sqlite_insert_on_conflict():
    assert _statements("sqlite", False) == [
        'INSERT INTO "logs" ("id", "msg", "n") VALUES (?, ?, ?) ON CONFLICT ("id") DO NOTHING'
    ]
    assert _statements("sqlite", True) == [
        'INSERT INTO "logs" ("id", "msg", "n") VALUES (?, ?, ?) ON CONFLICT ("id") '
        'DO UPDATE SET "msg" = EXCLUDED."msg", "n" = EXCLUDED."n"'
    ]


def test_mysql_on_duplicate_key_never_insert_ignore():
    cur: Any = Cur()
    get_dialect("mysql").upsert(cur, "`logs`", COLS, ROWS, ["id"], False)
    assert cur.max_stmt_length == 1 << 20  # PyMySQL's rewrite sized to the packet
    # the rows' literals are built by flbsql.dialects.mysqlvalues (no LOAD DATA here)
    assert _statements("mysql", False) == [
        b"INSERT INTO `logs` (`id`, `msg`, `n`) VALUES (1,'a',10),(2,'b',20) "
        b"ON DUPLICATE KEY UPDATE `logs`.`id` = `logs`.`id`"
    ]
    assert _statements("mysql", True) == [
        b"INSERT INTO `logs` (`id`, `msg`, `n`) VALUES (1,'a',10),(2,'b',20) "
        b"ON DUPLICATE KEY UPDATE `msg` = VALUES(`msg`), `n` = VALUES(`n`)"
    ]


def test_oracle_merge_from_dual():
    assert _statements("oracle", True) == [
        'MERGE INTO "logs" t USING (SELECT :1 AS "id", :2 AS "msg", :3 AS "n" FROM dual) s '
        'ON (t."id" = s."id") WHEN MATCHED THEN UPDATE SET t."msg" = s."msg", t."n" = s."n" '
        'WHEN NOT MATCHED THEN INSERT ("id", "msg", "n") VALUES (s."id", s."msg", s."n")'
    ]
    assert _statements("oracle", False) == [
        'MERGE INTO "logs" t USING (SELECT :1 AS "id", :2 AS "msg", :3 AS "n" FROM dual) s '
        'ON (t."id" = s."id") '
        'WHEN NOT MATCHED THEN INSERT ("id", "msg", "n") VALUES (s."id", s."msg", s."n")'
    ]


def test_mssql_merge_with_holdlock_over_values():
    assert _statements("mssql", False) == [
        "MERGE INTO [logs] WITH (HOLDLOCK) AS t USING (VALUES (%s, %s, %s), (%s, %s, %s)) "
        "AS s ([id], [msg], [n]) ON (t.[id] = s.[id]) "
        "WHEN NOT MATCHED THEN INSERT ([id], [msg], [n]) VALUES (s.[id], s.[msg], s.[n]);"
    ]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "oracle", "mssql", "sqlite"])
def test_a_key_outside_the_written_columns_is_refused(dialect):
    d = get_dialect(dialect)
    with pytest.raises(ValueError, match="unique key"):
        sql.upsert(d, '"t"', ["a"], ["b"], update=False)
    with pytest.raises(ValueError, match="unique key"):
        sql.upsert(d, '"t"', ["a"], [], update=True)


def test_an_all_key_row_has_nothing_to_update():
    d: Any = get_dialect("postgresql")
    assert sql.upsert(d, '"t"', ["id"], ["id"], update=True).endswith(
        'ON CONFLICT ("id") DO NOTHING'
    )
    assert sql.upsert_select(d, '"t"', ["id"], ["id"], True, '"s"') == (
        'INSERT INTO "t" ("id") SELECT "id" FROM "s" ON CONFLICT ("id") DO NOTHING'
    )
