"""Every file in conf/ is loaded: parsed, validated, and where possible run.

- Each file is read by :mod:`flbsql.tools.fbconfig` and checked by ``flbsql check``'s
  checker without connecting: no unknown key, no bad value, no unset variable.
- Each classic ``.conf`` has a YAML twin with the same plugin sections.
- The examples that only need SQLite, PostgreSQL or MariaDB run through the C test
  host (``build/flbhost``) with their URLs pointed at test databases by environment
  variables, exactly as an operator sets them; Fluent Bit's ``dummy`` and ``stdout``
  are replaced by the host's ``feed`` and ``sink``. The CDC, Vault, Keycloak and
  plugins-file examples need a logical-decoding server, a Vault, an identity provider
  and an install under /opt, so they are validated only (the Keycloak chain runs in
  tests/integration/test_oidc_vault_dynamic.py against a real provider and OpenBao).
"""

from __future__ import annotations

import json
import pathlib
import secrets
from typing import Any

import pytest
from tests import fix_db
from tests.fix_host import event_v2, sink_records, write_frames

from flbsql.tools import check as checker
from flbsql.tools import fbconfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

RUNNABLE = {
    "many-tables.conf",
    "many-tables.yaml",
    "sharded-table.conf",
    "sharded-table.yaml",
    "table-to-stdout.conf",
    "table-to-stdout.yaml",
    "dummy-to-table.conf",
    "dummy-to-table.yaml",
    "two-instances.conf",
    "two-instances.yaml",
    "workers.conf",
    "workers.yaml",
    "per-tag-tables.conf",
    "per-tag-tables.yaml",
}
VALIDATED_ONLY = {
    "cdc-to-table.conf",
    "cdc-to-table.yaml",
    "vault-credentials.conf",
    "vault-credentials.yaml",
    "keycloak-vault.conf",
    "keycloak-vault.yaml",
    "plugins.conf",
    "replicate-pg-to-pg.conf",
    "replicate-pg-to-pg.yaml",
    "replicate-pg-to-mariadb.conf",
    "replicate-pg-to-mariadb.yaml",
    "replicate-pg-to-sqlite.conf",
    "replicate-pg-to-sqlite.yaml",
}
ENV = {
    "FLBSQL_SOURCE_URL": "postgresql://reader@db.example:5432/app",
    "FLBSQL_SOURCE_PASSWORD": "not-used",
    "FLBSQL_TARGET_URL": "postgresql://writer@db.example:5432/logs",
    "FLBSQL_TARGET_PASSWORD": "not-used",
    "FLBSQL_CDC_URL": "postgresql://cdc@db.example:5432/app",
    "FLBSQL_CDC_PASSWORD": "not-used",
    "FLBSQL_STATE_DIR": "/var/lib/fluent-bit",
    "FLBSQL_SHARD": "2",
    "VAULT_ADDR": "https://vault.example:8200",
    "VAULT_ROLE_ID": "not-used",
}


def conf_files() -> list[str]:
    return sorted(p.name for p in CONF.iterdir() if p.is_file())


def sql_sections(path: pathlib.Path) -> list[tuple[str, dict[str, str]]]:
    return [
        (s.kind, {k.lower(): v for k, v in s.props})
        for s in fbconfig.load(path)
        if s.kind in ("input", "output")
    ]


def test_every_file_in_conf_is_covered_here():
    assert set(conf_files()) == RUNNABLE | VALIDATED_ONLY
    assert not RUNNABLE & VALIDATED_ONLY


