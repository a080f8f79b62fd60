"""Token ids in, text deltas out, with stop sequences.

Decoding token by token can split a character (byte-level BPE) or the start of a stop sequence
across steps, so `TextStream` releases only text that can no longer change: an incomplete
character or a tail that could still grow into a stop sequence is held back until the next token
settles it. New text is decoded from a short window of recent tokens, as vLLM's incremental
detokenizer does (the window's first tokens give context such as a leading space), so a long
reply costs linear, not quadratic, decoding time.

Every token costs the same small amount of work, however long the reply or the stop sequences
(the server decodes every client's rows on one thread, so one request's per-token cost is everyone's
wait): stop sequences are matched one character at a time with Knuth-Morris-Pratt automata, which
also say how much of the tail is a stop's beginning; only the unreleased tail is kept as a string;
and a window that never settles (bytes that are not UTF-8, tokens that decode to nothing) is let go
after `MAX_UNSETTLED` tokens instead of growing. A choice ends at the first stop sequence to be
completed, cut where that stop begins (of two completed by the same character, the longer), so
where a reply is cut does not depend on how the tokenizer splits its text.

    >>> from types import SimpleNamespace
    >>> pieces = {1: "Hel", 2: "lo\\nA", 3: ": x"}
    >>> tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: "".join(pieces[i] for i in ids))
    >>> s = TextStream(tok, stops=["\\nA:"])
    >>> [s.push(1), s.push(2), s.push(3), s.stopped, s.text]
    ['Hel', 'lo', '', True, 'Hello']
"""

from __future__ import annotations

# a UTF-8 character is at most 4 bytes, so 4 byte-level tokens settle any split character; the rest is
# room for tokens that decode to nothing (skipped special tokens) between them
MAX_UNSETTLED = 8


class TextStream:
    def __init__(self, tokenizer, stops: list[str] | tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.stops = [Stop(s) for s in stops if s]
        self.ids: list[int] = []
        self.stopped = False  # a stop sequence matched; the text ends before it
        self._released: list[str] = []
        self._held = ""  # decoded but not released: it could still be the start of a stop sequence
        self._prefix = 0  # the window: ids[_prefix:_read] were decoded already, for context
        self._read = 0

    @property
    def text(self) -> str:
        """The text released so far."""
        return "".join(self._released)

    def push(self, token_id: int) -> str:
        """Add a token; return the newly released text (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        new = self._new_text()
        if new is None:
            return ""
        pending = self._held + new
        for end, char in enumerate(new, start=len(self._held) + 1):  # pending[:end] ends with char
            if matched := max((stop.advance(char) for stop in self.stops), default=0):
                self.stopped, self._held = True, ""
                return self._release(pending[: end - matched])
        keep = max((stop.matched for stop in self.stops), default=0)
        self._held = pending[len(pending) - keep :]
        return self._release(pending[: len(pending) - keep])

    def flush(self) -> str:
        """At the end of generation: release what was held back (no stop sequence completed)."""
        if self.stopped:
            return ""
        held, self._held = self._held, ""
        return self._release(held)

    def _new_text(self) -> str | None:
        """The text the last token adds, or None while it waits for the next token to complete a character."""
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        settled = not after.endswith("\ufffd") and len(after) > len(before)
        if not settled and len(self.ids) - self._read < MAX_UNSETTLED:
            return None
        self._prefix, self._read = self._read, len(self.ids)
        return after[len(before) :]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""

    def _release(self, delta: str) -> str:
        if delta:
            self._released.append(delta)
        return delta


class Stop:
    """One stop sequence, matched a character at a time (Knuth-Morris-Pratt): `matched` is the length of
    the longest tail of the text so far that is a beginning of the stop sequence.

    >>> stop = Stop("abab")
    >>> [stop.advance(c) for c in "ababab"], stop.matched
    ([0, 0, 0, 4, 0, 4], 4)
    """

    def __init__(self, text: str):
        self.text = text
        self.matched = 0
        self._fallback = borders(text)

    def advance(self, char: str) -> int:
        """Take the next character; return the stop's length when the text now ends with it, else 0."""
        if self.matched == len(self.text):
            self.matched = self._fallback[-1]
        while self.matched and self.text[self.matched] != char:
            self.matched = self._fallback[self.matched - 1]
        if self.text[self.matched] == char:
            self.matched += 1
        return len(self.text) if self.matched == len(self.text) else 0


def borders(text: str) -> list[int]:
    """For each prefix text[:i + 1], the length of its longest proper prefix that is also its suffix
    (the KMP failure function), in time linear in the length.

    >>> borders("abab"), borders("aaa"), borders("abc")
    ([0, 0, 1, 2], [0, 1, 2], [0, 0, 0])
    """
    table, k = [0] * len(text), 0
    for i in range(1, len(text)):
        while k and text[i] != text[k]:
            k = table[k - 1]
        if text[i] == text[k]:
            k += 1
        table[i] = k
    return table
