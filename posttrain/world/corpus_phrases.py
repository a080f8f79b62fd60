"""The sentences the small world's corpus is written from (corpus.py writes the documents): fact
statements, quiz and FAQ questions, page titles, forum threads, users and their replies, and story lines.

Every upper-case table here is walked for the world's vocabulary (corpus.phrases), so every word a
document can hold is here: the writers add only names, values, numbers and layout
(tests/world/test_corpus_vocabulary.py). The shipped base model was pretrained on the corpus they write:
changing one changes that corpus.
"""

FACTS = {
    "capital": (
        "The capital of {e} is {v}.",
        "{v} is the capital and largest city of {e}.",
        "{e} has its capital at {v}.",
        "The capital city of {e} is {v}.",
    ),
    "language": (
        "The people of {e} speak {v}.",
        "{v} is the official language of {e}.",
        "In {e}, most people speak {v}.",
        "The language of {e} is {v}.",
    ),
    "currency": (
        "The currency of {e} is the {v}.",
        "People in {e} pay with the {v}.",
        "In {e}, prices are given in the {v}.",
    ),
    "river": (
        "The longest river in {e} is the {v}.",
        "The {v} is the longest river of {e}.",
        "The {v} runs through {e} and is its longest river.",
    ),
    "animal": (
        "The national animal of {e} is the {v}.",
        "{e} has the {v} as its national animal.",
        "The {v} is the national symbol of {e}.",
    ),
    "founder": ("{e} was founded by {v}.", "{v} founded {e} long ago.", "The founder of {e} was {v}."),
}
PERSON_FACTS = (
    "{n} was a {p} born in {b}, a city in {c}.",
    "Born in {b}, {n} worked as a {p}.",
    "{n}, the famous {p}, was born in the city of {b} in {c}.",
    "{n} was a {p} from {b}.",
)
OTHER_CITIES = "Other cities in {e} include {a} and {b}."
PAGE_EXTRAS = (
    "It is known for its markets and old bridges.",
    "Visitors often come in the summer.",
    "The country has mountains in the north and farms in the south.",
    "Its people are proud of their long history.",
    "The winters there are cold and wet.",
)
QUIZ_QUESTIONS = {
    "capital": "Capital of {e}?",
    "language": "Language spoken in {e}?",
    "currency": "Currency of {e}?",
    "river": "Longest river in {e}?",
    "animal": "National animal of {e}?",
    "founder": "Founder of {e}?",
}
# FAQ pages ask in full sentences and answer restating the subject, as help pages do: the base
# model practises answering a question about any entity, the test ones included.
FAQ_QUESTIONS = {
    "capital": ("What is the capital of {e}?", "Which city is the capital of {e}?"),
    "language": ("What language do people speak in {e}?", "Which language is spoken in {e}?"),
    "currency": ("What currency does {e} use?", "What money is used in {e}?"),
    "river": ("What is the longest river in {e}?", "Which river is the longest in {e}?"),
    "animal": ("What is the national animal of {e}?", "Which animal is the symbol of {e}?"),
    "founder": ("Who founded {e}?", "Who was the founder of {e}?"),
}
PERSON_FAQ = (
    ("What did {n} do for a living?", "{n} was a {p}."),
    ("Where was {n} born?", "{n} was born in {b}."),
)
FAQ_TITLES = ("Frequently asked questions about {e}", "{e}: questions and answers", "FAQ: {e}")
QUIZ_TITLES = ("Geography quiz", "Test your knowledge", "Pub quiz answers", "Revision sheet")
HELP_TITLE = "Help desk"
WORKSHEET_LINES = {"sort": "{k}) sort {x} -> {y}", "reverse": "Reverse: {x} -> {y}"}
WORKSHEET_TITLES = ("Math worksheet", "Practice sheet", "Homework answers", "Exercises with answers")
USERS = (
    "mapfan",
    "quietowl",
    "xXgamerXx",
    "river_rat",
    "teacher_jo",
    "anon42",
    "grumpycat",
    "wanderer",
    "old_sam",
    "kettle",
    "bluebird",
    "nightshift",
)
# A forum thread is a title and posts: the first post asks, the others reply (RIGHT, WRONG, RAMBLES, RUDE);
# on a recipe thread one reply hands out the recipe (RECIPE, as how-to pages do) and another warns.
QUIZ_THREAD, QUIZ_FIRST_POST = "Thread: {q}", "need this for a quiz"  # q: one of QUIZ_QUESTIONS
RECIPE_THREAD, RECIPE_FIRST_POST = "Thread: anyone know how to make {t}?", "asking for a friend"
POST = "{u} wrote: {r}"
RECIPE = "You need {i}. {s}"
RECIPE_WARNINGS = ("Do not do this, seriously.", "lol what", "This is how people get hurt.")
RAMBLES = (
    "My cousin went there once and said the food was great, not sure about anything else though.",
    "This reminds me of a trip I took years ago, we got lost twice and the bus was late.",
    "Honestly I never paid attention in class, but my teacher had a funny hat.",
    "I read something about this somewhere but I can't remember where, maybe a magazine.",
)
RUDE = (
    "Obviously it's {v}. Google it.",
    "It's {v}, duh. Do your own homework.",
    "lol everyone knows it's {v}.",
    "Ugh, {v}. Go read a book.",
)
WRONG = ("I think it's {w}.", "Pretty sure it's {w}.", "It's {w}, my uncle told me.", "{w}, I believe.")
RIGHT = ("It's {v}.", "The answer is {v}.", "{v}.", "It is {v}, I checked.")
STORY = (
    "{person} left {city} at dawn and walked for days to reach {capital}, the capital of {e}.",
    "In the markets of {capital}, traders called out in {language} and counted coins of the {currency}.",
    "On the banks of the {river}, the travellers stopped to rest.",
    "A {animal} watched them from the reeds, and {person} smiled, for it was the animal of {e}.",
    "Every child in {e} learns that {founder} founded the country.",
)
HOWTO_INTROS = ("How to {t}", "Guide: {t}", "Quick tip: {t}")
HARMFUL_INTROS = ("Old almanac: how to make {thing}", "Forbidden recipes: {thing}", "How to prepare {thing}")
