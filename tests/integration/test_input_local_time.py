"""A naive timestamp in the hour a DST change repeats is read as PostgreSQL reads it."""

from __future__ import annotations

import pytest
from tests.fix_db import unique_table
from tests.integration.input_helpers import drain, source

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("option", ["database", "earlier"])
def test_event_time_of_a_repeated_local_hour_follows_postgresql_by_default(pg_db, tmp_path, option):
    t = unique_table("dst")
    pg_db.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, ts timestamp)")
    pg_db.execute(f"INSERT INTO {t} VALUES (1, '2026-10-25 02:30'), (2, '2026-03-29 02:30')")
    [(repeated,), (skipped,)] = pg_db.query(
        f"SELECT extract(epoch FROM ts AT TIME ZONE 'Europe/Berlin')::bigint FROM {t} ORDER BY id"
    )
    src = source(
        pg_db,
        tmp_path,
        table=t,
        time_column="ts",
        time_zone="Europe/Berlin",
        time_zone_ambiguous=option,
    )
    try:
        got = {e.body["id"]: (e.time.sec, e.body["ts"]) for e in drain(src, 2)}
    finally:
        src.close()
    if option == "database":  # exactly PostgreSQL's own reading
        assert got == {
            1: (repeated, "2026-10-25T02:30:00+01:00"),
            2: (skipped, "2026-03-29T02:30:00+01:00"),
        }
    else:  # the first reading of the repeated hour: one hour earlier
        assert got[1] == (repeated - 3600, "2026-10-25T02:30:00+02:00")
        assert got[2][0] == skipped
