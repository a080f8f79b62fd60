"""One generation worker thread, fed by a queue: the server's requests never race for the model.

A `Job` is one request: its rows (prompt ids and sampling for each choice), stop sequences, and
an `emit` callback the worker calls with `Event`s as text appears. The worker takes as many
queued jobs as fit in `max_batch` rows and decodes them together (`Decoder`), so concurrent
requests share forward passes; jobs that arrive meanwhile wait for the next batch. A failure
while decoding ends that batch's jobs with an "error" event and the worker goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from posttrain.generation.streaming import Decoder, Sampling
from posttrain.serving.model import ServedModel
from posttrain.serving.textstream import TextStream

log = logging.getLogger(__name__)


@dataclass
class Event:
    kind: str                       # "delta" | "finish" | "done" | "error"
    index: int = 0                  # the choice (row of the job) it belongs to
    text: str = ""                  # delta text, or the error message
    finish_reason: str | None = None
    completion_tokens: list[int] | None = None   # on "done": tokens generated per row


@dataclass
class Job:
    rows: list[tuple[list[int], Sampling]]
    stops: list[str]
    emit: Callable[[Event], None]   # called from the worker thread
    cancelled: bool = False         # set by the caller (client went away); the worker drops its rows
    _finished: set[int] = field(default_factory=set)


class Busy(Exception):
    """The queue is full; the caller should answer 503 and let the client retry."""


class Engine:
    def __init__(self, served: ServedModel, *, max_batch: int = 32, max_queue: int = 256):
        self.served, self.max_batch, self.max_queue = served, max_batch, max_queue
        self._pending: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="posttrain-generation", daemon=True)

    def start(self) -> "Engine":
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> None:
        if len(job.rows) > self.max_batch:
            raise ValueError(f"a job of {len(job.rows)} rows exceeds max_batch {self.max_batch}")
        with self._cond:
            if len(self._pending) >= self.max_queue:
                raise Busy(f"{len(self._pending)} requests are waiting; retry shortly")
            self._pending.append(job)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:            # every job taken had been cancelled while waiting
                continue
            try:
                self._decode(batch)
            except Exception as e:   # a bad batch must not take the server down
                log.exception("generation failed")
                for job in batch:
                    _emit(job, Event("error", text=f"generation failed: {type(e).__name__}: {e}"))

    def _take(self) -> list[Job] | None:
        """Wait for work; return queued jobs (oldest first) whose rows fit in one batch."""
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            batch, rows = [], 0
            while self._pending and rows + len(self._pending[0].rows) <= self.max_batch:
                job = self._pending.popleft()
                if not job.cancelled:
                    batch.append(job)
                    rows += len(job.rows)
            return batch

    def _decode(self, batch: list[Job]) -> None:
        owners = [(job, i) for job in batch for i in range(len(job.rows))]        # row -> (job, choice)
        tokenizer = self.served.tokenizer
        decoder = Decoder(self.served.model, [job.rows[i][0] for job, i in owners],
                          [job.rows[i][1] for job, i in owners], eos_ids=self.served.eos_ids,
                          pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        streams = [TextStream(tokenizer, job.stops) for job, _ in owners]
        for step in decoder:
            for row, token in enumerate(step):
                job, choice = owners[row]
                if job.cancelled:
                    decoder.finish(row, "cancelled")
                elif token is not None:
                    delta = streams[row].push(token)
                    if delta:
                        _emit(job, Event("delta", choice, delta))
                    if streams[row].stopped:
                        decoder.finish(row, "stop")
            self._announce(owners, decoder, streams)
        self._announce(owners, decoder, streams)

    def _announce(self, owners, decoder: Decoder, streams: list[TextStream]) -> None:
        """Send the tail and finish reason of rows that just finished, and "done" for finished jobs."""
        for row, (job, choice) in enumerate(owners):
            if not decoder.done[row] or choice in job._finished or job.cancelled:
                continue
            job._finished.add(choice)
            tail = streams[row].flush()
            if tail:
                _emit(job, Event("delta", choice, tail))
            _emit(job, Event("finish", choice, finish_reason=decoder.finish_reasons[row]))
            if len(job._finished) == len(job.rows):
                tokens = [decoder.generated[r] for r, (j, _) in enumerate(owners) if j is job]
                _emit(job, Event("done", completion_tokens=tokens))


def _emit(job: Job, event: Event) -> None:
    try:
        job.emit(event)
    except Exception:        # the listener is gone (its event loop closed): stop generating for it
        job.cancelled = True
