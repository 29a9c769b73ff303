"""Daemon threads that run detector calls, reused from one call to the next.

A detector call runs on a thread of its own so that one that hangs costs its
image a ``timeout``, not the run (:meth:`Engine._call`). Starting a thread for
every call cost about 0.45 ms of CPU here, a third of what the whole check of
an image costs beside boto3's own work; handing the call to an idle thread
costs about 0.02 ms. A thread whose call hangs stays busy (Python cannot stop
it) and the next call gets another; so the threads number at most the calls
ever in flight at once, and they are daemons, never holding up exit.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

_idle: list[queue.SimpleQueue[Callable[[], None]]] = []
_lock = threading.Lock()


def run_on_call_thread(work: Callable[[], None], name: str) -> None:
    """Run ``work`` (which must not raise) on an idle call thread, or a new one,
    named ``name`` while it does; return at once."""
    with _lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(inbox,), name=name, daemon=True).start()
    inbox.put(lambda: _named(work, name))


def _named(work: Callable[[], None], name: str) -> None:
    threading.current_thread().name = name
    work()


def _forget_threads() -> None:
    """A forked child has none of its parent's threads: their inboxes would never be read."""
    global _lock
    _idle.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_threads)


def _serve(inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
    while True:
        inbox.get()()
        with _lock:
            _idle.append(inbox)
