"""Writing issued invoices to a folder: one ``NUMMER.xml`` (PEPPOL BIS Billing 3.0) and, for
recipients who take paper, ``NUMMER.pdf`` each.

A month of a large region is thousands of invoices. The files are rendered on every core
(separate processes: the rendering holds the interpreter lock) while the invoice run goes on
issuing the next batch, so a run with ``--out`` takes little longer than one without. Small
batches stay in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from vembetalar.billing.document import document_from_json

#: Below this many documents the pool's start-up costs more than it saves.
POOL_FROM = 16
#: Lines handed to a worker at a time (a chunk ends with the document that reaches it): large
#: enough to amortise the hand-over, small enough to keep every core busy to the end.
CHUNK_LINES = 20_000


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


class FileWriter:
    """Writes documents handed to it (as JSON bytes, the form the run stores them in) on a pool
    of processes, while the caller goes on. Leaving the ``with`` block waits for every file and
    raises the first error a worker met.

    Documents are held back until there are enough to be worth a pool; if the block ends before
    that, they are written here, in this process."""

    def __init__(
        self,
        folder: Path,
        *,
        pdf: bool = True,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = folder
        self.pdf = pdf
        self.workers = workers or os.cpu_count() or 1
        self.progress = progress
        self.written = 0
        self._held: list[tuple[bytes, int]] = []
        self._held_lines = 0
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[int]] = []
        # A PDF takes WeasyPrint a tenth of a second whatever its length: fewer per chunk.
        self._chunk_documents = 8 if pdf else 256

    def __enter__(self) -> FileWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def add(self, blob: bytes, lines: int = 1) -> None:
        """Hand over one encoded document; ``lines`` (its line count) sizes the chunks."""
        self._held.append((blob, lines))
        self._held_lines += lines
        enough = len(self._held) >= POOL_FROM or self._held_lines >= CHUNK_LINES
        if self._pool is None and self.workers > 1 and enough:
            # "spawn": WeasyPrint's font and Pango state is not safe to share with a fork.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        if self._pool is not None and (
            self._held_lines >= CHUNK_LINES or len(self._held) >= self._chunk_documents
        ):
            self._submit()

    def _submit(self) -> None:
        """Hand what is held to the pool in chunks: a chunk ends with the document that brings it
        to ``CHUNK_LINES`` lines or ``_chunk_documents`` documents (the rule ``add`` submits by)."""
        if self._pool is None:
            return
        chunk: list[bytes] = []
        lines = 0
        for blob, count in self._held:
            chunk.append(blob)
            lines += count
            if lines >= CHUNK_LINES or len(chunk) >= self._chunk_documents:
                self._send(chunk)
                chunk, lines = [], 0
        if chunk:
            self._send(chunk)
        self._held, self._held_lines = [], 0

    def _send(self, chunk: list[bytes]) -> None:
        assert self._pool is not None
        future = self._pool.submit(_write_chunk, chunk, str(self.folder), self.pdf)
        future.add_done_callback(self._done)
        self._futures.append(future)

    def _done(self, future: Future[int]) -> None:
        if self.progress and not future.cancelled() and future.exception() is None:
            self.progress(future.result())

    def _write_here(self) -> None:
        for blob, _ in self._held:
            write_one(orjson.loads(blob), self.folder, self.pdf)
            self.written += 1
            if self.progress:
                self.progress(1)
        self._held, self._held_lines = [], 0

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                if self._pool is None:
                    self._write_here()
                else:
                    self._submit()
            if error is None:  # the first worker error reaches the caller
                self.written += sum(future.result() for future in self._futures)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=error is not None)


def write_all(
    documents: Sequence[dict[str, Any]],
    folder: Path,
    *,
    pdf: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every document; ``progress`` is told how many were written as they finish."""
    with FileWriter(folder, pdf=pdf, workers=workers, progress=progress) as writer:
        # Documents travel to the workers as JSON bytes: pickling a 100 000-line document's
        # dicts cost more than writing its XML.
        for document in documents:
            writer.add(orjson.dumps(document), len(document.get("lines", ())))
    return writer.written
