"""Demo oversight data: synthetic dispensings of Region Halland, run and published as flags for
its pharmaceutical unit, so that ``make run`` shows a review list at once.

Called by the demo loader (``vembetalar.web.demo.load``). Idempotent: when Halland already has
published flags nothing is made. Small (about 30 000 dispensings, a second or two) so that
``serve --demo`` still starts in a few seconds; the Parquet store is made in a temporary folder
and dropped, since the review pages read only the published flags.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vembetalar.oversight import details, review, synthetic
from vembetalar.oversight.importer import import_file
from vembetalar.oversight.run import Options, run
from vembetalar.oversight.store import Store
from vembetalar.store.oversight_models import OversightFlag

#: Region Halland (SCB county code 13): the synthetic generator's first region is "13".
OWNER = "region:13"
ROWS = 30_000
SEED = 13


def load(db: Session, owner: str = OWNER, rows: int = ROWS) -> int:
    """Publish demo flags for ``owner`` unless it has flags already; returns how many were added."""
    if db.scalar(
        select(func.count()).select_from(OversightFlag).where(OversightFlag.organisation_id == owner)
    ):
        return 0
    with tempfile.TemporaryDirectory(prefix="vembetalar-oversight-") as folder:
        root = Path(folder)
        source = root / "uttag.parquet"
        synthetic.write(source, rows, seed=SEED)
        store = Store(root / "store")
        import_file(source, store)
        options = Options(top=200)
        result = run(store, options)
        report = review.publish(db, owner, result.flags, details.compute(store, options, result.flags))
    return report.added
