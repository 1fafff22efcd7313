#!/bin/sh
# Print the URLs of the compose stack's Oracle and SQL Server for the live tests:
#   eval "$(docker/test-urls.sh)" && make test-oracle test-mssql
# Uses the same variables and defaults as docker/compose.yml, so they cannot disagree.
pw="${FLBSQL_DEV_PASSWORD:-Flbsql-dev-1}"
echo "export FLBSQL_TEST_ORACLE_URL='oracle://flbsql:${pw}@127.0.0.1:${FLBSQL_ORACLE_PORT:-1521}/FREEPDB1'"
echo "export FLBSQL_TEST_MSSQL_URL='mssql://sa:${pw}@127.0.0.1:${FLBSQL_MSSQL_PORT:-1433}/master'"
