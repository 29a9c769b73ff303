"""``diff --corpus`` over a corpus of any size, in flat memory, on every core.

Items are read, decided under both policies and their changes rendered in
worker processes (:mod:`policy_engine.cli.ordered_pool`), chunk by chunk in
the corpus' order. This process keeps the verdict counts and appends each
changed item, already rendered, to a spool file; the report is written at the
end with the spool copied in where the changes go. Nothing grows with the
corpus but the spool on disk.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from policy_engine.cli.common import CommandError
from policy_engine.cli.corpus_items import CorpusSource, Entry, parse_entry
from policy_engine.cli.ordered_pool import WorkerDied, ordered_map
from policy_engine.compiler import CompiledPolicy
from policy_engine.plugins import DetectorRegistry
from policy_engine.review.diff import CorpusCounts, CorpusTally, ItemChange, decide_item


@dataclass(frozen=True, slots=True)
class ChangeFormat:
    """How one output format writes a changed item, and what stands between two."""

    render: Callable[[ItemChange], str]
    joiner: str
    quoted: bool
    """The placeholder for the changes is a JSON string (``"..."``) in the report."""


@dataclass(frozen=True, slots=True)
class StreamedCorpus:
    """A corpus diff whose changed items are in ``spool``, rendered, in corpus order."""

    counts: CorpusCounts
    spool: TextIO
    marker: str
    """Stands where the changes go in the rendered report."""

    def to_dict(self) -> dict[str, Any]:
        return self.counts.to_dict([self.marker] if self.counts.changed else [])


@dataclass(frozen=True, slots=True)
class _Worker:
    """What every chunk is decided with: set once per worker process."""

    old: CompiledPolicy
    new: CompiledPolicy
    registry: DetectorRegistry
    folder: bool
    render: Callable[[ItemChange], str]


_worker: _Worker | None = None


def _set_worker(worker: _Worker) -> None:
    global _worker
    _worker = worker


ChunkResult = tuple[list[int], list[str], CommandError | None]
"""The chunk's verdict cells, its changed items rendered, and the error that stopped it."""


def _decide_chunk(entries: list[Entry]) -> ChunkResult:
    assert _worker is not None, "the worker is set up before any chunk"
    cells = [0] * 9
    rendered: list[str] = []
    for entry in entries:
        try:
            item = parse_entry(_worker.folder, entry, _worker.registry)
        except CommandError as error:
            return cells, rendered, error
        if item is None:
            continue
        cell, change = decide_item(_worker.old, _worker.new, item)
        cells[cell] += 1
        if change is not None:
            rendered.append(_worker.render(change))
    return cells, rendered, None


def stream_corpus(
    old: CompiledPolicy,
    new: CompiledPolicy,
    registry: DetectorRegistry,
    source: CorpusSource,
    change_format: ChangeFormat,
    spool: TextIO,
) -> StreamedCorpus:
    """Decides every item of ``source``; the changes go to ``spool``, rendered."""
    tally = CorpusTally()
    first = True
    worker = _Worker(old, new, registry, source.folder, change_format.render)
    results = ordered_map(
        _decide_chunk, source.entries(), initializer=_set_worker, initargs=(worker,)
    )
    try:
        for _, (cells, rendered, error) in results:
            if error is not None:
                raise error
            tally.add(cells)
            for text in rendered:
                spool.write(text if first else change_format.joiner + text)
                first = False
    except WorkerDied as died:
        raise CommandError(
            f"policy-engine: --corpus {source.path}: a worker process ended unexpectedly "
            f"while deciding one of the items from {died.first[0]} to {died.last[0]}; "
            "nothing was written"
        ) from None
    return StreamedCorpus(tally.counts(), spool, f"corpus-changes-{secrets.token_hex(16)}")


def write_report(stdout: TextIO, report: str, corpus: StreamedCorpus, quoted: bool) -> None:
    """``report`` with the spooled changes copied in where its marker stands."""
    marker = f'"{corpus.marker}"' if quoted else corpus.marker + "\n"
    head, found, tail = report.partition(marker)
    stdout.write(head)
    if found:
        corpus.spool.seek(0)
        shutil.copyfileobj(corpus.spool, stdout)
        stdout.write(tail)
