"""Lease renewal/rotation rules and the login calls, with a stub hvac client and clock."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import hvac  # a missing hvac (the test extra) fails here, never skips
import pytest

from flbsql.errors import SecretError
from flbsql.secrets.dynamic import DynamicCredentials
from flbsql.secrets.vault import VaultClient, VaultSettings


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


class StubHvac:
    """Just the hvac surface vault.py uses."""

    def __init__(self, ttl=30, max_ttl=30, renewable=True):
        self.ttl, self.max_ttl, self.renewable = ttl, max_ttl, renewable
        self.issued = 0
        self.lease_start = {}
        self.down = False
        self.calls = []
        self.token = None
        self.token_ttl = 3600
        self.clock: Any = None
        self.auth = SimpleNamespace(
            approle=SimpleNamespace(login=self._login("approle")),
            kubernetes=SimpleNamespace(login=self._login("kubernetes")),
            jwt=SimpleNamespace(jwt_login=self._login("jwt")),
            token=SimpleNamespace(lookup_self=lambda: {"data": {"ttl": 0, "renewable": False}}),
        )
        self.secrets = SimpleNamespace(
            database=SimpleNamespace(generate_credentials=self._generate)
        )
        self.sys = SimpleNamespace(renew_lease=self._renew)

    def _login(self, method):
        def login(**kw):
            self.calls.append((method, kw))
            ttl = self.token_ttl
            return {"auth": {"client_token": "tok-" + method, "lease_duration": ttl}}

        return login

    def _check(self):
        if self.down:
            import requests

            raise requests.ConnectionError("refused")

    def _generate(self, name, mount_point):
        self._check()
        self.issued += 1
        lease = f"{mount_point}/creds/{name}/{self.issued}"
        self.lease_start[lease] = self.clock()
        return {
            "lease_id": lease,
            "lease_duration": self.ttl,
            "renewable": self.renewable,
            "data": {"username": f"v-user-{self.issued}", "password": f"pw-{self.issued}-secret"},
        }

    def _renew(self, lease_id, increment):
        self._check()
        left = self.lease_start[lease_id] + self.max_ttl - self.clock()
        return {
            "lease_id": lease_id,
            "lease_duration": max(0, min(increment, int(left))),
            "renewable": True,
        }


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)
    return c


def make(clock, monkeypatch, **stub_kw):
    stub = StubHvac(**stub_kw)
    stub.clock = clock
    monkeypatch.setattr(hvac, "Client", lambda **kw: stub)
    s = VaultSettings(
        address="http://vault:8200",
        auth="approle",
        role_id="r",
        secret_id="s",
        db_role="writer",
        renew_before=0.33,
    )
    client = VaultClient(s, logging.getLogger("test.vault"))
    return DynamicCredentials(client, logging.getLogger("test.vault")), stub


def test_rotates_before_expiry_when_renewal_cannot_extend(clock, monkeypatch):
    creds, _stub = make(clock, monkeypatch, ttl=30, max_ttl=30)
    assert creds() == ("v-user-1", "pw-1-secret")
    clock.now += 19.0  # 11 s left: more than 33 % of 30 s
    assert creds()[0] == "v-user-1"
    clock.now += 1.5  # 9.5 s left: rotate (the renewal would only give 9 s)
    assert creds()[0] == "v-user-2"
    assert creds.counters == {"leases": 2, "renewals": 0, "failures": 0, "revoked": 0}


def test_renews_while_vault_grants_a_full_ttl_then_rotates(clock, monkeypatch):
    creds, _stub = make(clock, monkeypatch, ttl=30, max_ttl=90)
    creds()
    for expected_renewals in (1, 2):
        clock.now += 20.5
        assert creds()[0] == "v-user-1"
        assert creds.counters["renewals"] == expected_renewals
    clock.now += 20.5  # 61.5 s in: a renewal would give 28 s < 30 s: rotate
    assert creds()[0] == "v-user-2"


def test_a_lease_ends_with_the_vault_token_that_read_it(clock, monkeypatch):
    # Vault revokes a token's leases when the token expires: a 60 s lease read with a
    # 30 s token (a JWT login) is gone at 30 s, so it is replaced when the token is
    creds, stub = make(clock, monkeypatch, ttl=60, max_ttl=600)
    stub.token_ttl = 30
    assert creds()[0] == "v-user-1"
    clock.now += 19.5  # the token has 10.5 s left, more than a third: nothing is due
    assert creds()[0] == "v-user-1"
    clock.now += 1.0  # the token is replaced: its lease too (a renewal would not help)
    assert creds()[0] == "v-user-2"
    assert [m for m, _ in stub.calls] == ["approle", "approle"]
    assert creds.counters["renewals"] == 0


def test_not_renewable_rotates(clock, monkeypatch):
    creds, _stub = make(clock, monkeypatch, ttl=30, max_ttl=300, renewable=False)
    creds()
    clock.now += 21
    assert creds()[0] == "v-user-2"


def test_vault_down_keeps_valid_credentials_then_fails_after_expiry(clock, monkeypatch):
    creds, stub = make(clock, monkeypatch, ttl=30, max_ttl=30)
    creds()
    stub.down = True
    clock.now += 21
    assert creds()[0] == "v-user-1"  # still valid for 9 s: keep it, retry soon
    assert creds.counters["failures"] == 1
    clock.now += 10  # expired
    with pytest.raises(SecretError, match="unreachable"):
        creds()
    stub.down = False
    clock.now += 1
    assert creds()[0] == "v-user-2"


def test_first_read_with_vault_down_raises(clock, monkeypatch):
    creds, stub = make(clock, monkeypatch)
    stub.down = True
    with pytest.raises(SecretError):
        creds()


def test_repr_shows_no_credentials(clock, monkeypatch):
    creds, _stub = make(clock, monkeypatch)
    creds()
    text = repr(creds) + repr(creds._lease) + repr(creds.client)
    assert "pw-1-secret" not in text and "v-user-1" not in text


def test_kubernetes_login_reads_the_service_account_token_each_time(clock, monkeypatch, tmp_path):
    stub = StubHvac()
    stub.clock = clock
    monkeypatch.setattr(hvac, "Client", lambda **kw: stub)
    tok = tmp_path / "token"
    tok.write_text("sa-token-1\n")
    s = VaultSettings(
        address="https://vault:8200",
        auth="kubernetes",
        role="fluent-bit",
        auth_mount="k8s-prod",
        kubernetes_token_file=str(tok),
    )
    c = VaultClient(s, logging.getLogger("test.vault"))
    c.call("x", lambda client: None)
    tok.write_text("sa-token-2\n")  # kubelet rotated the projected token
    c._logged_in = False
    c.call("x", lambda client: None)
    assert stub.calls == [
        ("kubernetes", {"role": "fluent-bit", "jwt": "sa-token-1", "mount_point": "k8s-prod"}),
        ("kubernetes", {"role": "fluent-bit", "jwt": "sa-token-2", "mount_point": "k8s-prod"}),
    ]


def test_jwt_login_needs_a_role(clock, monkeypatch):
    stub = StubHvac()
    monkeypatch.setattr(hvac, "Client", lambda **kw: stub)
    s = VaultSettings(address="https://vault:8200", auth="jwt", jwt="x.y.z")
    with pytest.raises(SecretError, match=r"vault\.role"):
        VaultClient(s, logging.getLogger("t")).call("x", lambda client: None)


def test_tls_and_namespace_reach_hvac(monkeypatch):
    seen = {}
    monkeypatch.setattr(hvac, "Client", lambda **kw: seen.update(kw) or StubHvac())
    VaultClient(
        VaultSettings(address="https://v:8200", namespace="team-a", ca_file="/etc/ca.pem"),
        logging.getLogger("t"),
    )
    assert seen["verify"] == "/etc/ca.pem" and seen["namespace"] == "team-a"
    VaultClient(VaultSettings(address="https://v:8200", skip_verify=True), logging.getLogger("t"))
    assert seen["verify"] is False
