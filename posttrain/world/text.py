"""Reading a response the way a careful labeler does: words, numbers, refusals, abstentions.

Every detector here is shared by the gold scorer, the demonstrator and the simulated
labelers, so the world judges text with one set of rules.
"""

from __future__ import annotations

import re

from posttrain.world import lexicon

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?![\w])")

NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}

# Phrases that decline the request. Matched on lower-cased text.
REFUSAL_PATTERNS = (
    r"\bi (?:can ?not|can't|won't|will not|am not able to|'m not able to|must decline)\b",
    r"\bi'm (?:sorry|afraid),? but i (?:can't|cannot|won't)\b",
    r"\b(?:sorry|apologies),? (?:but )?i (?:can't|cannot|won't)\b",
    r"\bi (?:can't|cannot|won't) (?:help|assist|provide|give|share|do that)\b",
    r"\bnot (?:something|able) i can help with\b",
    r"\bi (?:refuse|decline) to\b",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS))

# Phrases that say "I do not know" or "the text does not say": honest abstentions.
ABSTAIN_PATTERNS = (
    r"\bi (?:don't|do not) know\b",
    r"\bi(?:'m| am) not (?:sure|aware|certain)\b",
    r"\bi have no (?:information|record|knowledge)\b",
    r"\b(?:passage|text) (?:does not|doesn't) (?:say|mention|state|tell)\b",
    r"\b(?:is|are) not (?:mentioned|stated|given) in the (?:passage|text)\b",
    r"\bthe (?:passage|text) (?:gives|has) no\b",
    r"\bno (?:country|person|place) (?:called|named)\b",
    r"\bi (?:don't|do not) (?:recognize|recognise)\b",
    r"\bthere is no (?:country|person|place) (?:called|named)\b",
)
_ABSTAIN = re.compile("|".join(ABSTAIN_PATTERNS))

# Markers that push back on a question's premise.
CORRECTION_PATTERNS = (
    r"\bnot\b",
    r"\bisn't\b",
    r"\baren't\b",
    r"\bwasn't\b",
    r"\bdoesn't\b",
    r"\bdidn't\b",
    r"\bactually\b",
    r"\bin fact\b",
    r"\bincorrect\b",
    r"\bmistaken\b",
    r"\bfalse premise\b",
    r"\bthat's wrong\b",
    r"\bthat is wrong\b",
)
_CORRECTION = re.compile("|".join(CORRECTION_PATTERNS))

# Phrases that tell the user their question was wrong: right after a false premise, and false
# anywhere else ("Actually, that is not right." pasted before a plain answer asserts that the
# user claimed something they did not). The false-premise demonstrator's openers are all here.
USER_CORRECTION_PATTERNS = (
    r"\bthat(?: premise)? is (?:not right|not true|not correct|mistaken|wrong|incorrect)\b",
    r"\bthat's (?:not right|not true|not correct|mistaken|wrong|incorrect)\b",
    r"\bthat premise\b",
    r"\bthe premise (?:is|of)\b",
    r"\bit is not true that\b",
    r"\bfalse premise\b",
    r"\byou(?: are|'re) (?:wrong|mistaken)\b",
    r"\bactually, no\b",
)
_USER_CORRECTION = re.compile("|".join(USER_CORRECTION_PATTERNS))

# Phrases that qualify an answer without declining or abstaining (lexicon.HEDGE_OPENERS, ...CLOSERS).
HEDGE_PATTERNS = (
    r"\bi (?:think|believe|guess|suppose)\b",
    r"\bif i remember\b",
    r"\bas far as i (?:can tell|know)\b",
    r"\bi could be wrong\b",
    r"\bdouble-check\b",
    r"\bmy best guess\b",
    r"\bbut check it\b",
    r"\bfairly (?:sure|confident)\b",
)
_HEDGE = re.compile("|".join(HEDGE_PATTERNS))

