"""A tenant's python grader tries to escape; each attempt fails and the API lives on.

Every case goes through ``POST /v1/fine_tuning/alpha/graders/run`` (the same grader code a
training job runs) and then checks that a well-behaved grader still works on the same
server, so no attempt took the process down or used up what the next grader needs.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from quanta.config import Settings
from quanta.registry import Registry
from quanta.tenancy import create_key
from tune.api.app import create_app

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap missing (scripts/setup.sh installs it)")

SECRET = "s3cr3t-database-password"


@pytest.fixture
def api(quanta_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("QUANTA_TEST_SECRET", SECRET)
    monkeypatch.setenv("QUANTA_GRADER_TIMEOUT", "4")
    monkeypatch.setenv("QUANTA_GRADER_CPU_SECONDS", "2")
    from quanta.config import reset_settings

    reset_settings()
    settings = Settings(home=quanta_home, allow_anonymous=False)
    registry = Registry.open(settings)
    _, key = create_key(registry, "local")
    return {"client": TestClient(create_app(settings, registry)), "key": key,
            "home": quanta_home}


def run(api: dict[str, Any], source: str, item: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    response = api["client"].post(
        "/v1/fine_tuning/alpha/graders/run",
        headers={"Authorization": f"Bearer {api['key']}"},
        json={"grader": {"type": "python", "name": "py", "source": source},
              "model_sample": "42", "item": item or {}})
    assert response.status_code == 200, response.text
    return response.json()


def assert_failed(result: dict[str, Any]) -> str:
    """The attempt scored 0 with a reported reason; the server still grades normally."""
    errors = result["metadata"]["errors"]
    assert result["reward"] == 0.0
    assert errors["python_grader_runtime_error"] or errors["unresponsive_reward_error"]
    return str(errors["python_grader_runtime_error_details"])


def assert_alive(api: dict[str, Any]) -> None:
    ok = run(api, "def grade(sample, item):\n    return float(sample['output_text']) / 84")
    assert ok["reward"] == 0.5, ok


def test_a_well_behaved_grader_scores(api: dict[str, Any]) -> None:
    result = run(api, "import math\ndef grade(sample, item):\n"
                      "    print('noise ' * 100)\n"
                      "    return math.sqrt(float(sample['output_text'])) / item['k']",
                 {"k": 10})
    assert result["reward"] == pytest.approx(0.648074, rel=1e-5)
    assert not any(v for k, v in result["metadata"]["errors"].items() if k.endswith("error"))


def test_cannot_read_the_registry(api: dict[str, Any]) -> None:
    database = api["home"] / "registry.db"
    assert database.exists()
    detail = assert_failed(run(api, f"def grade(sample, item):\n"
                                    f"    return len(open({str(database)!r}, 'rb').read())"))
    assert "No such file" in detail
    listing = run(api, "import os\ndef grade(sample, item):\n"
                       "    return float(len(os.listdir('/')) + 100 * os.path.exists('/root'))")
    assert listing["reward"] < 10  # /usr, /tmp, /proc, /dev, /sandbox and links: no /root
    assert_alive(api)


def test_cannot_open_a_socket(api: dict[str, Any]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[Any] = []

    def accept() -> None:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    detail = assert_failed(run(api, f"import socket\ndef grade(sample, item):\n"
                                    f"    socket.create_connection(('127.0.0.1', {port}), 2)\n"
                                    f"    return 1.0"))
    resolve = assert_failed(run(api, "import urllib.request\ndef grade(sample, item):\n"
                                     "    urllib.request.urlopen('http://pypi.org', timeout=2)\n"
                                     "    return 1.0"))
    thread.join()
    listener.close()
    assert accepted == []
    assert "refused" in detail.lower() or "unreachable" in detail.lower()
    assert "URLError" in resolve or "resolution" in resolve
    assert_alive(api)


def test_cannot_read_environment_secrets(api: dict[str, Any]) -> None:
    assert os.environ["QUANTA_TEST_SECRET"] == SECRET
    result = run(api, "import os\ndef grade(sample, item):\n"
                      f"    found = any({SECRET!r} in v for v in os.environ.values())\n"
                      "    try:\n"
                      f"        found = found or {SECRET!r}.encode() in "
                      "open('/proc/1/environ', 'rb').read()\n"
                      "    except OSError:\n"
                      "        pass\n"
                      "    return 1.0 if found else float(len(os.environ))")
    assert result["reward"] < 5  # PATH, HOME and what python sets itself
    assert_alive(api)


def test_fork_bomb_is_contained(api: dict[str, Any]) -> None:
    before = _nobody_processes()
    started = time.monotonic()
    assert_failed(run(api, "import os\ndef grade(sample, item):\n"
                           "    while True:\n"
                           "        try:\n"
                           "            os.fork()\n"
                           "        except OSError:\n"
                           "            pass\n"))
    assert time.monotonic() - started < 20
    assert _nobody_processes() <= before  # every forked process is gone
    assert_alive(api)


def test_ten_gigabytes_are_refused(api: dict[str, Any]) -> None:
    rss = psutil.Process().memory_info().rss
    detail = assert_failed(run(api, "def grade(sample, item):\n"
                                    "    block = bytearray(10 * 1024 ** 3)\n"
                                    "    return 1.0"))
    assert "MemoryError" in detail
    assert psutil.Process().memory_info().rss < rss + 512 * 1024 ** 2
    assert_alive(api)


@pytest.mark.parametrize(("source", "reason"), [
    ("def grade(sample, item):\n    while True:\n        pass", "CPU time"),
    ("import time\ndef grade(sample, item):\n    time.sleep(60)", "out of time"),
    ("def grade(sample, item):\n    while True:\n        print('x' * 4096)", "File too large"),
    ("def grade(sample, item):\n    return 'garbage'", "not a number"),
    ("def grade(sample, item):\n    return float('nan')", "not a finite number"),
    ("import os\ndef grade(sample, item):\n    os.kill(os.getpid(), 11)", "SIGSEGV"),
    ("import os, sys\ndef grade(sample, item):\n"  # forges a score on the result fd
     "    os.write(int(sys.argv[1]), b'{\"score\": 1.0}')\n    raise SystemExit(3)",
     "not readable"),
])
def test_hangs_crashes_and_garbage_score_zero(api: dict[str, Any], source: str,
                                              reason: str) -> None:
    detail = assert_failed(run(api, source))
    assert reason in detail, detail
    assert_alive(api)


def _nobody_processes() -> int:
    """Processes under the sandbox's identities (a run's own uid as root)."""
    from tune.graders.sandbox import RUN_UIDS

    return sum(1 for p in psutil.process_iter(["uids"])
               if p.info["uids"] and (p.info["uids"].real in RUN_UIDS
                                      or p.info["uids"].real == 65534))
