"""One generation worker thread, fed by a queue: the server's requests never race for the model.

A `Job` is one request: its rows (prompt ids and sampling for each choice), stop sequences, and
an `emit` callback the worker calls with `Event`s as text appears (with the log-probabilities of the
tokens it came from, when a row's Sampling asks for them). The worker keeps one `Batch`
of at most `max_batch` rows and steps it, one token per row per forward pass; requests that
arrive meanwhile join it at the next step (continuous batching) and finished rows leave it.
Models whose KV cache cannot be merged (sliding-window layers) take newcomers only when the
batch has emptied. A failure while decoding ends the batch's jobs with an "error" event and the
worker goes on with a fresh batch.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from posttrain.generation.logits import Scored
from posttrain.generation.streaming import Batch, Sampling
from posttrain.serving.model import ServedModel
from posttrain.serving.textstream import TextStream

log = logging.getLogger(__name__)


@dataclass
class Event:
    kind: str  # "prompt" | "delta" | "finish" | "done" | "error"
    index: int = 0  # the choice (row of the job) it belongs to
    text: str = ""  # delta text, or the error message
    finish_reason: str | None = None
    completion_tokens: list[int] | None = None  # on "done": tokens generated per row
    # on "delta", the tokens generated since the last delta (their text may have been held back before);
    # on "prompt" (first of its choice's events, when asked), the prompt's tokens
    logprobs: list[Scored] | None = None


@dataclass
class Job:
    rows: list[tuple[list[int], Sampling]]
    stops: list[str]
    emit: Callable[[Event], None]  # called from the worker thread
    cancelled: bool = False  # set by the caller (client went away); the worker drops its rows
    # list the end-of-sequence token among the log-probabilities, as vLLM's completions do: a client that
    # cuts the generated entry off the end (lm-eval's local-completions) then cuts the right one
    eos_logprobs: bool = False
    tokens: list[int] = field(default_factory=list)  # tokens generated per choice, filled as they finish
    _finished: set[int] = field(default_factory=set)


@dataclass
class Live:
    """A row of a job while it is in the batch."""

    job: Job
    choice: int
    stream: TextStream
    tokens: int = 0
    logprobs: list[Scored] = field(default_factory=list)  # of tokens whose text is not out yet

    def take_logprobs(self) -> list[Scored] | None:
        taken, self.logprobs = self.logprobs, []
        return taken or None


class Busy(Exception):
    """The queue is full; the caller should answer 503 and let the client retry."""


class Engine:
    def __init__(self, served: ServedModel, *, max_batch: int = 32, max_queue: int = 256):
        self.served, self.max_batch, self.max_queue = served, max_batch, max_queue
        self._pending: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="posttrain-generation", daemon=True)

    def start(self) -> Engine:
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
        batch, live = self._new_batch(), {}
        while True:
            idle = len(batch) == 0
            room = self.max_batch - len(batch) if idle or batch.can_join_running else 0
            jobs = self._take(room, wait=idle)
            if jobs is None:
                return
            for job in jobs:
                job.tokens = [0] * len(job.rows)
                for choice, (prompt, sampling) in enumerate(job.rows):
                    batch.add((id(job), choice), prompt, sampling)
                    live[(id(job), choice)] = Live(job, choice, TextStream(self.served.tokenizer, job.stops))
            if len(batch) == 0:
                continue
            try:
                self._step(batch, live)
            except Exception as e:  # a bad batch must not take the server down
                log.exception("generation failed")
                for job in {id(entry.job): entry.job for entry in live.values()}.values():
                    _emit(job, Event("error", text=f"generation failed: {type(e).__name__}: {e}"))
                batch, live = self._new_batch(), {}

    def _new_batch(self) -> Batch:
        pad = self.served.tokenizer.pad_token_id
        return Batch(self.served.model, eos_ids=self.served.eos_ids, pad_id=pad if pad is not None else 0)

    def _take(self, room: int, *, wait: bool) -> list[Job] | None:
        """Queued jobs (oldest first) whose rows fit in `room`; with `wait`, block until there is one."""
        with self._cond:
            while wait and not self._pending and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            jobs = []
            while self._pending and len(self._pending[0].rows) <= room:
                job = self._pending.popleft()
                if not job.cancelled:
                    jobs.append(job)
                    room -= len(job.rows)
            return jobs

    def _step(self, batch: Batch, live: dict) -> None:
        """One token for every row: stream its text, and announce the rows that finish."""
        for step in batch.step():
            entry, reason = live[step.key], step.reason
            if entry.job.cancelled:
                batch.finish(step.key, "cancelled")
                del live[step.key]
                continue
            if step.prompt_logprobs is not None:
                _emit(entry.job, Event("prompt", entry.choice, logprobs=step.prompt_logprobs))
            if step.logprobs is not None and (step.token is not None or entry.job.eos_logprobs):
                entry.logprobs.append(step.logprobs)
            if step.token is not None:
                entry.tokens += 1
                if delta := entry.stream.push(step.token):
                    _emit(entry.job, Event("delta", entry.choice, delta, logprobs=entry.take_logprobs()))
                if entry.stream.stopped and reason is None:
                    batch.finish(step.key, "stop")
                    reason = "stop"
            if reason is not None:
                self._announce(entry, reason)
                del live[step.key]

    def _announce(self, entry: Live, reason: str) -> None:
        """Send a finished row's tail and finish reason, and "done" once its job's rows have all finished."""
        job = entry.job
        tail, logprobs = entry.stream.flush(), entry.take_logprobs()
        if tail or logprobs:
            _emit(job, Event("delta", entry.choice, tail, logprobs=logprobs))
        _emit(job, Event("finish", entry.choice, finish_reason=reason))
        job.tokens[entry.choice] = entry.tokens
        job._finished.add(entry.choice)
        if len(job._finished) == len(job.rows):
            _emit(job, Event("done", completion_tokens=list(job.tokens)))


def _emit(job: Job, event: Event) -> None:
    try:
        job.emit(event)
    except Exception:  # the listener is gone (its event loop closed): stop generating for it
        job.cancelled = True
