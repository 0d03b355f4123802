"""Progress while checks run: a bar on a terminal (rich), occasional plain lines otherwise, nothing when quiet.

The runner calls a :class:`Progress` with the item about to run (``adam float32 pipeline/clipnorm``) and how many
items it stands for; the total is the plan's number of items (:func:`conformance.runner.plan_items`).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

MODES = ("bar", "lines", "off")


class Progress:
    """``progress(label, advance)``: the item now running, and how many items the previous call's finished."""

    def __init__(self, total: int, mode: str, stream: TextIO | None = None, every_s: float = 30.0) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.total, self.mode, self.stream = total, mode, stream or sys.stderr
        self.done, self.every_s = 0, every_s
        self.started = self._last_line = time.perf_counter()
        self._last_tenth = 0
        # Per thread (units run at once, one per worker): the item it announced last, which finishes at its next.
        self._pending: dict[int, int] = {}
        self._lock = threading.Lock()
        self._bar = None
        if mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task("starting", total=total)
            self._bar.start()

    def __call__(self, label: str, advance: int = 1) -> None:
        with self._lock:
            self._announce(label, advance)

    def _announce(self, label: str, advance: int) -> None:
        # The item a thread announced before finishes when it announces the next: advance by the previous one.
        thread = threading.get_ident()
        self.done = min(self.total, self.done + self._pending.get(thread, 0))
        self._pending[thread] = advance
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=label[:48])
        elif self.mode == "lines":
            now, tenth = time.perf_counter(), 10 * self.done // max(self.total, 1)
            if tenth > self._last_tenth or now - self._last_line >= self.every_s:
                self._last_tenth, self._last_line = tenth, now
                self.stream.write(f"optconf: {self.done}/{self.total} checks, {now - self.started:.0f} s: {label}\n")
                self.stream.flush()

    def close(self) -> None:
        """Remove the bar (the report follows)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
