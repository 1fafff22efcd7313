"""Hostile names: quoted safely or refused at Init naming the option; values always bound.

Names with double quotes, backticks, brackets, semicolons, ``--``, spaces, dots and
unicode go through every place a name is configured: ``table``, ``columns``,
``tag_column``/``time_column``/``json_column``, ``unique_key``, ``dead_letter_table``
and, on the input, ``key``/``tracking_column``.

* SQL text (every dialect, no server): each statement the core builds holds the
  names only as quoted identifiers; nothing hostile is left outside them.
* Live (SQLite, PostgreSQL, MariaDB): the output creates the table with exactly that
  name through the test host, the data round-trips, a replay adds nothing (the
  upsert names the hostile key), and the input reads it back.
* Refusals (every dialect): a NUL, an over-long name, ``%`` where the driver's
  paramstyle is ``format``, emoji on MySQL/MariaDB (identifiers are BMP only),
  ``"`` on Oracle: ConfigError naming the option, at Init.

Dotted names (see ``Dialect.split_name``): ``schema.table``; a part in double quotes
is literal, so ``"my.table"`` is one table whose name has a dot, and
``sales."2024.q1"`` is a table in schema ``sales``; ``""`` inside quotes is one ``"``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from flbsql.conn.connect import open_pool
from flbsql.dialects import get_dialect, sql
from flbsql.dialects.base import Dialect
from flbsql.errors import ConfigError
from flbsql.input.keyset import KeysetQuery
from flbsql.output.writer import Writer
from flbsql.settings import parse
from tests.fix_host import event_v2, props, sink_records, write_frames

LOG = logging.getLogger("test.hostile")
DIALECTS = ["sqlite", "postgresql", "mysql", "oracle", "mssql"]
URLS = {
    "sqlite": "/nonexistent/never-opened.db",
    "postgresql": "postgresql://u@127.0.0.1:1/x",
    "mysql": "mysql://u@127.0.0.1:1/x",
    "oracle": "oracle://u:p@127.0.0.1:1/x",
    "mssql": "mssql://u:p@127.0.0.1:1/x",
}
HOSTILE = [
    'tab"le',
    "tab`le",
    "tab[le]",
    "x]; DROP TABLE y; --",
    "t; DROP TABLE x; --",
    "my table",
    "a.b",
    "tablé_日本",
    "logs 🚀",
    "pct%name",
    "it's",
]
INJECTION = "'); DROP TABLE victim; --"


# Refusals no Capabilities flag describes yet: the server's own identifier rules.
BMP_ONLY = {"mysql"}  # MySQL/MariaDB identifiers: Basic Multilingual Plane only
NO_DOUBLE_QUOTE = {"oracle"}  # Oracle has no escape for '"' inside a quoted identifier


def refusal(dialect: str, name: str) -> str | None:
    """Why ``dialect`` must refuse ``name`` (a fragment of the error), or None."""
    caps = get_dialect(dialect).caps
    if "%" in name and caps.paramstyle in ("format", "pyformat"):
        return "'%' is not supported"  # the driver would read it as a placeholder
    if dialect in BMP_ONLY and any(ord(c) > 0xFFFF for c in name):
        return "Basic Multilingual Plane"
    if dialect in NO_DOUBLE_QUOTE and '"' in name:
        return "cannot contain"
    return None


# -- split_name -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("logs", (None, "logs")),
        ("app.logs", ("app", "logs")),
        ('"my.table"', (None, "my.table")),
        ('sales."2024.q1"', ("sales", "2024.q1")),
        ('"a""b"."c.d"', ('a"b', "c.d")),
        ('"s.x".t', ("s.x", "t")),
        ('tab"le', (None, 'tab"le')),
        ("t; DROP TABLE x; --", (None, "t; DROP TABLE x; --")),
        ("é.日本🚀", ("é", "日本🚀")),
    ],
)
def test_split_name_dots_and_quotes(name, parts):
    d = Dialect()
    assert d.split_name(name) == parts
    schema, table = parts
    want = d.quote(table) if schema is None else f"{d.quote(schema)}.{d.quote(table)}"
    assert d.table_sql(name) == want


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ('"x', "unclosed double quote"),
        ('"x"y', "text after a closing double quote"),
        ("a.b.c", "expected table or schema.table"),
        (".t", "expected table or schema.table"),
        ("t.", "expected table or schema.table"),
        ('""', "expected table or schema.table"),
    ],
)
def test_split_name_refuses_ambiguous_names(name, why):
    with pytest.raises(ValueError, match=why):
        Dialect().split_name(name)


# -- SQL text on every dialect ----------------------------------------------------------


def _tokens(text: str, open_q: str, close_q: str) -> tuple[list[str], str]:
    """(identifiers, the text with each identifier as ID and each string as STR)."""
    idents: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in (open_q, "'"):
            close = close_q if ch == open_q else "'"
            buf, j = [], i + 1
            while True:
                k = text.index(close, j)
                buf.append(text[j:k])
                if text.startswith(close * 2, k):
                    buf.append(close)
                    j = k + 2
                    continue
                i = k + 1
                break
            if ch == open_q:
                idents.append("".join(buf))
            rest.append(" ID " if ch == open_q else " STR ")
        else:
            rest.append(ch)
            i += 1
    return idents, "".join(rest)


def _statements(d: Any, table: str, cols: list[str], key: list[str]) -> list[str]:
    t = d.table_sql(table)
    out = [
        sql.insert(d, t, cols),
        sql.insert_values(d, t, cols, 3),
        sql.upsert(d, t, cols, key, update=False),
        sql.upsert(d, t, cols, key, update=True),
        sql.create_table(d, t, [(c, "TEXT") for c in cols], key),
        sql.add_column(d, t, cols[-1], "TEXT"),
    ]
    q = KeysetQuery(d, [cols[-1], *key], table=table, columns=cols)
    out += [q.page((1, "a"), (2, "b"), 10)[0], q.newest()[0], q.count(None, (2, "b"))[0]]
    if hasattr(d, "copy_sql"):  # a COPY bulk path (and its staging table for upserts)
        out.append(d.copy_sql(t, cols, True))
        assert d.staging_table(t, cols).startswith('"flbsql_stage_')  # a name of its own
    return out


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", HOSTILE)
def test_statements_hold_hostile_names_only_as_quoted_identifiers(dialect, name):
    d = get_dialect(dialect)
    why = refusal(dialect, name)
    if why:
        with pytest.raises(ValueError, match=why):
            d.quote(name)
        return
    cols = [f"{name} col", "plain", f"k {name}"]
    table = '"' + name.replace('"', '""') + '"'  # the whole name, dots included, as the table
    for stmt in _statements(d, table, cols, [cols[0]]):
        idents, rest = _tokens(stmt.rstrip(";"), d.caps.quote_open, d.caps.quote_close)
        rest = rest.replace("%s", "?")  # the format paramstyle's placeholders
        assert name in idents or any(name in i for i in idents), stmt
        assert set(idents) <= {name, *cols, "s", "t", "flbsql_q"}, (stmt, idents)
        for bad in (";", "--", '"', "`", "[", "]", "'", "%", "é", "日", "🚀"):
            assert bad not in rest, f"{bad!r} outside quotes in {stmt!r}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_schema_and_dotted_table_quote_each_part(dialect):
    d = get_dialect(dialect)
    q = d.caps.quote_open
    c = d.caps.quote_close
    assert d.table_sql('sales."2024.q1"') == f"{q}sales{c}.{q}2024.q1{c}"
    assert d.table_sql('"my.table"') == f"{q}my.table{c}"


# -- refusals at Init, naming the option --------------------------------------------------


def _output(dialect: str, **kv: str) -> Writer:
    raw = {"url": URLS[dialect], "table": "logs", **kv}
    cfg = parse("output", raw.get)
    return Writer(cfg, open_pool(cfg, LOG), LOG)


def _input(dialect: str, tmp_path: Any, **kv: str) -> Any:
    from flbsql.input.poll import PollSource

    raw = {"url": URLS[dialect], "table": "logs", "db": str(tmp_path / "pos.db"), **kv}
    cfg = parse("input", raw.get)
    src = PollSource(cfg, open_pool(cfg, LOG), LOG)
    src.close()  # only reached if the test fails
    return src


LONG = "n" * 1100  # longer than every dialect's identifier limit (SQLite's 1024)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("table", "bad\x00name"),
        ("table", LONG),
        ("table", "a.b.c"),
        ("dead_letter_table", f"dlq_{LONG}"),
        ("columns", f"{LONG}=k:int"),
        ("columns", "c\x00=k:int"),
        ("tag_column", "t\x00g"),
        ("time_column", LONG),
        ("json_column", "pct%data"),
        ("tag_column", "rocket 🚀"),
        ("columns", 'q"uote=k'),
        ("unique_key", "nope"),
    ],
)
def test_output_refuses_at_init_naming_the_option(dialect, option, value):
    name = value.split("=")[0]
    if option in ("json_column", "tag_column", "columns") and not any(
        (x in name) for x in ("\x00", LONG)
    ):
        why = refusal(dialect, name)
        if why is None:  # allowed here: the writer builds
            _output(dialect, **{option: value}).pool.close()
            return
    with pytest.raises(ConfigError, match=f"option '{option}'"):
        _output(dialect, **{option: value})


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("table", "bad\x00name"),
        ("table", LONG),
        ("table", '"unclosed'),
        ("key", f"id,{LONG}"),
        ("tracking_column", "upd\x00at"),
        ("tracking_column", "pct%at"),
        ("time_column", "ts 🚀"),
        ("columns", 'a,"b'),
    ],
)
def test_input_refuses_at_init_naming_the_option(dialect, option, value, tmp_path):
    name = value.split(",")[-1]
    if "\x00" not in name and LONG not in name and option != "table":
        why = refusal(dialect, name)
        if why is None:  # a legal name here: Init accepts it (the live tests read such names)
            src = _input(dialect, tmp_path, **{option: value})
            assert name in str(getattr(src.cfg, option)), (option, getattr(src.cfg, option))
            return
    with pytest.raises(ConfigError, match=f"option '{option}'"):
        _input(dialect, tmp_path, **{option: value})


# -- live round trip through the host --------------------------------------------------------

LIVE_TABLES = [
    'tab"le_{u}',
    "tab`le_{u}",
    "tab[le]_{u}",
    "t_{u}; DROP TABLE victim; --",
    "my table {u}",
    '"my.table.{u}"',
    '{schema}."a.b_{u}"',
    "tablé_日本_{u}",
    "logs_🚀_{u}",
    "pct%_{u}",
]
COLUMNS = {'co"l;--': "k1:string(32)", 'n]`"': "k2:int", "c.d é 日本": "k3:text"}
KEY, TRACK = 'co"l;--', 'n]`"'


def _q(db: Any, name: str) -> str:
    """Quote for the test's own queries, independent of flbsql."""
    if db.dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _schema(db: Any) -> str:
    return {"sqlite": "main", "postgresql": "public"}.get(db.dialect) or db.url.rsplit("/", 1)[1]


