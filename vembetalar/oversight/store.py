"""The dispensing store: Parquet files partitioned by month under one folder (``--db PATH``).

DuckDB and Spark read the same files. Beside them: ``imports.csv`` (which files were imported,
by content hash, so importing one again adds nothing) and ``rejects.csv`` (every rejected row,
with any personnummer-like value masked).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("var") / "oversight"
MANIFEST_FIELDS = ["sha256", "file", "imported_at", "rows", "imported", "rejected"]
REJECT_FIELDS = ["source_file", "row", "reason", "row_masked"]


@dataclass(frozen=True)
class Store:
    root: Path

    @classmethod
    def at(cls, path: Path | None) -> Store:
        return cls(path or DEFAULT_ROOT)

    @property
    def dispensings(self) -> Path:
        return self.root / "dispensings"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def manifest(self) -> Path:
        return self.root / "imports.csv"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.csv"

    def files(self) -> list[Path]:
        return sorted(self.dispensings.glob("month=*/*.parquet"))

    def has_data(self) -> bool:
        return bool(self.files())

    def create(self) -> None:
        """The store holds patient pseudonyms: folder 0700, like the app's database."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.dispensings.mkdir(exist_ok=True)

    def imported(self) -> dict[str, dict[str, str]]:
        """sha256 → its manifest line."""
        if not self.manifest.exists():
            return {}
        with self.manifest.open(encoding="utf-8", newline="") as handle:
            return {row["sha256"]: row for row in csv.DictReader(handle)}

    def record_import(self, sha: str, file: str, rows: int, imported: int, rejected: int) -> None:
        new = not self.manifest.exists()
        with self.manifest.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, MANIFEST_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(
                {
                    "sha256": sha,
                    "file": file,
                    "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "rows": rows,
                    "imported": imported,
                    "rejected": rejected,
                }
            )

    def append_rejects(self, staged: Path) -> None:
        """Append a staged reject file (same columns, with header) to rejects.csv."""
        new = not self.rejects.exists()
        with (
            staged.open(encoding="utf-8", newline="") as src,
            self.rejects.open("a", encoding="utf-8") as dst,
        ):
            header = src.readline()
            if new:
                dst.write(header)
            for line in src:
                dst.write(line)
