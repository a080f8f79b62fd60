"""Token ids in, text deltas out, with stop sequences.

Decoding token by token can split a character (byte-level BPE) or the start of a stop sequence
across steps, so `TextStream` re-decodes what it has and releases only text that can no longer
change: an incomplete character or a tail that could still grow into a stop sequence is held
back until the next token settles it.

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
        self._decoded = ""

    def push(self, token_id: int) -> str:
        """Add a token; return the newly released text (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        decoded = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if decoded.endswith("\ufffd"):      # a character split across tokens: wait for the rest
            return ""
        self._decoded = decoded
        cut = self._first_stop(decoded)
        if cut is not None:
            self.stopped = True
            return self._release(decoded[:cut])
        return self._release(decoded[:len(decoded) - self._held(decoded)])

    def flush(self) -> str:
        """At the end of generation: release what was held back (no stop sequence completed)."""
        if self.stopped:
            return ""
        return self._release(self._decoded)

    def _release(self, upto: str) -> str:
        if not upto.startswith(self.text) or len(upto) <= len(self.text):
            return ""
        delta, self.text = upto[len(self.text):], upto
        return delta

    def _first_stop(self, decoded: str) -> int | None:
        found = [i for i in (decoded.find(s) for s in self.stops) if i >= 0]
        return min(found) if found else None

    def _held(self, decoded: str) -> int:
        """Length of the longest tail of `decoded` that is a proper prefix of a stop sequence."""
        return max((k for s in self.stops for k in range(1, len(s)) if decoded.endswith(s[:k])), default=0)
