"""Both HTTP apps answer only to loopback and the host names they were given (a Host allow-list keeps other
sites' pages out), and the commands turn their options into those names; through real HTTP on 127.0.0.1."""

import httpx
import pytest

from posttrain.arguments import from_namespace
from posttrain.cli import build_parser
from posttrain.labeling.configs import LabelServeConfig
from posttrain.labeling.server import create_app as labeling_app
from posttrain.labeling.store import Store
from posttrain.serving.app import create_app as serving_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel
from posttrain.serving.server import BackgroundServer, ServeConfig

KEY = "hosts-test-key"


def message(r: httpx.Response) -> str:
    """The error message, in either app's format: {"error": {"message", ...}} or {"error": "..."}."""
    error = r.json()["error"]
    return error["message"] if isinstance(error, dict) else error


@pytest.mark.parametrize(
    "api_key, hosts, host, status",
    [
        (None, (), "evil.example", 421),
        (None, (), "evil.example:8000", 421),
        (None, (), "localhost:8000", 200),
        (None, (), "[::1]:8000", 200),
        (None, ["chat.example"], "chat.example", 200),
        (KEY, None, "evil.example", 200),  # `posttrain serve --api-key` without --allowed-host
        (KEY, ["chat.example"], "evil.example", 421),
    ],
)
def test_the_server_answers_only_to_loopback_and_allowed_host_names(tmp_path, api_key, hosts, host, status):
    served = ServedModel(None, None, "m", 64)  # the Host check and /health need no model
    app = serving_app(
        served, Engine(served), FeedbackLog(tmp_path / "fb.jsonl"), api_key=api_key, hosts=hosts
    )
    with BackgroundServer(app) as srv:
        r = httpx.get(srv.url + "/health", headers={"Host": host, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == status, r.text
    if status == 421:
        assert r.json()["error"]["code"] == "host_not_allowed" and "--allowed-host" in message(r)


def test_a_labeling_app_given_host_names_answers_only_to_those_and_loopback(tmp_path):
    store = Store(tmp_path / "labels.sqlite")
    for hosts, host, status in [
        (None, "evil.example", 200),
        (["labels.example"], "labels.example:80", 200),
        (["labels.example"], "127.0.0.1:8000", 200),
        (["labels.example"], "evil.example", 421),
    ]:
        with BackgroundServer(labeling_app(store, hosts=hosts)) as srv:
            r = httpx.get(srv.url + "/", headers={"Host": host})
        assert r.status_code == status, (hosts, host, r.text)
        if status == 421:
            assert "--allowed-host" in message(r)


@pytest.mark.parametrize(
    "argv, hosts",
    [
        (["serve", "m"], ["127.0.0.1"]),
        (
            ["serve", "m", "--host", "0.0.0.0", "--allowed-host", "a.example", "--allowed-host", "b.example"],
            ["0.0.0.0", "a.example", "b.example"],
        ),
        (["serve", "m", "--api-key", "k"], None),  # a key guards it: any Host name
        (["serve", "m", "--api-key", "k", "--allowed-host", "a.example"], ["127.0.0.1", "a.example"]),
        (["label", "serve", "--db", "l.sqlite"], None),  # tokens guard it: any Host name
        (["label", "serve", "--db", "l.sqlite", "--allowed-host", "a.example"], ["127.0.0.1", "a.example"]),
    ],
)
def test_the_commands_turn_their_options_into_host_names(argv, hosts):
    config = ServeConfig if argv[0] == "serve" else LabelServeConfig
    assert from_namespace(config, build_parser().parse_args(argv)).hosts() == hosts
