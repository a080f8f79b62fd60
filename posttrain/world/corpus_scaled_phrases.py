"""The sentences the scaled corpus is written from (corpus_scaled_writers.py writes the documents):
more wordings of every fact, the corpus's own questions, worked-example lines for arithmetic, lists,
answer forms and number chains, reading-exercise frames and page titles.

None is a family's prompt template (tests/world/test_world_scaled.py), so the test sets stay novel to the
base.
The values of every upper-case table here are walked for the world's vocabulary (corpus_scaled.phrases), so
every word a document can hold is here or in corpus_phrases.py, and the writers add only names, values,
numbers and layout (tests/world/test_corpus_vocabulary.py).
"""

MORE_FACTS = {
    "capital": (
        "{v}, the capital of {e}, sits on a wide plain.",
        "Most government offices of {e} are in {v}, its capital.",
        "Anyone who visits {e} usually starts in {v}, the capital.",
    ),
    "language": (
        "Schools in {e} teach in {v}.",
        "Road signs in {e} are written in {v}.",
        "{v} is the language you hear on the streets of {e}.",
    ),
    "currency": (
        "Shops in {e} take the {v}.",
        "A meal in {e} costs a few coins of the {v}.",
        "The {v} has been the coin of {e} for many years.",
    ),
    "river": (
        "Boats carry goods along the {v}, the longest river in {e}.",
        "No river in {e} is longer than the {v}.",
        "The {v} flows the length of {e}.",
    ),
    "animal": (
        "The {v} appears on the coins and flags of {e}.",
        "In {e}, the {v} is the national animal.",
        "Children in {e} learn that their national animal is the {v}.",
    ),
    "founder": (
        "{e} owes its founding to {v}.",
        "It was {v} who founded {e}.",
        "Statues of {v}, the founder of {e}, stand in many towns.",
    ),
}
MORE_PERSON = (
    "{n} became a well-known {p}. {n} was born in {b}.",
    "The {p} {n} grew up in {b}, in {c}.",
    "{n} ({p}) came from the city of {b}.",
    "As a {p}, {n} was famous far beyond {b}, the city of their birth.",
)
ASKS = {  # the corpus's own questions (textbook style); none is a family's prompt template
    "capital": ("Capital of {e}:", "Q: Name the capital of {e}.", "Which is the capital of {e}?"),
    "language": ("Language of {e}:", "Q: What is spoken in {e}?", "Which language belongs to {e}?"),
    "currency": ("Currency of {e}:", "Q: What do they pay with in {e}?", "Which money belongs to {e}?"),
    "river": (
        "Longest river of {e}:",
        "Q: What is the longest river of {e}?",
        "Which river is longest in {e}?",
    ),
    "animal": (
        "National animal of {e}:",
        "Q: What animal stands for {e}?",
        "Which animal is the emblem of {e}?",
    ),
    "founder": ("Founder of {e}:", "Q: Who started {e}?", "Which person founded the country of {e}?"),
    "profession": ("Profession of {e}:", "Q: What was {e}'s trade?"),
    "birthplace": ("Birthplace of {e}:", "Q: Where did {e} come from?"),
}
ARITH_LINES = {
    "add": (
        "{a} + {b} = {c}",
        "{a} plus {b} equals {c}.",
        "The sum of {a} and {b} is {c}.",
        "If you add {b} to {a} you get {c}.",
        "Q: What is {a} + {b}?\nA: {c}",
        "{a} + {b} is {c}.",
    ),
    "sub": (
        "{a} - {b} = {c}",
        "{a} minus {b} equals {c}.",
        "Taking {b} away from {a} leaves {c}.",
        "The difference between {a} and {b} is {c}.",
        "Q: What is {a} - {b}?\nA: {c}",
        "{a} - {b} is {c}.",
    ),
    "mul": (
        "{a} * {b} = {c}",
        "{a} times {b} equals {c}.",
        "The product of {a} and {b} is {c}.",
        "{a} groups of {b} make {c}.",
        "Q: What is {a} * {b}?\nA: {c}",
        "{a} x {b} = {c}",
    ),
}
ARITH_TITLES = (
    "Answer key",
    "Mental arithmetic drill",
    "Math practice with answers",
    "Sums for class 3",
    "Times tables",
    "Quick maths",
    "Homework solutions",
)
LIST_LINES = {
    "sort_asc": (
        "{x} sorted from smallest to largest: {y}",
        "In increasing order, {x} becomes {y}.",
        "Sort ascending: {x} -> {y}",
    ),
    "sort_desc": (
        "{x} sorted from largest to smallest: {y}",
        "In decreasing order, {x} becomes {y}.",
        "Sort descending: {x} -> {y}",
    ),
    "reverse_words": (
        'Reversed, "{x}" reads "{y}".',
        "Backwards: {x} -> {y}",
        "The words {x} in reverse: {y}",
    ),
    "alphabetize": ("{x} in alphabetical order: {y}", "A to Z: {x} -> {y}", "Alphabetized, {x} becomes {y}."),
}
LIST_TITLES = ("Ordering exercises", "Puzzle answers", "Sorting practice", "Word games with answers")
FORM_LINES = {
    "yes_no": ("Is {a} greater than {b}? {yn}", "Yes or no: {a} > {b}? {yn}", "{a} is bigger than {b}: {yn}"),
    "one_word": ("{rel} of {e}, in one word: {v}", "One word only. {rel} of {e}? {v}"),
    "all_caps": ("{rel} of {e}, in capital letters: {V}", "In upper case, the {low} of {e} is {V}."),
    "n_items": (
        "Exactly {n} {cat}: {items}",
        "{N} {cat}, no more and no less: {items}",
        "A list of {n} {cat}:\n{lines}",
    ),
}
YES_NO = {True: "Yes", False: "No"}  # is a greater than b?
N_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}  # how many items n_items lines ask for
FORM_TITLES = ("Follow the instructions exactly", "Answer in the form asked", "Instructions drill")
READING_FRAMES = (
    "Reading exercise\n\n{p}\n\n{qa}",
    "Comprehension check. Read the text, then the answers.\n\n{p}\n\n{qa}",
    "Text: {p}\n\n{qa}",
)
READ_ASKS = {  # the corpus's own reading questions; the family's prompt templates are not used
    "town": "Which town is {n}'s home?",
    "job": "What work does {n} do?",
    "siblings": "How many brothers has {n} got?",
    "pet": "What pet does {n} have?",
    "color": "Which color is {n}'s favourite?",
    "trip": "Where does {n} go every year?",
}
NOT_SAID = (
    "The text does not say.",
    "The passage does not say.",
    "That is not in the text.",
    "The text gives no answer to that.",
)
CHAIN_TITLES = {"number": "Number chain", "list": "List chain"}
CHAIN_START = "Start with {r}."
CHAIN_LIST = "Sorted: {x}. Reversed, that list is {y}. Without its largest number it is {z}."
CHAIN_CAPITAL = "{c} is the capital of {e}. {s}"  # a country, then more about "there" (s)
CHAIN_THERE = {
    "language": "The language spoken there is {v}.",
    "currency": "The money used there is the {v}.",
    "river": "The longest river there is the {v}.",
}
CHAIN_STEPS = {
    "add": ("Add {c}: {r}.", "Then add {c} to get {r}.", "Plus {c} makes {r}."),
    "sub": ("Subtract {c}: {r}.", "Then take away {c} to get {r}.", "Minus {c} leaves {r}."),
    "double": ("Double it: {r}.", "Then double that to get {r}.", "Twice that is {r}."),
}


REL_WORDS = {"capital": "Capital", "language": "Language", "river": "Longest river"}