@pytest.mark.parametrize("name", conf_files())
def test_example_parses_and_passes_the_checker(name, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = CONF / name
    sections = fbconfig.load(path)
    assert sections, name
    problems = checker.check_file(path, connect=False)
    if name == "plugins.conf":
        assert [s.kind for s in sections] == ["plugins"]
        libs = [v for _, v in sections[0].props]
        assert [pathlib.Path(p).name for p in libs] == ["in_sql.so", "out_sql.so"]
        missing = [p for p in libs if not pathlib.Path(p).exists()]
        assert problems == [f"{path}: plugin library {p} does not exist" for p in missing]
        return
    assert problems == []
    assert any(s.name == "sql" for s in sections)


@pytest.mark.parametrize(
    "name", sorted(n for n in conf_files() if n.endswith(".conf") and n != "plugins.conf")
)
def test_classic_and_yaml_twins_match(name, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    classic = sql_sections(CONF / name)
    yaml_twin = sql_sections(CONF / name.replace(".conf", ".yaml"))
    assert classic == yaml_twin


@pytest.mark.parametrize("name", sorted(VALIDATED_ONLY - {"plugins.conf"}))
def test_validated_example_fails_the_checker_when_its_variables_are_unset(name, monkeypatch):
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    problems = checker.check_file(CONF / name, connect=False)
    assert any("url" in p for p in problems), problems


# --- running the examples through the test host -------------------------------------------


def _dummy_body(section: fbconfig.Section) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(section.get("dummy", '{"message": "dummy"}'))
    return body


def host_args(path: pathlib.Path, work: pathlib.Path, frames: int) -> list[str]:
    """The example's pipeline, with dummy -> feed and stdout -> sink."""
    sections = []
    for i, s in enumerate(fbconfig.load(path)):
        if s.kind == "input" and s.name == "dummy":
            feed = write_frames(
                work / f"dummy{i}.bin",
                [
                    event_v2({**_dummy_body(s), "n": n}, sec=1_700_000_000 + n)
                    for n in range(frames)
                ],
            )
            s = fbconfig.Section(
                "input", [("Name", "feed"), ("Tag", s.get("tag")), ("file", str(feed))], s.origin
            )
        elif s.kind == "output" and s.name == "stdout":
            s = fbconfig.Section(
                "output",
                [("Name", "sink"), ("Match", s.get("match")), ("file", str(work / "stdout.bin"))],
                s.origin,
            )
        sections.append(s)
    return fbconfig.to_host_args(sections)


SOURCES = {
    "table-to-stdout": {"access_log": 25},
    "many-tables": {"orders": 7, "payments": 3},
    "sharded-table": {"orders": 40},
    "two-instances": {"orders": 7, "payments": 3},
}
TARGETS = {
    "dummy-to-table": ["app_logs"],
    "workers": ["app_logs_workers"],
    "two-instances": ["orders_copy", "payments_copy"],
    "per-tag-tables": ["logs_web", "logs_api", "logs_rejected"],
}


def seed(db: fix_db.TestDB, table: str, rows: int) -> None:
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, note VARCHAR(40))")
    for i in range(1, rows + 1):
        db.execute(f"INSERT INTO {table} (id, note) VALUES ({i}, 'row {i}')")


def count(db: fix_db.TestDB, table: str) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {table}")[0][0])


@pytest.fixture(scope="session")
def mysql_user_db(mysql_db: fix_db.TestDB) -> Any:
    """The session's MariaDB database, reached as a user with a real password."""
    from flbsql.conn.url import parse_url

    user, password = "flbsql_c" + secrets.token_hex(3), secrets.token_urlsafe(12)
    database = parse_url(mysql_db.url).database
    hosts = ("localhost", "127.0.0.1")
    for host in hosts:
        mysql_db.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
        mysql_db.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'{host}'")
    url = mysql_db.url.replace("://root@", f"://{user}@", 1)
    assert url != mysql_db.url
    yield mysql_db, url, password
    for host in hosts:
        mysql_db.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


RUNS = [
    pytest.param(name, dialect, marks=[pytest.mark.shim, mark], id=f"{name}-{dialect}")
    for name in sorted(RUNNABLE)
    for dialect, mark in (
        ("sqlite", pytest.mark.sqlite),
        ("postgresql", pytest.mark.postgres),
        ("mysql", pytest.mark.mysql),
    )
    # every runnable file on SQLite; each example once on each server, alternating format
    if (dialect == "sqlite" and not name.startswith("sharded"))  # SQLite refuses shards
    or (dialect == "postgresql" and name.endswith(".conf"))
    or (dialect == "mysql" and name.endswith(".yaml"))
]


def _run_shards(host: Any, name: str, tmp_path: pathlib.Path, monkeypatch: Any) -> list[int]:
    """Run the sharded example as four instances at once (shards 0 to 3), as four Fluent
    Bits would, each with its own state directory, for some seconds: the ids they sent."""
    procs = []
    for shard in range(4):
        work = tmp_path / f"shard{shard}"
        work.mkdir()
        monkeypatch.setenv("FLBSQL_SHARD", str(shard))
        monkeypatch.setenv("FLBSQL_STATE_DIR", str(work))
        # 7 s: MySQL reads a row once it is `settle` (5 s) old
        args = host_args(CONF / name, work, 0)
        with open(work / "host.log", "w") as log:
            procs.append((work, host.start("--duration", "7000", *args, stderr=log)))
    ids = []
    for work, proc in procs:
        proc.communicate(timeout=60)
        assert proc.returncode == 0, (work / "host.log").read_text()[-3000:]
        ids += [ev[1]["id"] for ev in sink_records(work / "stdout.bin")]
    return ids


@pytest.mark.parametrize(("name", "dialect"), RUNS)
def test_example_runs_in_the_test_host(name, dialect, host, tmp_path, request, monkeypatch):
    stem = name.rsplit(".", 1)[0]
    if dialect == "sqlite":
        source = fix_db.TestDB("sqlite", str(tmp_path / "source.db"))
        target = fix_db.TestDB("sqlite", str(tmp_path / "target.db"))
        source_url, target_url, password = source.url, target.url, "unused-by-sqlite"
    elif dialect == "postgresql":
        source = target = request.getfixturevalue("pg_db")
        source_url = target_url = source.url
        password = "unused-by-trust-auth"
    else:
        source, source_url, password = request.getfixturevalue("mysql_user_db")
        target, target_url = source, source_url
    for table, rows in SOURCES.get(stem, {}).items():
        seed(source, table, rows)
    for table in TARGETS.get(stem, []):
        target.execute(f"DROP TABLE IF EXISTS {table}")
    state = tmp_path / "state"
    state.mkdir()
    env = {
        "FLBSQL_SOURCE_URL": source_url,
        "FLBSQL_SOURCE_PASSWORD": password,
        "FLBSQL_TARGET_URL": target_url,
        "FLBSQL_TARGET_PASSWORD": password,
        "FLBSQL_STATE_DIR": str(state),
    }
    for key, value in env.items():  # fbconfig expands ${VAR} as Fluent Bit would
        monkeypatch.setenv(key, value)
    dummies = sum(1 for s in fbconfig.load(CONF / name) if s.name == "dummy")
    expected = sum(SOURCES.get(stem, {}).values()) or 40 * dummies
    if stem == "sharded-table":
        # four instances, a quarter each: together every row once
        assert sorted(_run_shards(host, name, tmp_path, monkeypatch)) == list(range(1, 41))
        return
    limits = ["--stop-after-records", str(expected), "--duration", "30000"]
    result = host.run(*limits, *host_args(CONF / name, tmp_path, 40), timeout=60)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["flush_error"] == 0, result.log[-3000:]
    # every record once: the host stops at `expected`, and the sources hold no more
    assert result.stats["records_out"] == expected, (result.stats, result.log[-3000:])
    if stem == "table-to-stdout":
        events = sink_records(tmp_path / "stdout.bin")
        ids = sorted(ev[1]["id"] for ev in events)
        assert ids == list(range(1, 26))
        assert list(state.iterdir()), "the position file was not written"
    if stem == "many-tables":
        events = sink_records(tmp_path / "stdout.bin")
        got = sorted((ev[1]["_table"], ev[1]["id"]) for ev in events)
        assert got == [("orders", i) for i in range(1, 8)] + [("payments", i) for i in range(1, 4)]
    if stem == "two-instances":
        assert count(target, "orders_copy") == 7
        assert count(target, "payments_copy") == 3
    if stem == "per-tag-tables":  # one table per tag, nothing rejected
        assert (count(target, "logs_web"), count(target, "logs_api")) == (40, 40)
    if stem in ("dummy-to-table", "workers"):
        (dummy,) = (s for s in fbconfig.load(CONF / name) if s.name == "dummy")
        message = _dummy_body(dummy)["message"]  # each example's own Dummy record
        stored = target.query(f"SELECT data FROM {TARGETS[stem][0]}")
        data = [d if isinstance(d, dict) else json.loads(d) for (d,) in stored]  # jsonb: a dict
        assert len(data) == expected
        assert sorted(d["n"] for d in data) == list(range(expected))
        assert all(d["message"] == message for d in data), data[:3]


# --- docker/ agrees with conf/ and the tests ------------------------------------------------

DOCKER = ROOT / "docker"


def compose() -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return doc


def test_image_links_the_libraries_where_plugins_conf_expects_them():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    libs = [v for s in fbconfig.load(CONF / "plugins.conf") for _, v in s.props]
    for lib in libs:
        assert f'"-e", "{lib}"' in dockerfile, lib
    assert "/opt/flbsql/lib/$f" in dockerfile
    assert "FROM ${FLUENT_BIT_IMAGE} AS build" in dockerfile


def test_compose_has_every_service_and_logical_decoding():
    services = compose()["services"]
    assert {"postgres", "mariadb", "oracle", "mssql", "openbao", "fluent-bit"} <= set(services)
    assert "wal_level=logical" in services["postgres"]["command"]
    assert services["oracle"]["image"].startswith("gvenzl/oracle-free")
    assert services["mssql"]["image"].startswith("mcr.microsoft.com/mssql/server")


def test_e2e_config_passes_the_checker_with_the_compose_environment(monkeypatch):
    env = compose()["services"]["fluent-bit"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    assert checker.check_file(DOCKER / "fluent-bit" / "e2e.conf", connect=False) == []


def test_test_urls_script_exports_what_the_fixtures_read():
    import subprocess

    out = subprocess.run(
        ["sh", str(DOCKER / "test-urls.sh")],
        capture_output=True,
        text=True,
        check=True,
        env={"FLBSQL_DEV_PASSWORD": "pw", "PATH": "/usr/bin:/bin"},
    )
    fixtures = (ROOT / "tests" / "fix_db.py").read_text()
    for name in ("FLBSQL_TEST_ORACLE_URL", "FLBSQL_TEST_MSSQL_URL"):
        assert f"export {name}=" in out.stdout
        assert name in fixtures
    assert "oracle://flbsql:pw@127.0.0.1:1521/FREEPDB1" in out.stdout
