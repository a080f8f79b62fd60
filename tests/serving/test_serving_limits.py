"""What one client can make the server do is bounded, so no client stalls another (issue 28).

Stop sequences are limited in number and length and matched at a small, fixed cost per character
(a 1,000,000-character stop once made another client's 16-token request take 43.5 s instead of
0.08 s); a connection that trickles its head or its body, or idles, is closed; and `serve` refuses
an unwritable feedback file at start-up. Servers run on 127.0.0.1 on a thread; the model is the
small test checkpoint with its EOS suppressed, so every request decodes exactly `max_tokens`.
"""

import json
import random
import socket
import threading
import time

import httpx
import pytest
import torch

from posttrain.cli import main
from posttrain.serving.app import create_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel, load_served
from posttrain.serving.protocol import MAX_MESSAGES, MAX_STOP_CHARS, MAX_STOPS
from posttrain.serving.server import BackgroundServer
from posttrain.serving.textstream import MAX_UNSETTLED, TextStream
from tests.tiny import BASE

MODEL = "base-small-seed0"
SHORT = {"model": MODEL, "prompt": "The capital of Keia is", "max_tokens": 16, "temperature": 0}
# the longest stop sequences a request may give, none of which the model will write
LONGEST_STOPS = ["x" * (MAX_STOP_CHARS - 1) + str(i) for i in range(MAX_STOPS)]


class NoEOS:
    """The model, but it never ends a sequence: each request decodes exactly its max_tokens."""

    def __init__(self, model, eos_ids: set[int]):
        self.model, self.eos_ids = model, sorted(eos_ids)

    def __call__(self, **inputs):
        out = self.model(**inputs)
        out.logits[..., self.eos_ids] = float("-inf")
        return out


@pytest.fixture(scope="module")
def served():
    loaded = load_served(str(BASE))
    return ServedModel(
        NoEOS(loaded.model, loaded.eos_ids), loaded.tokenizer, loaded.name, loaded.context_length
    )


@pytest.fixture(scope="module")
def engine(served):
    # one thread: on a machine shared with other jobs, torch's threads wait on each other, and a step's time
    # swings twentyfold with the machine's load instead of with the batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = Engine(served, max_batch=32).start()
    yield engine
    engine.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(served, engine, tmp_path_factory):
    app = create_app(served, engine, FeedbackLog(tmp_path_factory.mktemp("serve") / "feedback.jsonl"))
    with BackgroundServer(app) as srv:
        yield srv


# --- stop sequences: bounded, and matched at a fixed cost per character -------------------------
@pytest.mark.parametrize(
    "stop, what",
    [
        (["x" * 1_000_000], "1000000"),
        (["x" * (MAX_STOP_CHARS + 1)], "characters"),
        (["a"] * (MAX_STOPS + 1), f"at most {MAX_STOPS}"),
    ],
)
def test_stop_sequences_beyond_the_limits_are_a_400_naming_stop(server, stop, what):
    r = httpx.post(server.url + "/v1/completions", json={**SHORT, "stop": stop}, timeout=10)
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "stop" and error["code"] == "invalid_value", r.text[
        :300
    ]
    assert what in error["message"] and len(error["message"]) < 300  # the stop is not echoed back


def test_the_longest_stop_sequences_allowed_are_taken(server):
    r = httpx.post(server.url + "/v1/completions", json={**SHORT, "stop": LONGEST_STOPS, "n": 2}, timeout=60)
    assert r.status_code == 200 and [c["finish_reason"] for c in r.json()["choices"]] == ["length", "length"]


# --- messages: their number is bounded before they are validated and rendered --------------------
@pytest.mark.parametrize(
    "content, what", [("a", "messages"), ([{"type": "text", "text": "a"}], "text parts")]
)
def test_200000_messages_or_parts_are_refused_before_they_are_validated(server, content, what):
    """200,000 one-letter messages took 17 s to validate and render, slowing other clients up to 28 times."""
    messages = (
        [{"role": "user", "content": content}] * 200_000
        if what == "messages"
        else [{"role": "user", "content": content * 200_000}]
    )
    start = time.monotonic()
    r = httpx.post(
        server.url + "/v1/chat/completions", json={"model": MODEL, "messages": messages}, timeout=60
    )
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "messages", r.text[:300]
    assert f"at most {MAX_MESSAGES} {what}" in error["message"] and time.monotonic() - start < 5


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("/v1/completions", {"model": MODEL, "prompt": "word " * 1_000_000}, "prompt"),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "word " * 1_000_000}]},
            "messages",
        ),
    ],
    ids=["completion", "chat"],
)
def test_text_too_long_for_the_context_is_refused_before_it_is_tokenised(server, route, body, param):
    """5 MB of prompt took 20 s of CPU to tokenise before it was refused."""
    start = time.monotonic()
    r = httpx.post(server.url + route, json=body, timeout=60)
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == param and error["code"] == "context_length_exceeded"
    assert "5000000 characters" in error["message"] and time.monotonic() - start < 3, error["message"]


