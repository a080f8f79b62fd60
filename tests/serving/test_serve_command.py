"""`posttrain serve` as a user starts it: in a process of its own, its key from the environment, the shipped
base model answering through the official `openai` client, and a clean stop on Ctrl-C."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import httpx
import openai

from tests.tiny import BASE

HI = [{"role": "user", "content": "Hi"}]


def test_the_serve_command_takes_its_key_from_the_environment_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "POSTTRAIN_API_KEY": "env-key", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posttrain.cli",
            "serve",
            str(BASE),
            "--port",
            "0",
            "--feedback",
            str(tmp_path / "fb.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 1.0)[0]:
                url = (
                    m := re.search(r"at (http://127\.0\.0\.1:\d+)/v1", proc.stdout.readline())
                ) and m.group(1)
        assert url, proc.stderr.read() if proc.poll() is not None else "no URL printed within 60 s"
        assert httpx.get(url + "/health", timeout=30).status_code == 401
        client = openai.OpenAI(base_url=url + "/v1", api_key="env-key", max_retries=0, timeout=60)
        # the shipped model, loaded by `posttrain serve` in a process of its own, answers
        r = client.chat.completions.create(
            model="base-small-seed0", messages=HI, temperature=0, max_tokens=30
        )
        assert r.choices[0].message.content.strip() and r.usage.completion_tokens == 30
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0 and "Traceback" not in proc.stderr.read()
