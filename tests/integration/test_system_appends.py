"""System-table rows are built in the JVM from one JSON literal (no Python worker): the
frame must hold exactly what ``spark.createDataFrame`` would, for every system table,
with NULLs, arrays, quotes, unicode, big numbers and naive and aware timestamps; and a
value of the wrong type must fail, not land as NULL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from lakeforge.lineage import system_tables as st

pytestmark = pytest.mark.spark


def sample(table: str, i: int) -> tuple[Any, ...]:
    """A row of ``table``'s DDL with awkward values, varied by ``i``."""
    values: list[Any] = []
    for col in st.DDL[table].split(", "):
        name, kind = col.split()[0], col.split()[1]
        if i == 0 and name not in ("run_id", "table_name", "path", "id"):
            values.append(None)  # every nullable column NULL
        elif kind == "STRING":
            values.append(f'{name} "quoted" \\ é ✓ {i}\n')
        elif kind == "BIGINT":
            values.append(2**40 + i if i % 2 else -i)
        elif kind == "DOUBLE":
            values.append(0.1 * i)
        elif kind == "BOOLEAN":
            values.append(i % 2 == 1)
        elif kind == "TIMESTAMP":
            aware = datetime(2026, 11, 30, 5, 1, 2, 123456, tzinfo=UTC) + timedelta(hours=i)
            naive = datetime(2026, 3, 29, 2, 30, 0, 7)  # read as local time, like PySpark
            east = aware.astimezone(timezone(timedelta(hours=5, minutes=30)))
            values.append((aware, naive, east)[i % 3])
        elif kind == "ARRAY<STRING>":
            values.append([] if i == 1 else ["a", None, '"b"'])
        else:  # pragma: no cover - a new DDL type needs a case here
            raise AssertionError(f"{table}.{name}: no sample for {kind}")
    return tuple(values)


@pytest.mark.parametrize("table", sorted(st.DDL))
def test_literal_frame_equals_create_data_frame(spark: SparkSession, table: str) -> None:
    rows = [sample(table, i) for i in range(5)]
    ours = st._literal_frame(spark, table, rows)
    theirs = spark.createDataFrame(rows, st._schema(table))
    assert ours.schema == theirs.schema
    assertDataFrameEqual(ours, theirs, checkRowOrder=True)


def test_wrong_type_fails_instead_of_landing_null(spark: SparkSession) -> None:
    row = list(sample(st.TABLE_VERSIONS, 2))
    row[5] = "seven"  # version BIGINT: the JSON reader must refuse it (FAILFAST)
    with pytest.raises(Exception, match=r"(?i)malformed|FAILFAST"):
        st._literal_frame(spark, st.TABLE_VERSIONS, [tuple(row)]).collect()
    row = list(sample(st.RUN_EVENTS, 2))
    row[5] = "not a timestamp"  # started_at: PySpark's own conversion refuses it
    with pytest.raises(AttributeError):
        st._literal_frame(spark, st.RUN_EVENTS, [tuple(row)])