def test_feedback_with_200000_messages_is_refused_before_they_are_validated(server):
    feedback = {"messages": [{"role": "user", "content": "a"}] * 200_000, "completion": "x", "rating": "up"}
    r = httpx.post(server.url + "/v1/feedback", json=feedback, timeout=60)
    assert r.status_code == 400 and f"at most {MAX_MESSAGES} messages" in r.json()["error"]["message"]


def test_more_messages_than_the_context_has_tokens_are_refused_before_rendering(server):
    r = httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "a"}] * 600},
    )
    error = r.json()["error"]
    assert (
        r.status_code == 400
        and error["code"] == "context_length_exceeded"
        and "600 messages" in error["message"]
    )


def latency(url: str, timeout: float) -> float:
    """Seconds for SHORT (16 tokens, greedy) to be answered; inf when it takes longer than `timeout`."""
    start = time.monotonic()
    try:
        r = httpx.post(url + "/v1/completions", json=SHORT, timeout=timeout)
    except httpx.TimeoutException:
        return float("inf")
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 16, r.text[:300]
    return time.monotonic() - start


class Hostile(threading.Thread):
    """A streaming chat request with the longest stop sequences allowed, read on a thread that notes when it
    was queued (its first chunk, the role, comes once the worker has it) and when its stream ended, and
    hangs up once told to `leave`."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.queued, self.leave, self.ended = url, threading.Event(), threading.Event(), None
        self.body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Once upon a time"}],
            "temperature": 0,
            "max_tokens": 400,
            "stop": LONGEST_STOPS,
            "stream": True,
        }

    def run(self) -> None:
        with httpx.stream("POST", self.url + "/v1/chat/completions", json=self.body, timeout=600) as stream:
            for line in stream.iter_lines():
                self.queued.set()
                if line == "data: [DONE]":
                    self.ended = time.monotonic()
                if self.leave.is_set() or self.ended:
                    return


def test_a_request_with_the_longest_stops_does_not_slow_another_client(server):
    """Another client's 16-token request takes under twice its unloaded time while a request with the
    longest stop sequences allowed decodes. Best of 5 on each side, and up to 5 rounds, because the
    machine is shared and a second row alone costs 1.0 to 1.6 times here (over 2 times now and then
    when other jobs load the machine); a stall (the old matcher took 500 times longer) fails at once."""
    rounds = []
    for _ in range(5):
        unloaded = min(latency(server.url, timeout=30) for _ in range(5))
        hostile = Hostile(server.url)
        hostile.start()
        assert hostile.queued.wait(30), "the request with long stop sequences was not queued"
        loaded = min(latency(server.url, timeout=max(2.0, 40 * unloaded)) for _ in range(5))
        measured = time.monotonic()
        hostile.leave.set()
        hostile.join(10)
        assert hostile.ended is None or hostile.ended > measured, (
            "the request with long stop sequences ended before the measurement did; it proves nothing"
        )
        rounds.append((unloaded, loaded))
        if loaded < 2 * unloaded or loaded > 10 * unloaded:  # passed, or stalled beyond any noise
            break
    unloaded, loaded = rounds[-1]
    assert loaded < 2 * unloaded, (
        "another client's 16-token request, unloaded and while long stop sequences decode (best of 5): "
        + "; ".join(f"{u:.3f} s and {lo:.3f} s" for u, lo in rounds)
    )


class Pieces:
    """A tokenizer whose token i decodes to pieces[i] (for streams of known text, cut anywhere)."""

    def __init__(self, pieces: list[str]):
        self.pieces, self.calls = pieces, []

    def decode(self, ids, skip_special_tokens=True) -> str:
        self.calls.append(len(ids))
        return "".join(self.pieces[i] for i in ids)


def first_stop_cut(text: str, stops: list[str]) -> str:
    """The text cut before the first stop sequence to be completed (the longer of two completed together)."""
    for end in range(1, len(text) + 1):
        if done := [s for s in stops if text[:end].endswith(s)]:
            return text[: end - max(map(len, done))]
    return text


def test_stop_matching_cuts_at_the_first_stop_completed_however_the_text_is_split():
    rng = random.Random(0)
    for _ in range(500):
        text = "".join(rng.choice("ab\n") for _ in range(rng.randint(0, 30)))
        stops = [
            "".join(rng.choice("ab\n") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 4))
        ]
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 10)))) if text else []
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])] if text else []
        stream = TextStream(Pieces(pieces), stops)
        released = "".join(stream.push(i) for i in range(len(pieces))) + stream.flush()
        expected = first_stop_cut(text, stops)
        assert released == expected and stream.stopped == (expected != text), (text, stops, pieces)


def test_each_token_costs_the_same_however_long_the_stop_sequences():
    """4 stop sequences of 20,000 characters (far past the API's limit, to make a slow matcher show):
    200 tokens are matched in well under a second (the old matcher sliced each stop once per prefix
    length for every token: 11 s here)."""
    pieces = ["x" * 3] * 200
    start = time.monotonic()
    stream = TextStream(Pieces(pieces), ["x" * 19_999 + str(i) for i in range(4)])
    released = [stream.push(i) for i in range(len(pieces))]
    assert time.monotonic() - start < 1.0
    assert not any(released) and stream.flush() == "x" * 600  # all of it could have been a stop's start


def test_a_window_that_never_settles_stops_growing():
    """Tokens that decode to a broken character (or to nothing) are let go after MAX_UNSETTLED, so the
    window decoded for each token stays short instead of growing with the reply."""
    tokenizer = Pieces(["\ufffd", ""])
    stream = TextStream(tokenizer)
    released = "".join(stream.push(i % 2) for i in range(1000)) + stream.flush()
    assert max(tokenizer.calls) <= 2 * MAX_UNSETTLED and released == "\ufffd" * 500


# --- connections: a head, a body or an idle connection that takes too long is closed -------------
@pytest.fixture(scope="module")
def strict(served, engine, tmp_path_factory):
    """A server with half-second limits, so the tests below wait for them in bounded loops."""
    app = create_app(
        served, engine, FeedbackLog(tmp_path_factory.mktemp("strict") / "feedback.jsonl"), body_timeout=0.5
    )
    with BackgroundServer(app, head_timeout=0.5, keep_alive=0.5) as srv:
        yield srv


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(0.05)
    return sock


def trickle(sock: socket.socket, data: bytes, seconds: float = 5.0) -> tuple[bytes | None, float]:
    """Send `data` a byte every 0.05 s (then nothing) while reading; (what the server sent before closing
    the connection, seconds it took), or (None, seconds) when it was still open after `seconds`."""
    start, answer = time.monotonic(), b""
    while time.monotonic() - start < seconds:
        try:
            if data:
                sock.send(data[:1])
                data = data[1:]
        except OSError:  # closed under us: what was answered is still to be read
            pass
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return answer, time.monotonic() - start
        answer += chunk
    return None, time.monotonic() - start


@pytest.mark.parametrize(
    "head",
    [b"", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 1000],
    ids=["silent", "trickled"],
)
def test_a_connection_without_a_whole_head_in_time_is_closed(strict, head):
    with connect(strict.url) as sock:
        answer, seconds = trickle(sock, head)
    assert answer == b"" and seconds < 3, (
        f"the connection was {'open' if answer is None else 'answered'} after {seconds:.1f} s"
    )


def test_a_body_that_trickles_in_is_a_408(strict):
    body = json.dumps(SHORT).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(strict.url) as sock:
        sock.sendall(head)
        answer, seconds = trickle(sock, body)
    assert answer is not None and seconds < 3, f"the connection was still open after {seconds:.1f} s"
    status, _, payload = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408") and json.loads(payload)["error"]["code"] == "request_timeout"


def test_a_whole_request_on_a_strict_server_is_answered_and_an_idle_connection_closed(strict):
    with connect(strict.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer, seconds = trickle(sock, b"")
    assert answer is not None and answer.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in answer
    assert 0.3 < seconds < 3, f"the idle connection was closed after {seconds:.1f} s (keep-alive 0.5 s)"


def test_a_head_still_incomplete_after_16_kib_is_a_400(strict):
    with connect(strict.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (17 * 1024))
        answer, _ = trickle(sock, b"")
    assert answer is not None and answer.startswith(b"HTTP/1.1 400")


# --- feedback: an unwritable file is refused at start-up -----------------------------------------
@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_serve_refuses_an_unwritable_feedback_file_before_loading_the_model(tmp_path, capsys, where):
    (tmp_path / "file").write_text("")
    feedback = tmp_path / "file" / "feedback.jsonl" if where == "under-a-file" else tmp_path
    # the model does not exist: had serve got as far as loading it, the error would be about the model
    assert main(["serve", str(tmp_path / "no-such-model"), "--port", "0", "--feedback", str(feedback)]) == 2
    err = capsys.readouterr().err
    assert "--feedback" in err and str(feedback) in err and "no-such-model" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
