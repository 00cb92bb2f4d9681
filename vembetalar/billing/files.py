"""Writing issued invoices to a folder: one ``NUMMER.xml`` (PEPPOL BIS Billing 3.0) and, for
recipients who take paper, ``NUMMER.pdf`` each.

A month of a large region is thousands of invoices, and each PDF takes WeasyPrint a tenth of a
second: the documents are rendered on every core (separate processes; the rendering holds the
interpreter lock), with a progress bar. Small batches stay in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from vembetalar.billing.document import document_from_json

#: Below this many documents the pool's start-up costs more than it saves.
POOL_FROM = 16


def write_one(document: dict[str, Any], folder: Path, pdf: bool = True) -> list[Path]:
    """The invoice's XML and (with ``pdf``) its PDF, each named by its invoice number."""
    from vembetalar.billing.pdf import render_pdf
    from vembetalar.billing.ubl import to_ubl

    doc = document_from_json(document)
    folder.mkdir(parents=True, exist_ok=True)
    xml = folder / f"{doc.number}.xml"
    xml.write_bytes(to_ubl(doc))
    if not pdf:
        return [xml]
    path = folder / f"{doc.number}.pdf"
    path.write_bytes(render_pdf(doc))
    return [xml, path]


def _write_chunk(blobs: list[bytes], folder: str, pdf: bool) -> int:
    for blob in blobs:
        write_one(orjson.loads(blob), Path(folder), pdf)
    return len(blobs)


def write_all(
    documents: Sequence[dict[str, Any]],
    folder: Path,
    *,
    pdf: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every document; ``progress`` is told how many were written as they finish."""
    workers = workers or os.cpu_count() or 1
    if len(documents) < POOL_FROM or workers == 1:
        for document in documents:
            write_one(document, folder, pdf)
            if progress:
                progress(1)
        return len(documents)
    folder.mkdir(parents=True, exist_ok=True)
    size = max(1, min(64, len(documents) // (workers * 4)))
    # Documents travel to the workers as JSON bytes: pickling a 100 000-line document's dicts
    # cost more than writing its XML.
    blobs = [orjson.dumps(document) for document in documents]
    chunks = [blobs[i : i + size] for i in range(0, len(blobs), size)]
    # "spawn": WeasyPrint's font and Pango state is not safe to share with a fork.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = 0
        for done in pool.map(_write_chunk, chunks, [str(folder)] * len(chunks), [pdf] * len(chunks)):
            written += done
            if progress:
                progress(done)
    return written
