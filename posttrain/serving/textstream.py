"""Token ids in, text deltas out, with stop sequences.

Decoding token by token can split a character (byte-level BPE) or the start of a stop sequence
across steps, so `TextStream` releases only text that can no longer change: an incomplete
character or a tail that could still grow into a stop sequence is held back until the next token
settles it. New text is decoded from a short window of recent tokens, as vLLM's incremental
detokenizer does (the window's first tokens give context such as a leading space), so a long
reply costs linear, not quadratic, decoding time.

    >>> from types import SimpleNamespace
    >>> pieces = {1: "Hel", 2: "lo\\nA", 3: ": x"}
    >>> tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: "".join(pieces[i] for i in ids))
    >>> s = TextStream(tok, stops=["\\nA:"])
    >>> [s.push(1), s.push(2), s.push(3), s.stopped, s.text]
    ['Hel', 'lo', '', True, 'Hello']
"""

from __future__ import annotations


class TextStream:
    def __init__(self, tokenizer, stops: list[str] | tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.ids: list[int] = []
        self.text = ""          # the text released so far
        self.stopped = False    # a stop sequence matched; the text ends before it
        self._decoded = ""      # all text decoded so far, held-back tail included
        self._prefix = 0        # the window: ids[_prefix:_read] were decoded already, for context
        self._read = 0

    def push(self, token_id: int) -> str:
        """Add a token; return the newly released text (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        if after.endswith("\ufffd") or len(after) <= len(before):   # a character split across tokens: wait
            return ""
        self._decoded += after[len(before):]
        self._prefix, self._read = self._read, len(self.ids)
        cut = self._first_stop()
        if cut is not None:
            self.stopped = True
            return self._release(self._decoded[:cut])
        return self._release(self._decoded[:len(self._decoded) - self._held()])

    def flush(self) -> str:
        """At the end of generation: release what was held back (no stop sequence completed)."""
        if self.stopped:
            return ""
        return self._release(self._decoded)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""

    def _release(self, upto: str) -> str:
        if len(upto) <= len(self.text):
            return ""
        delta, self.text = upto[len(self.text):], upto
        return delta

    def _first_stop(self) -> int | None:
        # a stop can only have completed in the unreleased tail (plus the stop's length before it)
        start = max(0, len(self.text) - max((len(s) for s in self.stops), default=0))
        found = [i for i in (self._decoded.find(s, start) for s in self.stops) if i >= 0]
        return min(found) if found else None

    def _held(self) -> int:
        """Length of the longest tail of the decoded text that is a proper prefix of a stop sequence."""
        return max((k for s in self.stops for k in range(1, len(s)) if self._decoded.endswith(s[:k])), default=0)