def _catalog(db: Any, schema: str) -> set[str]:
    if db.dialect == "sqlite":
        return {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    mark = "%s"
    col = (
        "tablename FROM pg_tables WHERE schemaname"
        if db.dialect == "postgresql"
        else ("table_name FROM information_schema.tables WHERE table_schema")
    )
    return {r[0] for r in db.query(f"SELECT {col} = {mark}", (schema,))}


@pytest.mark.shim
@pytest.mark.parametrize("template", LIVE_TABLES)
def test_hostile_names_round_trip_through_output_and_input(host, any_db, tmp_path, template):
    db = any_db
    u = secrets.token_hex(3)
    schema = _schema(db)
    option = template.format(u=u, schema=schema)
    exp_schema, exp_table = get_dialect("sqlite").split_name(option)  # the documented rule
    dead = f'dl"q; --{u}'
    db.execute("CREATE TABLE IF NOT EXISTS victim (v VARCHAR(8))")
    frames = write_frames(
        tmp_path / "f.bin",
        [
            b"".join(
                [
                    event_v2(
                        {
                            "k1": f"id{i}",
                            "k2": i,
                            "k3": f"{INJECTION} é日本🚀 {i}",
                            "rest": {"i": i},
                        }
                    )
                    for i in range(20)
                ]
                + [event_v2({"k1": "poison", "k2": "abc", "k3": INJECTION})]
            )
        ],
    )
    out = props(
        url=db.url,
        table=option,
        tag_column='ta"g',
        time_column="ti`me",
        json_column="da[ta]",
        unique_key=KEY,
        dead_letter_table=dead,
        columns=",".join(f"{c}={s}" for c, s in COLUMNS.items()),
    )
    r = host.run("-i", "feed", *props(file=frames), "-o", "sql", *out)
    why = refusal(db.dialect, exp_table)
    if why:  # refused at Init, naming the option, before any flush
        assert r.returncode == 255, r.log[-2000:]
        assert "option 'table'" in r.log and why in r.log, r.log[-2000:]
        return
    assert r.returncode == 0 and r.stats["flush_ok"] == 1, r.log[-3000:]
    assert exp_table in _catalog(db, exp_schema or schema)
    assert dead in _catalog(db, schema)
    target = f"{_q(db, exp_schema)}.{_q(db, exp_table)}" if exp_schema else _q(db, exp_table)
    rows = db.query(
        f"SELECT {_q(db, KEY)}, {_q(db, TRACK)}, {_q(db, 'c.d é 日本')} "
        f"FROM {target} ORDER BY {_q(db, TRACK)}"
    )
    assert rows == [(f"id{i}", i, f"{INJECTION} é日本🚀 {i}") for i in range(20)]
    (letter,) = db.query(f"SELECT {_q(db, 'error')} FROM {_q(db, dead)}")
    assert "column 'n]`\"'" in letter[0]
    assert db.query("SELECT COUNT(*) FROM victim") == [(0,)]  # still there

    again = host.run("-i", "feed", *props(file=frames), "-o", "sql", *out)
    assert again.returncode == 0 and again.stats["flush_error"] == 0, again.log[-3000:]
    assert db.query(f"SELECT COUNT(*) FROM {target}") == [(20,)], "the upsert replay added rows"

    sink = tmp_path / "sink.bin"
    r = host.run(
        "--interval",
        "200",
        "--first-delay",
        "50",
        "--stop-after-records",
        "20",
        "--duration",
        "15000",
        "-i",
        "sql",
        *props(
            url=db.url,
            table=option,
            key=KEY,
            tracking_column=TRACK,
            db=tmp_path / "pos.db",
            settle=0,
            poll_interval="200ms",
        ),
        "-o",
        "sink",
        *props(file=sink),
    )
    assert r.returncode == 0, r.log[-3000:]
    bodies = sorted((e[1] for e in sink_records(sink)), key=lambda b: b[TRACK])
    assert [(b[KEY], b[TRACK], b["c.d é 日本"]) for b in bodies] == rows
    assert set(bodies[0]) == {'ta"g', "ti`me", KEY, TRACK, "c.d é 日本", "da[ta]"}
