"""The OIDC client against a real provider (oidc-provider on loopback, tests/fix_oidc.py).

Client credentials with a secret (given as ``env:``/``file:`` references) and with
``private_key_jwt`` (RSA and EC keys), the process-wide cache, refresh before expiry
and after a refusal, HTTPS with ``oidc.ca_file``, ``oidc:`` references through the
option table, and every error an operator can act on, each checked by its one line.
"""

from __future__ import annotations

import logging
import re
import socket
import time

import pytest
from tests.fix_oidc import AUDIENCE

from flbsql.errors import SecretError
from flbsql.secrets import parse_ref, redact
from flbsql.secrets.jose import claims_of
from flbsql.secrets.oidc import HOLD, OidcClient, OidcProvider, OidcSettings, clear_cache
from flbsql.settings import parse

pytestmark = [pytest.mark.oidc]

LOG = logging.getLogger("test.oidc")


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def client(server, client_id="flbsql", **kw):
    kw.setdefault("scope", "logs:write")
    if client_id == "flbsql":
        kw.setdefault("client_secret", server.secret)
    return OidcClient(OidcSettings(issuer=server.issuer, client_id=client_id, **kw), LOG)


def refused(c, audience=None):
    with pytest.raises(SecretError) as info:
        c.token(audience)
    line = str(info.value)
    assert "\n" not in line
    return line


# -- tokens --------------------------------------------------------------------------------


