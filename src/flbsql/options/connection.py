"""Options of both plugins: connection, pool, Vault, metrics, runtime."""

from __future__ import annotations

from flbsql.options.option import Option

__all__ = ["CONNECTION"]

O = Option

CONNECTION: tuple[Option, ...] = (
    # --- connection -------------------------------------------------------------------
    O(
        "url",
        "str",
        None,
        "Database URL: postgresql://, mysql:// (or mariadb://), oracle://, mssql://, "
        "sqlite:///path, or a plain file path for SQLite. A password in it is redacted in "
        "logs; prefer `password` with a secret reference.",
        secret=True,
    ),
    O(
        "user",
        "str",
        None,
        "User name; overrides the URL's. Accepts secret references.",
        secret=True,
    ),
    O(
        "password",
        "str",
        None,
        "Password; overrides the URL's. Use `env:NAME`, `file:/path` or "
        "`vault:<path>#<field>` rather than a literal.",
        secret=True,
    ),
    O("connect_timeout", "duration", 10.0, "Timeout for establishing a connection.", minimum=0.1),
    O(
        "statement_timeout",
        "duration",
        60.0,
        "Timeout of one statement, also used as the socket read timeout, so a silent "
        "server never hangs a flush.",
        minimum=0.1,
    ),
    O(
        "ssl_mode",
        "choice",
        "prefer",
        "TLS to the database: disable, prefer, require (encrypt, no verification), "
        "verify-ca, verify-full (also checks the host name).",
        choices=("disable", "prefer", "require", "verify-ca", "verify-full"),
    ),
    O("ssl_ca", "str", None, "CA bundle file to verify the server certificate."),
    O("ssl_cert", "str", None, "Client certificate file (PEM)."),
    O("ssl_key", "str", None, "Client private key file (PEM).", secret=True),
    O(
        "python",
        "str",
        None,
        "Interpreter of the virtualenv the plugin runs in (`<venv>/bin/python`). Read by "
        "the C shim before Python starts; the first plugin instance decides. Default: the "
        "venv the .so sits in, else the one it was built with; env FLBSQL_PYTHON also works.",
        group="runtime",
    ),
    # --- pool ---------------------------------------------------------------------------
    O(
        "pool.max_lifetime",
        "duration",
        1800.0,
        "A connection is replaced after this age (minus up to 10 % jitter).",
        group="pool",
        minimum=1.0,
    ),
    O(
        "pool.check_idle",
        "duration",
        30.0,
        "A connection idle for longer is pinged before use.",
        group="pool",
        minimum=0.0,
    ),
    O(
        "pool.backoff_initial",
        "duration",
        1.0,
        "First reconnect delay; doubles each failure.",
        group="pool",
        minimum=0.01,
    ),
    O("pool.backoff_max", "duration", 30.0, "Longest reconnect delay.", group="pool", minimum=0.01),
    # --- vault --------------------------------------------------------------------------
    O(
        "vault.address",
        "str",
        None,
        "Vault or OpenBao address (https://vault:8200). Enables `vault:` references.",
        group="vault",
    ),
    O("vault.namespace", "str", None, "Vault Enterprise namespace.", group="vault"),
    O(
        "vault.auth",
        "choice",
        "token",
        "Login method.",
        group="vault",
        choices=("token", "approle", "kubernetes", "jwt"),
    ),
    O(
        "vault.auth_mount",
        "str",
        None,
        "Mount path of the auth method (default: the method's name).",
        group="vault",
    ),
    O(
        "vault.token",
        "str",
        None,
        "Token for `vault.auth token` (default env VAULT_TOKEN).",
        group="vault",
        secret=True,
    ),
    O("vault.role_id", "str", None, "AppRole role_id.", group="vault", secret=True),
    O("vault.secret_id", "str", None, "AppRole secret_id.", group="vault", secret=True),
    O("vault.role", "str", None, "Role for kubernetes and jwt login.", group="vault"),
    O(
        "vault.jwt",
        "str",
        None,
        "JWT for jwt login: `oidc:` (a token of the `oidc.*` client, the default when "
        "`oidc.issuer` is set) or a file an identity provider writes (`file:/path`).",
        group="vault",
        secret=True,
    ),
    O(
        "vault.kubernetes_token_file",
        "str",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "Service-account token file for kubernetes login.",
        group="vault",
    ),
    O("vault.ca_file", "str", None, "CA bundle for the Vault server.", group="vault"),
    O(
        "vault.skip_verify",
        "bool",
        False,
        "Do not verify Vault's certificate (testing only).",
        group="vault",
    ),
    O(
        "vault.db_role",
        "str",
        None,
        "Role of the database secrets engine: user and password are dynamic credentials, "
        "renewed and rotated before expiry.",
        group="vault",
    ),
    O("vault.db_mount", "str", "database", "Mount of the database secrets engine.", group="vault"),
    O(
        "vault.renew_before",
        "float",
        0.33,
        "Rotate dynamic credentials when this fraction of the lease is left.",
        group="vault",
        minimum=0.05,
    ),
    # --- oidc ---------------------------------------------------------------------------
    O(
        "oidc.issuer",
        "str",
        None,
        "OpenID Connect issuer (Keycloak: https://host/realms/<realm>); its "
        "/.well-known/openid-configuration names the token endpoint. Enables `oidc:` "
        "references: access tokens of the client-credentials grant.",
        group="oidc",
    ),
    O("oidc.client_id", "str", None, "Client ID at the issuer.", group="oidc"),
    O(
        "oidc.client_secret",
        "str",
        None,
        "Client secret (client_secret_basic, or _post when the issuer only takes that); "
        "use `env:`, `file:` or `vault:`.",
        group="oidc",
        secret=True,
    ),
    O(
        "oidc.private_key",
        "str",
        None,
        "Instead of a secret: the client's RSA or EC P-256 private key (PEM text or a file "
        "path, e.g. `file:/path`), signing a private_key_jwt assertion (RS256/ES256).",
        group="oidc",
        secret=True,
    ),
    O(
        "oidc.key_id",
        "str",
        None,
        "`kid` of the signing key, when the issuer has several keys of the client.",
        group="oidc",
    ),
    O("oidc.scope", "str", None, "Scopes to ask for, space-separated.", group="oidc"),
    O(
        "oidc.audience",
        "str",
        None,
        "Audience of the token (sent as `audience`, and as `resource` when it is a URI); "
        "`oidc:<audience>` overrides it for one reference.",
        group="oidc",
    ),
    O("oidc.ca_file", "str", None, "CA bundle for the issuer's certificate.", group="oidc"),
    O(
        "oidc.leeway",
        "duration",
        30.0,
        "Clock difference tolerated on a token's iat/nbf; beyond it the token is refused "
        "as a clock skew.",
        group="oidc",
        minimum=0.0,
    ),
    # --- metrics ------------------------------------------------------------------------
    O(
        "metrics.interval",
        "duration",
        60.0,
        "Log a line of counters this often (0 = never).",
        group="metrics",
        minimum=0.0,
    ),
    O(
        "metrics.port",
        "int",
        0,
        "Serve Prometheus text on this port at /metrics (0 = off).",
        group="metrics",
        minimum=0,
    ),
    O("metrics.address", "str", "127.0.0.1", "Address the metrics server binds.", group="metrics"),
)
