"""DuckDB ≡ Spark: the same SQL steps give the same ranked flags, byte for byte, on a small set."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vembetalar.oversight import synthetic
from vembetalar.oversight.importer import import_file
from vembetalar.oversight.run import Options, run
from vembetalar.oversight.store import Store

pytest.importorskip("pyspark", reason="PySpark is not installed")
pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java on PATH")


@pytest.fixture(scope="module")
def spark_engine() -> Iterator[object]:
    """One local[2] session for the module, tuned for small data (no codegen, one shuffle partition)."""
    from vembetalar.oversight.engines import SparkEngine

    engine = SparkEngine()
    for key, value in {
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.adaptive.enabled": "false",
    }.items():
        engine.spark.conf.set(key, value)
    try:
        yield engine
    finally:
        engine.close()


def test_duckdb_and_spark_give_identical_flags(tmp_path: Path, spark_engine: object) -> None:
    source = tmp_path / "uttag.parquet"
    synthetic.write(source, 12_000, seed=5)
    store = Store(tmp_path / "store")
    import_file(source, store)
    options = Options()
    embedded = run(store, options, "duckdb")
    distributed = run(store, options, "spark", engine=spark_engine)  # type: ignore[arg-type]
    assert distributed.engine == "spark" and embedded.engine == "duckdb"
    assert len(embedded.flags) >= 10
    assert {f.indicator for f in embedded.flags} == {
        "watched_volume",
        "rare_for_peers",
        "no_personnummer",
        "many_prescribers",
        "sudden_growth",
        "benefit_cost_trend",
    }
    assert [f.row() for f in distributed.flags] == [f.row() for f in embedded.flags]
