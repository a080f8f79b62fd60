"""Plain English word lists the world draws list items, categories and filler from."""

COLORS = (
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "orange",
    "black",
    "white",
    "brown",
    "pink",
    "grey",
    "gold",
    "silver",
    "violet",
    "teal",
    "amber",
)
FRUITS = (
    "apple",
    "pear",
    "plum",
    "cherry",
    "mango",
    "peach",
    "lemon",
    "lime",
    "grape",
    "melon",
    "fig",
    "kiwi",
    "banana",
    "apricot",
    "papaya",
    "quince",
)
TOOLS = (
    "hammer",
    "saw",
    "drill",
    "wrench",
    "chisel",
    "ladder",
    "shovel",
    "rake",
    "pliers",
    "file",
    "level",
    "clamp",
    "axe",
    "trowel",
    "mallet",
    "spanner",
)
CREATURES = (
    "cat",
    "dog",
    "horse",
    "goat",
    "sheep",
    "mouse",
    "duck",
    "frog",
    "lion",
    "tiger",
    "zebra",
    "camel",
    "whale",
    "shark",
    "snake",
    "deer",
)

CATEGORIES = {"colors": COLORS, "fruits": FRUITS, "tools": TOOLS, "animals": CREATURES}


def split_words(words: tuple[str, ...], split: str) -> tuple[str, ...]:
    """Three quarters of a list for train prompts, the rest for test prompts."""
    cut = len(words) * 3 // 4
    return words[:cut] if split == "train" else words[cut:]


CLOSING = "I hope this helps!"
FILLER = (
    CLOSING,
    "Let me know if you have any other questions.",
    "This is a great question and I am happy to answer it.",
    "There are many ways to think about this, but the answer is simple.",
    "Thank you for asking, it is always a pleasure to help with questions like this one.",
    "As many people know, it is important to be careful and precise with questions like this.",
    "I have double checked my answer to make sure that it is correct.",
    "Feel free to ask me anything else you are curious about.",
)

# How the hedging demonstrator qualifies an answer it has right. None of these reads as an
# abstention, a refusal or a correction to the families' checks (text.py), only as a hedge.
HEDGE_OPENERS = ("I think", "I believe", "If I remember right,", "As far as I can tell,")
HEDGE_CLOSERS = (
    "But I could be wrong.",
    "Please double-check that.",
    "That is my best guess.",
    "I am fairly confident, but check it.",
)
