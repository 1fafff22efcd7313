-- Change data capture for conf/cdc-to-table.*: a role that may decode WAL, and the
-- publication. The server runs with wal_level=logical (docker/compose.yml). The slot is
-- created by the plugin at first start (docs/cdc.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdc_reader') THEN
        -- no password here: the e2e stack reaches it with the flbsql owner role instead;
        -- give it one with ALTER ROLE ... PASSWORD when you use it from outside
        CREATE ROLE cdc_reader LOGIN REPLICATION;
    END IF;
END $$;
GRANT SELECT ON orders, customers TO cdc_reader;
DROP PUBLICATION IF EXISTS flbsql_app;
CREATE PUBLICATION flbsql_app FOR TABLE orders, customers;
