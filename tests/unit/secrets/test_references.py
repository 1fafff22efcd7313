"""Secret references (env:, file:, vault: syntax, literal:) and redaction; no server."""

from __future__ import annotations

import logging
import os

import pytest

from flbsql.conn.connect import connect_params, open_pool
from flbsql.errors import ConfigError, SecretError
from flbsql.secrets import (
    RedactingFilter,
    SecretRef,
    is_reference,
    parse_ref,
    redact,
    register,
    resolve,
)
from flbsql.settings import parse


def cfg(**props):
    values = {k.replace("__", "."): v for k, v in props.items()}
    return parse("output", values.get, probe_typos=False)


def test_env_reference(monkeypatch):
    monkeypatch.setenv("FLBSQL_T_PW", "pw-from-env")
    assert resolve("env:FLBSQL_T_PW") == "pw-from-env"


def test_env_missing_names_the_variable(monkeypatch):
    monkeypatch.delenv("FLBSQL_T_NOPE", raising=False)
    with pytest.raises(SecretError, match="FLBSQL_T_NOPE"):
        resolve("env:FLBSQL_T_NOPE")


def test_file_reference_is_trimmed_and_reread(tmp_path):
    f = tmp_path / "password"
    f.write_text("  pw-from-file\n\n")
    assert resolve(f"file:{f}") == "pw-from-file"
    f.write_text("rotated-pw\n")  # a Kubernetes secret mount was updated
    assert resolve(f"file:{f}") == "rotated-pw"


@pytest.mark.parametrize("content", ["", " \n"])
def test_empty_file_is_an_error(tmp_path, content):
    f = tmp_path / "password"
    f.write_text(content)
    with pytest.raises(SecretError, match="empty"):
        resolve(f"file:{f}")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SecretError, match="cannot read"):
        resolve(f"file:{tmp_path / 'nope'}")


def test_literal_escape_and_plain_values():
    assert resolve("literal:env:NOT_A_REF") == "env:NOT_A_REF"
    assert resolve("plain-password") == "plain-password"
    assert resolve(None) is None
    assert not is_reference("p@ss:word")
    assert is_reference("vault:secret/data/x#y")


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("vault:secret/data/app#password", SecretRef("vault", "secret/data/app", "password")),
        ("vault:/kv/app/#user", SecretRef("vault", "kv/app", "user")),
        ("vault:secret/data/app?version=3#pw", SecretRef("vault", "secret/data/app", "pw", 3)),
        ("env:NAME", SecretRef("env", "NAME")),
        ("file:/run/secrets/pw", SecretRef("file", "/run/secrets/pw")),
    ],
)
def test_parse_ref(text, ref):
    assert parse_ref(text) == ref
    assert str(parse_ref(text)) == str(ref)


@pytest.mark.parametrize(
    "text", ["vault:secret/data/app", "vault:#pw", "vault:x?v=1#pw", "env:", "file: "]
)
def test_malformed_references(text):
    with pytest.raises(SecretError):
        parse_ref(text)


def test_vault_reference_without_vault_configured():
    with pytest.raises(SecretError, match=r"vault\.address"):
        resolve("vault:secret/data/app#pw")


def test_redact_hides_registered_values_longest_first():
    register("hunter2-long-secret")
    register("hunter2")
    text = "login failed for password=hunter2-long-secret and hunter2"
    assert redact(text) == "login failed for password=*** and ***"
    register("ab")  # too short to be redacted safely; not registered
    assert redact("about") == "about"


def test_redacting_filter_scrubs_message_args_and_traceback(caplog):
    register("filter-secret-value")
    log = logging.getLogger("test.redact")
    log.addFilter(RedactingFilter())
    caplog.set_level(logging.INFO, "test.redact")
    try:
        raise RuntimeError("driver said: filter-secret-value")
    except RuntimeError:
        log.exception("connect %s failed", "with filter-secret-value")
    assert "filter-secret-value" not in caplog.text
    assert "connect with *** failed" in caplog.text


def test_connect_params_resolves_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FLBSQL_T_URL", "postgresql://app@db.example:5433/logs")
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("FLBSQL_T_KEY", key.read_text())
    c = cfg(url="env:FLBSQL_T_URL", ssl_key="env:FLBSQL_T_KEY", table="t")
    p = connect_params(c)
    assert (p.host, p.port, p.user, p.database) == ("db.example", 5433, "app", "logs")
    # a PEM given as text becomes a private file the driver can open
    assert p.ssl_key and os.path.exists(p.ssl_key)
    assert oct(os.stat(p.ssl_key).st_mode & 0o777) == "0o600"
    with open(p.ssl_key) as f:
        assert "BEGIN PRIVATE KEY" in f.read()


def test_open_pool_fails_init_on_a_missing_env_reference(monkeypatch):
    monkeypatch.delenv("FLBSQL_T_MISSING", raising=False)
    c = cfg(url="postgresql://app@127.0.0.1:1/x", password="env:FLBSQL_T_MISSING", table="t")
    with pytest.raises(SecretError, match=r"option .password.*FLBSQL_T_MISSING"):
        open_pool(c, logging.getLogger("test.secrets"))


def test_open_pool_vault_reference_needs_address():
    c = cfg(url="postgresql://app@127.0.0.1:1/x", password="vault:secret/data/a#pw", table="t")
    with pytest.raises(ConfigError, match=r"vault\.address"):
        open_pool(c, logging.getLogger("test.secrets"))


def test_static_credentials_reach_the_pool_and_are_reread(monkeypatch, tmp_path):
    f = tmp_path / "pw"
    f.write_text("first-file-pw\n")
    c = cfg(
        url="postgresql://127.0.0.1:1/x", user="env:FLBSQL_T_USER", password=f"file:{f}", table="t"
    )
    monkeypatch.setenv("FLBSQL_T_USER", "app-user")
    pool = open_pool(c, logging.getLogger("test.secrets"))
    assert pool._credentials is not None
    assert pool._credentials() == ("app-user", "first-file-pw")
    f.write_text("second-file-pw\n")
    pool._credentials._at -= 3600  # type: ignore[attr-defined]  # the refresh period passed
    assert pool._credentials() == ("app-user", "second-file-pw")
    assert "second-file-pw" not in repr(pool._credentials) + repr(pool) + str(pool.params)


def test_literal_secrets_are_registered_for_redaction():
    c = cfg(
        url="postgresql://app:url-pass-1234@127.0.0.1:1/x", password="literal-pw-5678", table="t"
    )
    log = logging.getLogger("test.secrets.literal")
    open_pool(c, log)
    assert redact("url-pass-1234 literal-pw-5678") == "*** ***"
    assert any(isinstance(f, RedactingFilter) for f in log.filters)
