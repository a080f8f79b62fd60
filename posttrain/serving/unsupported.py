"""The request fields of OpenAI's API that posttrain does not implement, and those with no effect on an
answer (protocol.py declares both on its requests): an unsupported field is accepted only with a value
that asks for nothing, and is otherwise a 400 naming it and saying what is supported instead.
"""

from __future__ import annotations

from pydantic import ValidationInfo

# Fields with no effect on the answer: accepted, and documented as such.
NO_EFFECT = (
    "user",
    "metadata",
    "store",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "parallel_tool_calls",  # no tools, so no calls to run in parallel
)
# OpenAI's fields posttrain does not implement: (the values that ask for nothing, what to do instead).
UNSUPPORTED: dict[str, tuple[tuple, str]] = {
    "frequency_penalty": ((0,), "repetition penalties are not supported; leave frequency_penalty out or 0"),
    "presence_penalty": ((0,), "repetition penalties are not supported; leave presence_penalty out or 0"),
    "tools": (([],), "tool calls are not supported; leave tools out"),
    "tool_choice": (("none", "auto"), "tool calls are not supported; leave tool_choice out"),
    "functions": (([],), "function calls are not supported; leave functions out"),
    "function_call": (("none", "auto"), "function calls are not supported; leave function_call out"),
    "modalities": ((["text"],), "only text output is supported: modalities ['text']"),
    "audio": ((), "audio output is not supported; leave audio out"),
    "prediction": ((), "predicted outputs are not supported; leave prediction out"),
    "web_search_options": ((), "web search is not supported; leave web_search_options out"),
    "reasoning_effort": ((), "the served model does not reason separately; leave reasoning_effort out"),
    "verbosity": ((), "verbosity is not supported; leave it out"),
    "suffix": (("",), "inserting text before a suffix is not supported; leave suffix out"),
    "best_of": ((1,), "best_of is not supported; ask for n choices and pick among them"),
    # on a message
    "name": ((), "participant names are not supported; leave the message's name out"),
    "tool_calls": (([],), "tool calls are not supported; give the assistant turn's text as content"),
    "tool_call_id": ((), "tool results are not supported; roles are system, developer, user, assistant"),
    "refusal": ((), "leave the assistant turn's refusal out; give its text as content"),
    "annotations": (([],), "message annotations are not supported; leave them out"),
}
MESSAGE_UNSUPPORTED = (
    "name",
    "tool_calls",
    "tool_call_id",
    "refusal",
    "annotations",
    "audio",
    "function_call",
)
CHAT_UNSUPPORTED = (
    *("tools", "tool_choice", "functions", "function_call", "modalities", "audio"),
    *("prediction", "web_search_options", "reasoning_effort", "verbosity"),
)


def asks_nothing(value, info: ValidationInfo):
    """An `UNSUPPORTED` field's value, refused unless it is None or one that asks for nothing."""
    neutral, instead = UNSUPPORTED[info.field_name]
    if value is None or any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in neutral):
        return None
    raise ValueError(instead)
