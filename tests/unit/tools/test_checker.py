"""``flbsql check`` names every problem of a config, not only the first."""

from __future__ import annotations

import textwrap

import pytest

from flbsql.tools import check as checker
from flbsql.tools.cli import main


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_problem_of_every_section_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("FLBSQL_NOT_SET_ANYWHERE", raising=False)
    path = write(
        tmp_path,
        "bad.conf",
        """\
        # ${IN_A_COMMENT} is not reported
        [INPUT]
            Name              sql
            url               ${FLBSQL_NOT_SET_ANYWHERE}
            tabel             events
            rows_per_collect  lots
            fetch_size        -3
            password          vault:secret/data/db
        [OUTPUT]
            Name      sql
            Match     *
            url       /tmp/x.db
            ssl_mode  maybe
        """,
    )
    problems = checker.check_file(path, connect=False)
    text = "\n".join(problems)
    assert "environment variable FLBSQL_NOT_SET_ANYWHERE is not set" in text
    assert "IN_A_COMMENT" not in text
    assert "unknown key 'tabel' (did you mean 'table'?)" in text
    assert "option 'rows_per_collect': invalid value 'lots'" in text
    assert "option 'fetch_size': invalid value '-3': must be >= 1" in text
    assert "option 'password': invalid value ***: vault reference" in text
    assert "option 'url': required" in text
    assert "set exactly one of `table`, `tables` or `query`" in text
    assert "option 'ssl_mode': invalid value 'maybe'" in text
    assert "[OUTPUT] sql: option 'table': required" in text
    assert len(problems) == 9, problems


def test_set_variables_and_cdc_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("FLBSQL_CHECK_URL", "postgresql://u@h/db")
    path = write(
        tmp_path,
        "cdc.conf",
        """\
        @SET STATE=/tmp
        [INPUT]
            Name   sql
            mode   cdc
            url    ${FLBSQL_CHECK_URL}
            db     ${STATE}/cdc.db
        """,
    )
    assert checker.check_file(path, connect=False) == [
        f"{path}:2 [INPUT] sql: option 'tables': required with mode cdc"
    ]


def test_query_needs_the_position_marker(tmp_path):
    path = write(
        tmp_path,
        "q.yaml",
        """\
        pipeline:
          inputs:
            - name: sql
              url: /tmp/x.db
              query: SELECT * FROM t
              key: id
        """,
    )
    (problem,) = checker.check_file(path, connect=False)
    assert problem.endswith("option 'query': must contain {position}")


def test_plugins_file_libraries_are_checked(tmp_path, capsys):
    write(tmp_path, "plugins.conf", "[PLUGINS]\n    Path /nonexistent/in_sql.so\n")
    path = write(
        tmp_path,
        "main.conf",
        """\
        [SERVICE]
            plugins_file plugins.conf
        [OUTPUT]
            Name   sql
            url    /tmp/x.db
            table  t
        """,
    )
    assert main(["check", "--no-connect", "-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert "plugin library /nonexistent/in_sql.so does not exist" in out


def test_a_good_file_is_ok_and_connects(tmp_path, capsys):
    path = write(
        tmp_path,
        "ok.conf",
        f"""\
        [OUTPUT]
            Name   sql
            url    {tmp_path}/target.db
            table  t
        """,
    )
    assert main(["check", "-c", str(path)]) == 0
    workers, note, ok = capsys.readouterr().out.strip().splitlines()
    assert "[OUTPUT] sql: no `workers` set: flushes run on 2 worker threads beside" in workers
    assert note.endswith("[OUTPUT] sql: bulk path: executemany, one transaction per flush")
    assert ok == f"{path}: ok"


def test_an_unreachable_database_is_named(tmp_path):
    path = write(
        tmp_path,
        "down.conf",
        """\
        [OUTPUT]
            Name             sql
            url              postgresql://nobody@127.0.0.1:1/none
            table            t
            connect_timeout  1s
        """,
    )
    (problem,) = checker.check_file(path)
    assert "cannot connect" in problem


MYSQL_OUT = "[OUTPUT]\n    Name sql\n    Match *\n    url mysql://u@db/app\n"
MYSQL_IN = "[INPUT]\n    Name sql\n    url mysql://u@db/app\n"
CDC_IN = "[INPUT]\n    Name sql\n    url postgresql://u@db/app\n    mode cdc\n"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        # MySQL/MariaDB cannot name a table with an emoji: Init refuses it, so must check
        (MYSQL_OUT + "    table logs_\U0001f600\n", "option 'table':"),
        (MYSQL_IN + "    table t\n    columns a\U0001f600\n", "option 'columns':"),
        (CDC_IN + "    tables a.b.c\n", "option 'tables':"),
    ],
)
def test_check_fails_what_init_fails(tmp_path, section, problem):
    path = tmp_path / "fb.conf"
    path.write_text(section)
    found = checker.check_file(path, connect=False)
    assert len(found) == 1 and problem in found[0], found


def test_check_passes_a_quoted_cdc_name_that_init_accepts(tmp_path):
    path = tmp_path / "fb.conf"
    path.write_text(CDC_IN + '    tables "Quoted_"" . Schema"."Quoted_"" . Table"\n')
    assert checker.check_file(path, connect=False) == []