def test_client_secret_token_is_cached_and_shared_by_every_instance(oidc, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(oidc.secret + "\n")
    before = oidc.grants()
    first = client(oidc, client_secret=f"file:{secret}")
    token = first.token()
    claims = claims_of(token)
    assert claims is not None
    assert claims["aud"] == AUDIENCE and claims["sub"] == "flbsql"
    assert claims["iss"] == oidc.issuer
    # another instance with the same client (the secret as a literal this time)
    assert client(oidc).token() == token
    assert first.token() == token
    assert oidc.grants() - before == 1
    assert redact(f"x {token} y") == "x *** y"  # a token is a secret from the start


def test_audience_of_a_reference_is_a_token_of_its_own(oidc):
    c = client(oidc)
    vault, db = c.token(), OidcProvider(c).get(parse_ref("oidc:urn:flbsql:db"))
    assert vault != db
    assert (claims_of(db) or {})["aud"] == "urn:flbsql:db"
    assert (claims_of(vault) or {})["aud"] == AUDIENCE


@pytest.mark.parametrize("client_id", ["flbsql-rsa", "flbsql-ec"])
def test_private_key_jwt(oidc, tmp_path, client_id):
    pem = oidc.rsa_key if client_id == "flbsql-rsa" else oidc.ec_key
    key = tmp_path / "key.pem"
    key.write_text(pem)
    token = client(oidc, client_id, private_key=f"file:{key}").token()
    assert (claims_of(token) or {})["sub"] == client_id
    clear_cache()
    # a bare path works too, and PEM text given directly
    assert client(oidc, client_id, private_key=str(key)).token()
    clear_cache()
    assert client(oidc, client_id, private_key=pem).token()


def test_refreshed_before_it_expires(oidc_factory):
    short = oidc_factory(ttl=3)
    c = client(short)
    first = c.token()
    time.sleep(1.0)
    assert c.token() == first  # two thirds of its life left: cached
    time.sleep(1.3)  # a third left: refreshed, though still valid
    second = c.token()
    assert second != first
    assert short.grants() == 2


def test_refreshed_after_its_consumer_refused_it(oidc):
    c = client(oidc)
    first = c.token()
    c.invalidate("some-other-token")  # not ours: nothing happens
    assert c.token() == first
    OidcProvider(c).invalidate(parse_ref("oidc:"), first)
    assert c.token() != first


def test_https_with_the_ca_option(oidc_factory):
    server = oidc_factory(tls=True)
    assert server.issuer.startswith("https://127.0.0.1:")
    assert client(server, ca_file=server.ca_file).token()
    clear_cache()
    line = refused(client(server))  # the system CAs do not know the test CA
    assert line.startswith(f"oidc: issuer {server.issuer} client 'flbsql': issuer unreachable (")
    assert "CERTIFICATE_VERIFY_FAILED" in line


def test_oidc_reference_through_the_options(oidc, monkeypatch):
    from flbsql.conn.connect import SecretResolver

    monkeypatch.setenv("FLBSQL_TEST_OIDC_SECRET", oidc.secret)
    values = {
        "url": "postgresql://127.0.0.1/x",
        "table": "t",
        "password": "oidc:urn:flbsql:db",
        "oidc.issuer": oidc.issuer,
        "oidc.client_id": "flbsql",
        "oidc.client_secret": "env:FLBSQL_TEST_OIDC_SECRET",
        "oidc.scope": "logs:write",
    }
    cfg = parse("output", values.get)
    assert oidc.secret not in repr(cfg)
    token = SecretResolver(cfg, LOG).resolve("password")
    assert token is not None
    assert (claims_of(token) or {})["aud"] == "urn:flbsql:db"


# -- errors: one line naming issuer and client, never the secret ------------------------


def test_unknown_client(oidc):
    line = refused(client(oidc, "nobody", client_secret="whatever-secret"))
    assert line.startswith(
        f"oidc: issuer {oidc.issuer} client 'nobody' refused: unknown client or wrong "
        "secret (oidc.client_secret) (invalid_client: client authentication failed)"
    ), line


def test_wrong_secret_is_clear_and_not_sent_again(oidc, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("wrong-secret-value")
    c = client(oidc, client_secret=f"file:{secret}")
    before = oidc.refusals()
    line = refused(c)
    assert line == (
        f"oidc: issuer {oidc.issuer} client 'flbsql' refused: unknown client or wrong "
        "secret (oidc.client_secret) (invalid_client: client authentication failed)"
    )
    assert "wrong-secret-value" not in line
    again = refused(c)  # the same credentials: not sent again, the same line
    assert again.startswith(line + " (not asked again for ")
    assert oidc.refusals() - before == 1
    secret.write_text(oidc.secret)  # the operator fixed it: used at once
    assert c.token()
    assert HOLD >= 10


def test_wrong_private_key(oidc):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    line = refused(client(oidc, "flbsql-rsa", private_key=pem))
    assert line == (
        f"oidc: issuer {oidc.issuer} client 'flbsql-rsa' refused: unknown client or wrong "
        "assertion (oidc.private_key) (invalid_client: client authentication failed)"
    )


def test_scope_not_allowed(oidc):
    line = refused(client(oidc, scope="admin"))
    assert line == (
        f"oidc: issuer {oidc.issuer} client 'flbsql' refused scope 'admin' (invalid_scope: "
        "requested scope is not allowed); check oidc.scope against the scopes the client "
        "may ask for"
    )


def test_unknown_audience(oidc):
    line = refused(client(oidc, audience="urn:nobody"))
    assert line.startswith(
        f"oidc: issuer {oidc.issuer} client 'flbsql' refused audience 'urn:nobody' (invalid_target"
    ), line


def test_unreachable_issuer_is_retried(oidc):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    issuer = f"http://127.0.0.1:{port}/realms/logs"
    c = OidcClient(OidcSettings(issuer, "flbsql", client_secret="s-e-c-r-e-t"), LOG)
    started = time.monotonic()
    line = refused(c)
    assert line == (
        f"oidc: issuer {issuer} client 'flbsql': issuer unreachable (Connection refused)"
    )
    assert time.monotonic() - started >= 1.4  # retried twice (0.5 s + 1 s) before giving up
    started = time.monotonic()
    assert refused(c) == line  # and again at the next use: no hold for an outage
    assert time.monotonic() - started >= 1.4


def test_token_from_the_future_is_a_clock_skew(oidc_factory):
    ahead = oidc_factory(skew=120)
    line = refused(client(ahead, leeway=30))
    assert line.startswith(f"oidc: the token of issuer {ahead.issuer} client 'flbsql' is not ")
    assert re.search(r"valid yet: its iat is 1[12]\ds in the future", line)  # 120 s, about
    assert line.endswith(
        "s in the future (oidc.leeway 30s); the clocks of this host and the issuer differ "
        "(check NTP)"
    )
    clear_cache()
    assert client(ahead, leeway=180).token()  # within the leeway: accepted


def test_token_already_expired_is_a_clock_skew(oidc_factory):
    behind = oidc_factory(skew=-120, ttl=30)
    line = refused(client(behind))
    assert line.startswith(f"oidc: the token of issuer {behind.issuer} client 'flbsql' expired ")
    assert line.endswith(
        "s before it arrived; the clocks of this host and the issuer differ (check NTP)"
    )
