"""Talk to a model: the chat REPL (`posttrain chat`) and the OpenAI-compatible server (`posttrain serve`).

    model.py       a loaded model with what serving needs: chat prompts as token ids, context length
    textstream.py  token ids to text deltas, holding back stop-sequence prefixes
    engine.py      one generation worker thread fed by a queue; requests join and leave one running batch
    protocol.py    OpenAI request schemas, response and stream-chunk bodies, API errors
    connection.py  uvicorn's HTTP connection with a deadline for the request head
    app.py         the FastAPI app: routes, API key, errors, server-sent events
    feedback.py    feedback records (ratings, flags, preferred answers), appended and fsync'd
    session.py     a chat session's state and its slash commands
    repl.py        the terminal loop: input, streaming output, Ctrl-C

The checks before a route, which the labeling app shares, are posttrain/web/guard.py. Serving never
imports training code, nor the labeling app (docs/design.md, "Layout").
"""
