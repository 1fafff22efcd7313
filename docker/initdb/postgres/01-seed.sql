-- Seed data for the examples in conf/ (table-to-stdout, two-instances, cdc-to-table).
-- Run by the postgres image at first start; also usable by hand:
--   psql -h 127.0.0.1 -U flbsql flbsql -f docker/initdb/postgres/01-seed.sql
CREATE TABLE IF NOT EXISTS access_log (
    id          BIGSERIAL PRIMARY KEY,
    ts          TIMESTAMPTZ NOT NULL DEFAULT now(),
    level       TEXT NOT NULL,
    method      TEXT,
    path        TEXT,
    status      INTEGER,
    latency_ms  DOUBLE PRECISION
);
INSERT INTO access_log (ts, level, method, path, status, latency_ms)
SELECT now() - (n || ' seconds')::interval,
       CASE WHEN n % 50 = 0 THEN 'error' ELSE 'info' END,
       (ARRAY['GET', 'POST', 'PUT'])[1 + n % 3],
       '/api/items/' || (n % 97),
       CASE WHEN n % 50 = 0 THEN 500 ELSE 200 END,
       3 + (n * 7) % 120 / 3.0
FROM generate_series(1, 100) AS n
WHERE NOT EXISTS (SELECT 1 FROM access_log);

CREATE TABLE IF NOT EXISTS orders (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    amount      NUMERIC(12, 2) NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS payments (
    id          BIGSERIAL PRIMARY KEY,
    order_id    BIGINT NOT NULL,
    reference   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL
);
INSERT INTO customers (name) SELECT 'customer ' || n FROM generate_series(1, 10) AS n
WHERE NOT EXISTS (SELECT 1 FROM customers);
INSERT INTO orders (customer_id, amount) SELECT 1 + n % 10, n * 1.25 FROM generate_series(1, 20) AS n
WHERE NOT EXISTS (SELECT 1 FROM orders);
INSERT INTO payments (order_id, reference) SELECT n, 'pay-' || n FROM generate_series(1, 10) AS n
WHERE NOT EXISTS (SELECT 1 FROM payments);
