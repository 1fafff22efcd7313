"""TLS options end to end on PostgreSQL: a throwaway cluster with a test CA.

ssl_mode require/verify-ca/verify-full, ssl_ca, and client-certificate login
(``ssl_cert`` + ``ssl_key``, the key also given as a secret reference holding PEM
text) through the option table, ``open_pool`` and the dialect.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import pwd

import pytest

from flbsql.conn.connect import open_pool
from flbsql.errors import TransientError
from flbsql.settings import parse

pytestmark = [pytest.mark.postgres]


def _pem_key(key):
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(subject_cn, issuer_key, issuer_name, key, ca=False, san_ip=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = dt.datetime.now(dt.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san_ip:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(san_ip)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def _ca(cn):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key, _cert(cn, key, None, key, ca=True)


@pytest.fixture(scope="module")
def tls(pg_cluster_factory, tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key, ca = _ca("flbsql test CA")
    other_key, other_ca = _ca("some other CA")
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("127.0.0.1", ca_key, ca.subject, srv_key, san_ip="127.0.0.1")
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("certuser", ca_key, ca.subject, cli_key)
    pem = serialization.Encoding.PEM

    cluster = pg_cluster_factory(
        hba=["hostssl all certuser 127.0.0.1/32 cert", "host all certuser 127.0.0.1/32 reject"]
    )
    files = {
        "server.crt": srv.public_bytes(pem),
        "server.key": _pem_key(srv_key),
        "ca.crt": ca.public_bytes(pem),
    }
    pw = pwd.getpwuid(os.stat(cluster.root).st_uid)
    for name, data in files.items():
        path = cluster.root / name
        path.write_bytes(data)
        os.chmod(path, 0o600)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    with open(cluster.datadir / "postgresql.conf", "a") as f:
        f.write(
            f"ssl = on\nssl_cert_file = '{cluster.root / 'server.crt'}'\n"
            f"ssl_key_file = '{cluster.root / 'server.key'}'\n"
            f"ssl_ca_file = '{cluster.root / 'ca.crt'}'\n"
        )
    cluster.restart()
    cluster.execute("CREATE ROLE certuser LOGIN")
    client = tmp_path_factory.mktemp("tls")
    out = {
        "ca": client / "ca.crt",
        "other_ca": client / "other.crt",
        "cert": client / "client.crt",
        "key": client / "client.key",
    }
    out["ca"].write_bytes(ca.public_bytes(pem))
    out["other_ca"].write_bytes(other_ca.public_bytes(pem))
    out["cert"].write_bytes(cli.public_bytes(pem))
    out["key"].write_bytes(_pem_key(cli_key))
    os.chmod(out["key"], 0o600)
    _ = other_key
    return cluster, out


def pool_for(cluster, **opts):
    values = {
        "url": cluster.url(),
        "table": "t",
        "pool.backoff_initial": "0.01",
        **{k.replace("__", "."): str(v) for k, v in opts.items()},
    }
    return open_pool(parse("output", values.get, probe_typos=False), logging.getLogger("test.tls"))


def ssl_in_use(pool):
    try:
        with pool.connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            value = cur.fetchone()[0]
            conn.rollback()
            return value
    finally:
        pool.close()


def test_require_encrypts(tls):
    cluster, _ = tls
    assert ssl_in_use(pool_for(cluster, ssl_mode="require")) is True
    assert ssl_in_use(pool_for(cluster, ssl_mode="disable")) is False


def test_verify_full_with_the_right_ca(tls):
    cluster, files = tls
    assert ssl_in_use(pool_for(cluster, ssl_mode="verify-full", ssl_ca=files["ca"])) is True


def test_verify_ca_with_a_foreign_ca_fails_and_is_retried(tls):
    cluster, files = tls
    pool = pool_for(cluster, ssl_mode="verify-ca", ssl_ca=files["other_ca"])
    with pytest.raises(TransientError, match="certificate"):
        ssl_in_use(pool)


def test_client_certificate_login(tls):
    cluster, files = tls
    url = cluster.url(user="certuser")
    pool = pool_for(
        cluster,
        url=url,
        ssl_mode="verify-full",
        ssl_ca=files["ca"],
        ssl_cert=files["cert"],
        ssl_key=files["key"],
    )
    assert ssl_in_use(pool) is True
    with pytest.raises(TransientError):  # no certificate: rejected
        ssl_in_use(pool_for(cluster, url=url, ssl_mode="require"))


def test_client_key_from_a_secret_reference(tls, monkeypatch):
    cluster, files = tls
    monkeypatch.setenv("FLBSQL_T_CLIENT_KEY", files["key"].read_text())
    pool = pool_for(
        cluster,
        url=cluster.url(user="certuser"),
        ssl_mode="verify-full",
        ssl_ca=files["ca"],
        ssl_cert=files["cert"],
        ssl_key="env:FLBSQL_T_CLIENT_KEY",
    )
    assert ssl_in_use(pool) is True
