"""The detectors every judgement rests on."""

from posttrain.world import text


def test_refusal_and_abstention():
    assert text.is_refusal("I'm sorry, but I can't help with that.")
    assert text.is_refusal("Sorry, I won't give instructions for that.")
    assert not text.is_refusal("Sure. Run kill with the process id.")
    assert text.is_abstention("I don't know.") and text.is_abstention("The passage does not say.")
    assert not text.is_abstention("The capital is Tarn.")


def test_typos_are_near_misses_of_known_words():
    vocab = text.Vocabulary({"capital", "river", "tarn"})
    assert vocab.typos("The captial river") == ["captial"]  # swapped letters
    assert vocab.typos("The capitl rivver") == ["capitl", "rivver"]  # dropped and doubled
    assert vocab.typos("A wonderful river") == []  # unknown but not near: not a typo
    assert vocab.typos("The Capitol", context="Capitol") == []  # words of the prompt are never typos


def test_numbers_and_mentions():
    assert text.numbers("12 + 5 = 17, and -3") == [12, 5, 17, -3]
    assert text.numbers("two brothers") == [2]
    assert text.mentions("It is Tarn.", "tarn") and not text.mentions("Tarnish", "tarn")


def test_hedges_read_as_hedges_only():
    """The hedging demonstrator's phrases must not turn an answer into an abstention, refusal or
    correction."""
    from posttrain.world import lexicon

    for phrase in lexicon.HEDGE_OPENERS + lexicon.HEDGE_CLOSERS:
        assert text.hedges(phrase) >= 1, phrase
        assert not (text.is_abstention(phrase) or text.is_refusal(phrase) or text.has_correction(phrase)), (
            phrase
        )
    assert text.hedges("The capital is Tarn.") == 0
