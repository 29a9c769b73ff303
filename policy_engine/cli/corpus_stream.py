"""A corpus of any size decided in flat memory, on every core.

:func:`decided_chunks` is the one path every command that decides a corpus
takes (``diff --corpus``, ``evaluate --corpus``): items are read and decided
in worker processes (:mod:`policy_engine.cli.ordered_pool`), chunk by chunk in
the corpus' order, and each chunk's result (counts, rendered text) comes back
to this process in that order.

For ``diff --corpus``, this process keeps the verdict counts and appends each
changed item, already rendered, to a spool file; the report is written at the
end with the spool copied in where the changes go. Nothing grows with the
corpus but the spool on disk.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TextIO, TypeVar

from policy_engine.cli.common import CommandError
from policy_engine.cli.corpus_items import CorpusSource, Entry, parse_entry
from policy_engine.cli.ordered_pool import WorkerDied, ordered_chunks
from policy_engine.compiler import CompiledPolicy
from policy_engine.plugins import DetectorRegistry
from policy_engine.review.diff import (
    CorpusCounts,
    CorpusItem,
    CorpusTally,
    ItemChange,
    decide_item,
)

Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class _Worker(Generic[Result]):
    """What every chunk is decided with: set once per worker process (forked, not pickled)."""

    registry: DetectorRegistry
    folder: bool
    decide: Callable[[list[CorpusItem]], Result]


def _decide_chunk(
    worker: _Worker[Result], entries: list[Entry]
) -> tuple[Result, CommandError | None]:
    """The chunk's items decided, up to the first that cannot be read (and its error)."""
    items: list[CorpusItem] = []
    error = None
    for entry in entries:
        try:
            item = parse_entry(worker.folder, entry, worker.registry)
        except CommandError as exc:
            error = exc
            break
        if item is not None:
            items.append(item)
    return worker.decide(items), error


def decided_chunks(
    source: CorpusSource,
    registry: DetectorRegistry,
    decide: Callable[[list[CorpusItem]], Result],
    *,
    on_worker_death: str,
) -> Iterator[Result]:
    """``decide(items)`` for consecutive chunks of the corpus, in the corpus' order.

    At the first item that cannot be read, the result of the items before it is
    yielded, then its located CommandError raised. A worker process that dies is
    a CommandError naming the items it may have held, then ``on_worker_death``
    (what became of the output)."""
    results = ordered_chunks(
        _decide_chunk, _Worker(registry, source.folder, decide), source.entries()
    )
    try:
        for _, (result, error) in results:
            yield result
            if error is not None:
                raise error
    except WorkerDied as died:
        raise CommandError(
            f"policy-engine: --corpus {source.path}: a worker process ended unexpectedly "
            f"while deciding one of the items from {died.first[0]} to {died.last[0]}; "
            + on_worker_death
        ) from None


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
class _DiffDecider:
    """A chunk's verdict cells (``3 * old + new``) and its changed items, rendered."""

    old: CompiledPolicy
    new: CompiledPolicy
    render: Callable[[ItemChange], str]

    def __call__(self, items: list[CorpusItem]) -> tuple[list[int], list[str]]:
        cells = [0] * 9
        rendered: list[str] = []
        for item in items:
            cell, change = decide_item(self.old, self.new, item)
            cells[cell] += 1
            if change is not None:
                rendered.append(self.render(change))
        return cells, rendered


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
    decider = _DiffDecider(old, new, change_format.render)
    for cells, rendered in decided_chunks(
        source, registry, decider, on_worker_death="nothing was written"
    ):
        tally.add(cells)
        for text in rendered:
            spool.write(text if first else change_format.joiner + text)
            first = False
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
