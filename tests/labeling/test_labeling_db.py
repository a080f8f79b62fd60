"""The labeling database file from the command line: a lock another process holds is a short wait and
a clear error, and a database we may only read still exports (issue 28, mechanism 3)."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from posttrain.cli import main
from posttrain.labeling.dbfile import BUSY_SECONDS
from posttrain.labeling.store import Store
from posttrain.labeling.submission import check_label
from tests.tiny import ROOT


def labeled_db(path: Path) -> Store:
    """A database with one ranked item, its connection left open (its WAL not yet checkpointed)."""
    store = Store(path)
    store.add_items(
        [
            {
                "id": "s0",
                "prompt": [{"role": "user", "content": "Question?"}],
                "meta": {},
                "completions": [{"text": "a", "source": "model:m"}, {"text": "b", "source": "model:m"}],
            }
        ],
        "s",
    )
    store.add_labeler("ana")
    body = check_label({"ranking": [[1], [0]], "likert": [5, 3], "flags": [[], []], "order_touched": True}, 2)
    store.save_label(store.labelers()[0], "s0", "x1", "ranked", body)
    return store


@pytest.mark.parametrize(
    "holder, args",
    [
        # another process in the middle of a write transaction: writers must wait for it
        (["BEGIN IMMEDIATE", "UPDATE items SET added = added"], ["add-labeler", "--name", "bo"]),
        # another process in exclusive locking mode (the sqlite3 shell can do this): even reads must wait
        (
            ["PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "UPDATE items SET added = added"],
            ["add-labeler", "--name", "bo"],
        ),
        (
            ["PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "UPDATE items SET added = added"],
            ["export", "--out", "r"],
        ),
    ],
)
def test_a_lock_another_process_holds_is_a_short_wait_and_says_so(tmp_path, capsys, holder, args):
    db = tmp_path / "labels.sqlite"
    labeled_db(db).db.close()
    other = sqlite3.connect(db, isolation_level=None)
    for statement in holder:
        other.execute(statement)
    args = [str(tmp_path / a) if a == "r" else a for a in args]
    took = time.monotonic()
    try:
        code = main(["label", args[0], "--db", str(db), *args[1:]])
    finally:
        other.close()
    took = time.monotonic() - took
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"{db}: another process holds its write lock" in err and "not a labeling database" not in err
    assert took < BUSY_SECONDS + 5, f"waited {took:.1f} s"


# Run as an unprivileged user: tests run as root, whom file modes do not stop from writing, so as root
# a read-only file or folder would never reach the read-only code path.
EXPORT_AS_NOBODY = """
import json, sys
from posttrain.cli import main
pairs = json.loads(sys.argv[1])
print(json.dumps([main(["label", "export", "--db", db, "--out", out]) for db, out in pairs]))
"""


def as_nobody() -> list[str]:
    """The command prefix that runs a program as user nobody when we are root (setpriv, from util-linux:
    subprocess's own `user=` cannot exec this venv's python, whose link leads into /root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): no way to drop to an unprivileged user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_a_database_in_a_read_only_folder_exports():
    cases = {"wal_left": ["", "-wal", "-shm"], "wal_without_shm": ["", "-wal"], "closed": [""]}
    root = Path(tempfile.mkdtemp())  # not under pytest's tmp_path, which only its owner may enter
    try:
        source = labeled_db(root / "labels.sqlite")  # still open: its label is only in the -wal file
        for case, suffixes in cases.items():
            if case == "closed":
                source.db.close()  # the last connection's close folds the -wal in
            (root / case).mkdir()
            for suffix in suffixes:
                shutil.copy(root / f"labels.sqlite{suffix}", root / case / f"labels.sqlite{suffix}")
        label_only_in_wal = sqlite3.connect(
            f"{(root / 'wal_left/labels.sqlite').as_uri()}?immutable=1", uri=True
        )
        assert label_only_in_wal.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'labels'"
        ).fetchone() == (0,)
        label_only_in_wal.close()
        (root / "out").mkdir()
        for path in [root / "out", *root.iterdir()]:
            path.chmod(0o777 if path.name == "out" else 0o555 if path.is_dir() else 0o444)
        for case in cases:
            for f in (root / case).iterdir():
                f.chmod(0o444)
        root.chmod(0o755)
        jobs = [(str(root / case / "labels.sqlite"), str(root / "out" / f"{case}.jsonl")) for case in cases]
        run = subprocess.run(
            [*as_nobody(), sys.executable, "-c", EXPORT_AS_NOBODY, json.dumps(jobs)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
        codes = dict(zip(cases, json.loads(run.stdout.splitlines()[-1])))
        assert codes == {"wal_left": 0, "wal_without_shm": 2, "closed": 0}, run.stderr
        for case in ("closed", "wal_left"):
            records = [json.loads(line) for line in (root / "out" / f"{case}.jsonl").read_text().splitlines()]
            assert [(r["id"], r["ranking"]) for r in records] == [("s0/ana", [[1], [0]])], case
        assert "copy labels.sqlite and labels.sqlite-wal together to a folder you may write to" in run.stderr
        assert "Traceback" not in run.stderr
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        shutil.rmtree(root)


def test_export_opens_the_database_read_only(tmp_path):
    """Whoever runs it, export never writes: the store it reads refuses writes (mode=ro), even on a writable
    file."""
    labeled_db(tmp_path / "labels.sqlite").db.close()
    before = (tmp_path / "labels.sqlite").read_bytes()
    assert (
        main(["label", "export", "--db", str(tmp_path / "labels.sqlite"), "--out", str(tmp_path / "r.jsonl")])
        == 0
    )
    assert (tmp_path / "labels.sqlite").read_bytes() == before
    reader = Store(tmp_path / "labels.sqlite", readonly=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):
        reader.db.execute("INSERT INTO labelers (name, token_sha256, created) VALUES ('x', 'y', 'z')")
