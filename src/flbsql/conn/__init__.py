"""Connections: what a URL says, where credentials come from, and the pool that heals.

- :mod:`~flbsql.conn.url`: the ``url`` option to :class:`~flbsql.conn.url.ConnectParams`;
- :mod:`~flbsql.conn.connect`: options + secret references (env, file, Vault) to a
  credentials callable and a ready (lazy) pool, for every mode of both plugins;
- :mod:`~flbsql.conn.pool`: checkout, ping, lifetime, invalidation on a disconnect;
- :mod:`~flbsql.conn.watchdog`: a checked-out connection that moves no bytes past its
  limit is broken, so a silent server never hangs a flush or a read;
- :mod:`~flbsql.conn.backoff`: the one retry policy.
"""
