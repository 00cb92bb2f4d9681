"""Two engines, one definition: the indicator SQL in ``sql/`` runs on DuckDB (embedded, the
default) or on Apache Spark (a national deployment; local mode in tests) over the same Parquet.

An engine only knows how to expose the store and the watch list as tables, how to keep a step's
result (DuckDB: a temporary table; Spark: a cached temporary view) and how to fetch rows. The one
piece of SQL that differs between them — days since 1970 — is ``day_no``.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Protocol

from vembetalar.oversight.schema import WatchGroup
from vembetalar.oversight.store import Store

EngineName = Literal["duckdb", "spark"]
StepKind = Literal["table", "view"]


class EngineError(RuntimeError):
    """The engine could not start or run (e.g. no Java for Spark)."""


def watch_rows(watch: tuple[WatchGroup, ...]) -> list[tuple[str, str, str]]:
    return [(g.code, g.name, prefix) for g in watch for prefix in g.atc]


class Engine(Protocol):
    name: str
    day_no: str

    def load(self, store: Store, watch: tuple[WatchGroup, ...]) -> None: ...
    def keep(self, name: str, sql: str, kind: StepKind) -> None: ...
    def fetch(self, sql: str) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


class DuckDBEngine:
    name = "duckdb"
    day_no = "CAST(date_diff('day', DATE '1970-01-01', dispensed_on) AS INTEGER)"

    def __init__(self, memory_limit: str | None = None, threads: int | None = None) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = false")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")

    def load(self, store: Store, watch: tuple[WatchGroup, ...]) -> None:
        pattern = str(store.dispensings / "month=*" / "*.parquet").replace("'", "''")
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW dispensings AS "
            f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = false)"
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE watch (group_code VARCHAR, group_name VARCHAR, prefix VARCHAR)"
        )
        self.con.executemany("INSERT INTO watch VALUES (?, ?, ?)", watch_rows(watch))

    def keep(self, name: str, sql: str, kind: StepKind) -> None:
        what = "TABLE" if kind == "table" else "VIEW"
        self.con.execute(f"CREATE OR REPLACE TEMP {what} {name} AS {sql}")

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql)
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """PySpark in local mode by default ($VEMBETALAR_SPARK_MASTER picks a cluster)."""

    name = "spark"
    day_no = "datediff(dispensed_on, DATE '1970-01-01')"

    def __init__(self, master: str | None = None, shuffle_partitions: int = 2) -> None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            from pyspark.sql import SparkSession

            self.spark = (
                SparkSession.builder.master(master or os.environ.get("VEMBETALAR_SPARK_MASTER", "local[2]"))
                .appName("vembetalar-oversight")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
                .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.driver.memory", os.environ.get("VEMBETALAR_SPARK_DRIVER_MEMORY", "2g"))
                .getOrCreate()
            )
        except Exception as exc:  # Java missing or the JVM refusing to start
            raise EngineError(
                f"Spark kunde inte starta ({type(exc).__name__}); finns Java 17 på PATH?"
            ) from None
        self.spark.sparkContext.setLogLevel("ERROR")
        self._cached: list[Any] = []

    def load(self, store: Store, watch: tuple[WatchGroup, ...]) -> None:
        frame = self.spark.read.parquet(str(store.dispensings))
        frame.createOrReplaceTempView("dispensings")
        self.spark.createDataFrame(
            watch_rows(watch), "group_code string, group_name string, prefix string"
        ).createOrReplaceTempView("watch")

    def keep(self, name: str, sql: str, kind: StepKind) -> None:
        frame = self.spark.sql(sql)
        if kind == "table":
            # Materialised and its lineage cut, like a temporary table: later steps read the
            # result instead of re-planning (and re-printing) every step before it.
            frame = frame.localCheckpoint(eager=True)
            self._cached.append(frame)
        frame.createOrReplaceTempView(name)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        return [row.asDict() for row in self.spark.sql(sql).collect()]

    def close(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()
        # The session itself stays for the next run in this process (starting one takes seconds).


def make_engine(name: str) -> Engine:
    if name == "duckdb":
        return DuckDBEngine(os.environ.get("VEMBETALAR_DUCKDB_MEMORY"))
    if name == "spark":
        return SparkEngine()
    raise EngineError(f"okänd motor {name!r} (duckdb eller spark)")
