"""uvicorn's HTTP/1.1 connection (h11), plus a deadline for the request head.

uvicorn bounds the head's size (`h11_max_incomplete_event_size`) and the idle time between
requests (`timeout_keep_alive`), but not the time a client takes to send its request line and
headers: a connection that opens and sends nothing, or trickles a header byte now and then
(slowloris), is kept open for ever. `HeadTimedH11` closes a connection whose head is not complete
`head_timeout` seconds after it opened, or after the previous response ended. The body's pace is
the ASGI guard's business (posttrain/web/guard.py), where the route's error format is at hand.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadTimedH11(H11Protocol):
    def __init__(self, *args, head_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head is in (or the connection failed): no deadline
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:  # kept alive: the next request's head has the same deadline
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        # no response is possible before a request has been read (h11 refuses one), so just close
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