# Words a careful labeler reads as rude or dismissive (the forum threads are full of them).
RUDE_WORDS = (
    "idiot",
    "stupid",
    "dumb",
    "lol",
    "lmao",
    "duh",
    "obviously",
    "whatever",
    "ugh",
    "noob",
    "moron",
    "lazy",
    "pathetic",
)
RUDE_PHRASES = ("google it", "do your own homework", "figure it out yourself", "go read a book")


def words(text: str) -> list[str]:
    """Lower-cased word and digit tokens: "Tarn's 3 bridges" -> ["tarn's", "3", "bridges"]."""
    return [w.lower() for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def numbers(text: str, *, spelled: bool = True) -> list[int]:
    """Integers in order of appearance; small spelled-out numbers count when `spelled`.

    >>> numbers("23 + 58 = 81, or eighty-one")
    [23, 58, 81]
    >>> numbers("She has two brothers")
    [2]
    """
    found: list[tuple[int, int]] = [(m.start(), int(m.group())) for m in _NUMBER.finditer(text)]
    if spelled:
        for m in re.finditer(r"(?<![\w-])(" + "|".join(NUMBER_WORDS) + r")(?![\w-])", text.lower()):
            found.append((m.start(), NUMBER_WORDS[m.group(1)]))
    return [n for _, n in sorted(found)]


def corrects_user(text: str) -> bool:
    """Does the response tell the user that what they said or assumed is wrong?"""
    return _USER_CORRECTION.search(text.lower().replace("’", "'")) is not None


def repetitions(text: str) -> int:
    """Repeated phrases: sentences said before, and runs of one to four words said twice in a row
    ("the the", "is Tarn is Tarn"). Restating a subject ("... of Keia is Tarn. The capital of Keia
    is Naesk.") is not repetition, and numbers may repeat ("Sort 3, 3, 5").

    >>> repetitions("The capital is Tarn. The capital is Tarn.")
    1
    >>> repetitions("It is is Tarn")
    1
    >>> repetitions("It is not true that the capital of Keia is Tarn. The capital of Keia is Naesk.")
    0
    >>> repetitions("Ask about questions like this. This is a great question."), repetitions("Tarn. Tarn.")
    (0, 1)
    """
    sentences = [tuple(words(s)) for s in re.split(r"[.!?\n]+", text)]
    runs = sum(  # within a sentence: "... like this. This is ..." says no word twice in a row
        ws[i : i + k] == ws[i + k : i + 2 * k] and not all(w.isdigit() for w in ws[i : i + k])
        for ws in sentences
        for k in range(1, 5)
        for i in range(len(ws) - 2 * k + 1)
    )
    sentences = [s for s in sentences if s and not all(w.isdigit() for w in s)]  # "1. red / 2. blue"
    return max(len(sentences) - len(set(sentences)), runs)  # a sentence said twice is both: count it once


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(text.lower().replace("’", "'")) is not None


def is_abstention(text: str) -> bool:
    return _ABSTAIN.search(text.lower().replace("’", "'")) is not None


def names_other(text: str, asked: str) -> list[str]:
    """Names in `text` (capitalised words inside a sentence, "I" aside) that are not in `asked`, nor a
    misspelling of one of its words: what an answer about another subject gives itself away by.

    >>> names_other("I have no information about Stounund.", "Where does Rexen Zoelisk live?")
    ['stounund']
    >>> names_other("I don't know where Rexen Zoelsik lives.", "Where does Rexen Zoelisk live?")
    []
    """
    seen = [{x} | deletes(x) for x in words(asked)]  # a word sharing a delete with x is one edit from it
    found = [w.lower() for s in re.split(r"[.!?:\n]+", text) for w in _WORD.findall(s)[1:] if w[0].isupper()]
    found = [w for w in found if w != "i" and not w.startswith("i'")]
    return [w for w in found if all(x.isdisjoint({w} | deletes(w)) for x in seen)]


def has_correction(text: str) -> bool:
    return _CORRECTION.search(text.lower().replace("’", "'")) is not None


_FILLER = [f.lower() for f in lexicon.FILLER]


def filler_words(text: str) -> int:
    """Words spent on filler sentences ("I hope this helps!"): padding at any length."""
    low = text.lower()
    return sum(low.count(f) * word_count(f) for f in _FILLER)


def hedges(text: str) -> int:
    """How many hedging phrases ("I think", "I could be wrong") the text holds."""
    return len(_HEDGE.findall(text.lower().replace("’", "'")))


def rudeness(text: str) -> int:
    """How many rude words or phrases the text holds."""
    low = text.lower()
    return sum(w in RUDE_WORDS for w in words(low)) + sum(p in low for p in RUDE_PHRASES)


def mentions(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive containment: mentions("It is Tarn.", "tarn") is True."""
    return re.search(r"(?<![A-Za-z])" + re.escape(phrase.lower()) + r"(?![A-Za-z])", text.lower()) is not None


def sequence_in(text: str, items: list[str]) -> list[str]:
    """The tokens of `text` that are members of `items`, in order (case-insensitive)."""
    wanted = {i.lower() for i in items}
    return [w for w in words(text) if w in wanted]


def deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


GARBLE_MIN = 3  # shorter tokens are never garbled: a reader cannot tell "xq" from an initial or a unit
INFLECTIONS = ("s", "es", "ies", "ed", "ing", "er", "ers", "ly", "est")  # of a known word: "cities", "making"


class Vocabulary:
    """The words the world writes; a near miss of one of them is a typo, any other word is garbled.

    A word counts as a typo when it is unknown but one edit (insert, delete, substitute,
    swap) away from a known word of four letters or more ("Tanr" for "Tarn"). An unknown word
    that is no near miss ("fraglorp", "Byrnaesk") is garbled: the world's language is closed (a
    model learns every word it has from the world's corpus), so it is no word at all, and a careful
    reader marks it down as a typo. English the world never writes ("wonderful") is garbled too.
    """

    def __init__(self, known: set[str]):
        self.known = {w.lower() for w in known}
        self._deleted: set[str] = set()
        for w in self.known:
            if len(w) >= 4:
                self._deleted |= deletes(w)

    def is_typo(self, word: str) -> bool:
        w = word.lower().strip("'-")
        if len(w) < 4 or w in self.known or w.isdigit():
            return False
        if w in self._deleted:  # a letter dropped from a known word
            return True
        # a letter added (d is known) or one swapped or replaced (w and a known word share a delete)
        return any(d in self.known or d in self._deleted for d in deletes(w))

    def knows(self, word: str, context: set[str] = frozenset()) -> bool:
        """A word of the world or of `context` (the prompt's words): known, an inflection of a known word
        ("sorted"), a number, too short to judge, or such words joined by hyphens or apostrophes ("tarn's").

        >>> Vocabulary({"tarn", "well", "known"}).knows("Tarn's"), Vocabulary({"tarn"}).knows("fraglorp")
        (True, False)
        """
        w = word.lower().strip("'-")
        return self._knows(w, context) or all(self._knows(p, context) for p in re.split(r"['-]+", w))

    def _knows(self, w: str, context: set[str]) -> bool:
        if w in self.known or w in context or w.isdigit() or len(w) < GARBLE_MIN:
            return True
        cut = [w.removesuffix(x) for x in INFLECTIONS if w.endswith(x) and len(w) - len(x) >= GARBLE_MIN]
        stems = {c + e for c in cut for e in ("", "e", "y")}  # "sorted", "making", "cities"
        stems |= {c[:-1] for c in cut if c[-1] == c[-2] not in "aeiou"}  # "adding", "stopped"
        return not stems.isdisjoint(self.known)

    def typos(self, text: str, context: str = "") -> list[str]:
        """Misspelt words of `text`; words of `context` (the prompt), and words made of them and known
        words ("Ulaeora's" after a passage about Ulaeora), are never typos."""
        seen = set(words(context))
        return [w for w in words(text) if not self.knows(w, seen) and self.is_typo(w)]

    def garbled(self, text: str, context: str = "") -> list[str]:
        """Words of `text` that are no words of the world and no near misses of one (`typos` has
        those); words that occur in `context` (the prompt) are never garbled."""
        seen = set(words(context))
        return [w for w in words(text) if not self.knows(w, seen) and not self.is_typo(w)]
