"""One tenant sends the heaviest grader requests it may; does another tenant notice?

    python bench/graders_abuse.py [--seconds 60] [--threads 8] [--keep]

Starts ``quanta tune api`` (uvicorn, a child process) over a fresh ``QUANTA_HOME`` with
the default grader settings, two tenants: the victim uploads a few files and then lists
them (``GET /v1/files``) back to back, 20 times a second, while the attacker's
``--threads`` client threads send, for ``--seconds``, the heaviest requests the API
accepts:

* ``fuzzy_match`` and ``rouge_l`` on the largest model_sample and item the API takes for
  that metric (found at the start: the largest sizes that are not refused);
* ``string_check`` whose templates repeat ``{{item.r}}`` thousands of times (``like``);
* a ``multi`` of 16 python graders that sleep;
* python graders that fork-bomb, allocate, loop, flood output (the hostile corpus of
  ``tests.support.grader_fuzz``);
* 50 MB JSON bodies, declared (``Content-Length``) and streamed (chunked).

Prints the victim's latency (p50/p99, before and during the attack; target p99 < 200 ms),
the API process's peak memory growth (``VmHWM``, baseline taken after start-up; target
< +200 MB) with its child processes apart, responses by class (2xx, 4xx of which 429 and
413, 5xx: target 0) and per attack, then what was left: ``registry.verify()``, processes
under the API, and the sandbox's temporary directories (``quanta-grader-*`` in the API's
private ``TMPDIR``) once it stopped. ``--only fuzzy rouge`` runs some attacks alone (to
see which one the victim feels). Exit status 1 on any 5xx or verify problem.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import itertools
import os
import random
import re
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

import httpx
import psutil

from quanta.config import Settings
from quanta.processes import free_port, quanta_command, start_process, stop_process, wait_healthy
from quanta.registry import Registry
from quanta.tenancy import create_key, create_tenant
from tests.support.grader_fuzz import HOSTILE_PYTHON
from tests.support.servers import quanta_env

RUN = "/v1/fine_tuning/alpha/graders/run"
MIB = 1024 * 1024
HOSTILE = ["fork_bomb", "allocate_slowly", "allocate_10g", "busy_loop", "threads",
           "print_flood", "fill_tmp", "orphan_sleepers", "recursion", "ignore_sigterm_and_sleep"]


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = sorted({f for f in ("avx512_bf16", "avx2") if f" {f}" in text})
    return ", ".join(flags) or "neither avx2 nor avx512_bf16"


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


@functools.lru_cache(maxsize=32)
def words(n_chars: int, seed: int) -> str:
    """``n_chars`` of word-like text (distinct per seed: equal texts are a metric's easy
    case)."""
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n_chars:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n_chars]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the attacks -------------------------------------------------------------------------------

@dataclass
class Attack:
    name: str
    make: Callable[[int], dict[str, Any]]  # size -> httpx.post keyword arguments
    size: int  # shrinks (halves) when the API refuses it as too large (a 400)
    floor: int = 1000
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, seconds: float, detail: str = "") -> None:
        with self.lock:
            self.statuses[status] += 1
            self.seconds.append(seconds)
            if status >= 500 or status == 0:
                self.errors.append(detail[:300])


def _similarity(metric: str) -> Callable[[int], dict[str, Any]]:
    def make(size: int) -> dict[str, Any]:
        return {"json": {"grader": {"type": "text_similarity", "name": metric,
                                    "input": "{{sample.output_text}}",
                                    "reference": "{{item.r}}", "evaluation_metric": metric},
                         "model_sample": words(size, 1), "item": {"r": words(size, 2)}}}
    return make


def _expanding(size: int) -> dict[str, Any]:
    template = "{{item.r}}" * 6000  # under the 64 K-character template limit
    return {"json": {"grader": {"type": "string_check", "name": "expand", "input": template,
                                "reference": template, "operation": "like"},
                     "model_sample": "x", "item": {"r": words(size, 3)}}}


def _multi_sleep(_size: int) -> dict[str, Any]:
    sleeper = "import time\ndef grade(sample, item):\n    time.sleep(3600)\n    return 1.0"
    graders = {f"g{i}": {"type": "python", "name": f"g{i}", "source": sleeper}
               for i in range(16)}
    return {"json": {"grader": {"type": "multi", "name": "sleepers", "graders": graders,
                                "calculate_output": " + ".join(graders)},
                     "model_sample": "x", "item": {}}}


_hostile_turn = itertools.count()


def _hostile(_size: int) -> dict[str, Any]:
    name = HOSTILE[next(_hostile_turn) % len(HOSTILE)]
    return {"json": {"grader": {"type": "python", "name": name, "source": HOSTILE_PYTHON[name]},
                     "model_sample": "42", "item": {}}}


BIG = 50 * MIB
_BIG_BODY = b'{"model_sample": "' + b"x" * (BIG - 21) + b'"}'


def _declared(_size: int) -> dict[str, Any]:
    return {"content": _BIG_BODY, "headers": {"Content-Type": "application/json"}}


def _chunked(_size: int) -> dict[str, Any]:
    def chunks() -> Iterator[bytes]:
        view = memoryview(_BIG_BODY)
        for start in range(0, len(view), MIB):
            yield bytes(view[start:start + MIB])
    return {"content": chunks(), "headers": {"Content-Type": "application/json"}}


def largest_accepted(client: httpx.Client, key: str, body: Callable[[int], dict[str, Any]],
                     low: int, high: int) -> int:
    """The largest size in [low, high] the API does not refuse (400, 413): the limit a
    refusal names, if that is accepted, else by bisection. The graders are cheap (texts of
    one letter repeated), so the answer is the API's limit, not a metric's time."""
    headers = {"Authorization": f"Bearer {key}"}

    def refused(size: int) -> tuple[bool, list[int]]:
        """Whether ``size`` is refused, and the limits the refusal names."""
        response = client.post(RUN, headers=headers, json=body(size))
        no = response.status_code in (400, 413)
        return no, [int(n) for n in re.findall(r"(?:at most|more than|over) (\d+)",
                                               response.text)] if no else []

    no, named = refused(high)
    if not no:
        return high
    while high - low > max(1, low // 50):
        guesses = [n for n in named if low < n < high]
        size = max(guesses) if guesses else (low + high) // 2
        no, more = refused(size)
        if no:
            high, named = size, more
        elif guesses:
            return size  # the limit the API named
        else:
            low = size
    return low


def _cheap(metric: str | None, where: str) -> Callable[[int], dict[str, Any]]:
    def body(size: int) -> dict[str, Any]:
        grader: dict[str, Any] = (
            {"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
             "reference": "{{item.r}}", "operation": "eq"} if metric is None else
            {"type": "text_similarity", "name": "t", "input": "{{sample.output_text}}",
             "reference": "{{item.r}}", "evaluation_metric": metric})
        text = "a" * size
        return {"grader": grader, "model_sample": text if where != "item" else "a",
                "item": {"r": text if where != "sample" else "a"}}
    return body


def discover_sizes(url: str, key: str) -> dict[str, int]:
    """The largest model_sample and item text the API takes (string_check), the largest
    texts each quadratic metric compares, the largest ``item.r`` for ``_expanding``."""
    with httpx.Client(base_url=url, timeout=120) as client:
        return {
            "model_sample": largest_accepted(client, key, _cheap(None, "sample"), 100, 4 << 20),
            "item.r": largest_accepted(client, key, _cheap(None, "item"), 100, 4 << 20),
            "fuzzy_match": largest_accepted(client, key, _cheap("fuzzy_match", "both"), 100,
                                            4 << 20),
            "rouge_l": largest_accepted(client, key, _cheap("rouge_l", "both"), 100, 4 << 20),
            "item.r x6000": largest_accepted(
                client, key, lambda n: {**_expanding(n)["json"], "item": {"r": "a" * n}}, 1,
                4 << 20),
        }


# -- the victim, the attackers, the watcher ------------------------------------------------------

def victim(url: str, key: str, stop: threading.Event, out: list[float],
           failures: collections.Counter[str], interval: float = 0.05) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = client.get("/v1/files", headers={"Authorization": f"Bearer {key}"}
                                    ).status_code
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
                status = 0
            elapsed = time.perf_counter() - started
            if status == 200:
                out.append(elapsed * 1000)
            else:
                failures[str(status)] += 1
            stop.wait(max(0.0, interval - elapsed))


def attacker(index: int, url: str, key: str, attacks: list[Attack], deadline: float) -> None:
    turn = index
    with httpx.Client(base_url=url, timeout=httpx.Timeout(150, connect=10)) as client:
        while time.monotonic() < deadline:
            attack = attacks[turn % len(attacks)]
            turn += 1
            with attack.lock:
                size = attack.size
            request = attack.make(size)
            headers = {"Authorization": f"Bearer {key}", **request.pop("headers", {})}
            started = time.monotonic()
            try:
                response = client.post(RUN, headers=headers, **request)
                status, detail = response.status_code, response.text
            except httpx.HTTPError as exc:
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            attack.record(status, time.monotonic() - started, f"{status} {detail}")
            if status == 400 and ("expands to more than" in detail or "at most" in detail):
                with attack.lock:  # refused as too large (not expected: sizes were found)
                    if attack.size == size:  # once for all threads that sent this size
                        attack.size = max(attack.floor, size // 2)
            elif status == 429:
                time.sleep(0.05)  # the abuser retries at once, not after Retry-After


@dataclass
class Watch:
    hwm_kb: int = 0
    rss_kb: list[int] = field(default_factory=list)
    children_rss_peak_kb: int = 0
    children_peak: int = 0


def watch(pid: int, stop: threading.Event, out: Watch) -> None:
    parent = psutil.Process(pid)
    while not stop.is_set():
        with contextlib.suppress(OSError, psutil.Error):
            out.rss_kb.append(proc_status_kb(pid, "VmRSS"))
            out.hwm_kb = proc_status_kb(pid, "VmHWM")
            rss = count = 0
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss // 1024
                    count += 1
            out.children_rss_peak_kb = max(out.children_rss_peak_kb, rss)
            out.children_peak = max(out.children_peak, count)
        stop.wait(0.25)


# -- the run -------------------------------------------------------------------------------------

def setup(home: Path) -> tuple[str, str]:
    registry = Registry.open(Settings(home=home, allow_anonymous=False))
    for tenant in ("attacker", "victim"):
        create_tenant(registry, tenant)
    return create_key(registry, "attacker")[1], create_key(registry, "victim")[1]


def start_api(home: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = home / "api.log"
    proc = start_process(quanta_command("tune", "api", "--host", "127.0.0.1", "--port",
                                        str(port)), log,
                         quanta_env(home, TMPDIR=str(tmp),
                                    QUANTA_GRADER_MODEL_URL=f"http://127.0.0.1:{free_port()}/v1"))
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/health", proc, 120, log)
    return proc, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--drain-seconds", type=float, default=30,
                        help="after --seconds, wait this long for requests in flight")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="run only the attacks whose name contains one of these words")
    parser.add_argument("--keep", action="store_true", help="keep QUANTA_HOME (and its api.log)")
    args = parser.parse_args(argv)

    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} CPUs", flush=True)
    root = Path(tempfile.mkdtemp(prefix="quanta-graders-abuse-"))
    root.chmod(0o711)  # the sandbox's own uids traverse it to reach TMPDIR
    home, tmp = root / "home", root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    attacker_key, victim_key = setup(home)
    proc, url = start_api(home, tmp)
    status_code = 0
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(5):
                response = client.post(
                    "/v1/files", headers={"Authorization": f"Bearer {victim_key}"},
                    files={"file": (f"v{i}.jsonl", b'{"messages": [{"role": "user", "content": '
                                    b'"hi"}, {"role": "assistant", "content": "yo"}]}\n' * 12)},
                    data={"purpose": "fine-tune"})
                assert response.status_code == 200, response.text
        started = time.monotonic()
        sizes = discover_sizes(url, attacker_key)
        print(f"sizes the API accepts (characters; found in {time.monotonic() - started:.0f}s): "
              + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)

        stop_victim = threading.Event()
        baseline: list[float] = []
        failures: collections.Counter[str] = collections.Counter()
        thread = threading.Thread(target=victim, args=(url, victim_key, stop_victim, baseline,
                                                       failures), daemon=True)
        thread.start()
        time.sleep(args.baseline_seconds)
        stop_victim.set()
        thread.join()
        hwm_before = proc_status_kb(proc.pid, "VmHWM")
        rss_before = proc_status_kb(proc.pid, "VmRSS")

        attacks = [
            Attack("fuzzy_match, largest", _similarity("fuzzy_match"), sizes["fuzzy_match"]),
            Attack("rouge_l, largest", _similarity("rouge_l"), sizes["rouge_l"]),
            Attack("string_check, {{item.r}} x6000", _expanding, sizes["item.r x6000"],
                   floor=1),
            Attack("multi of 16 sleeping python", _multi_sleep, 0),
            Attack("python: " + "/".join(h.split("_")[0] for h in HOSTILE[:4]) + "...",
                   _hostile, 0),
            Attack("50 MB JSON, Content-Length", _declared, 0),
            Attack("50 MB JSON, chunked", _chunked, 0),
        ]
        if args.only:
            attacks = [a for a in attacks if any(w in a.name for w in args.only)]
        stop_all = threading.Event()
        during: list[float] = []
        watched = Watch()
        helpers = [threading.Thread(target=victim, args=(url, victim_key, stop_all, during,
                                                         failures), daemon=True),
                   threading.Thread(target=watch, args=(proc.pid, stop_all, watched),
                                    daemon=True)]
        for helper in helpers:
            helper.start()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=attacker, args=(i, url, attacker_key, attacks,
                                                           deadline), daemon=True)
                   for i in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()) + args.drain_seconds)
        unfinished = sum(t.is_alive() for t in threads)
        stop_all.set()
        for helper in helpers:
            helper.join(timeout=5)
        hwm_after = proc_status_kb(proc.pid, "VmHWM")

        # -- what is left ------------------------------------------------------------------
        time.sleep(2)
        with httpx.Client(base_url=url, timeout=60) as client:
            alive = client.post(RUN, headers={"Authorization": f"Bearer {victim_key}"}, json={
                "grader": {"type": "python", "name": "ok",
                           "source": "def grade(sample, item):\n    return 0.5"},
                "model_sample": "x"})
            listing = client.get("/v1/files", headers={"Authorization": f"Bearer {victim_key}"})
        children_left = [f"{c.pid}:{c.name()}" for c in psutil.Process(proc.pid).children(
            recursive=True) if c.is_running()]
        stop_process(proc, grace=20)
        # What no one will remove: a run killed at its budget never reaches its clean-up.
        left_dirs = sorted(p.name for p in tmp.glob("quanta-grader-*"))
        report = Registry.open(Settings(home=home, allow_anonymous=False)).verify()

        # -- the table ---------------------------------------------------------------------
        total: collections.Counter[int] = collections.Counter()
        for attack in attacks:
            total.update(attack.statuses)
        n5xx = sum(n for s, n in total.items() if s >= 500)
        n4xx = sum(n for s, n in total.items() if 400 <= s < 500)
        print(f"\nattack: {args.threads} threads x {args.seconds:.0f}s "
              f"({unfinished} still in flight after {args.drain_seconds:.0f}s more)")
        print(f"{'attack':36s} {'sent':>5s} {'2xx':>5s} {'4xx':>5s} {'429':>5s} {'413':>5s} "
              f"{'5xx':>4s} {'none':>4s} {'p50 s':>6s} {'max s':>6s}  final size")
        for a in attacks:
            s = a.statuses
            print(f"{a.name:36s} {sum(s.values()):5d} "
                  f"{sum(n for k, n in s.items() if 200 <= k < 300):5d} "
                  f"{sum(n for k, n in s.items() if 400 <= k < 500):5d} {s[429]:5d} {s[413]:5d} "
                  f"{sum(n for k, n in s.items() if k >= 500):4d} {s[0]:4d} "
                  f"{statistics.median(a.seconds) if a.seconds else float('nan'):6.2f} "
                  f"{max(a.seconds, default=float('nan')):6.2f}  {a.size or '-'}")
        print(f"\n(a) victim GET /v1/files: before p50 {percentile(baseline, .5):.1f} ms, "
              f"p99 {percentile(baseline, .99):.1f} ms (n={len(baseline)}); during p50 "
              f"{percentile(during, .5):.1f} ms, p99 {percentile(during, .99):.1f} ms, max "
              f"{max(during, default=float('nan')):.0f} ms (n={len(during)}); failures "
              f"{dict(failures) or 0}  [target p99 < 200 ms: "
              f"{'met' if percentile(during, .99) < 200 else 'MISSED'}]")
        growth = (hwm_after - hwm_before) / 1024
        print(f"(b) API process VmHWM {hwm_before / 1024:.0f} -> {hwm_after / 1024:.0f} MiB "
              f"(+{growth:.0f} MiB; VmRSS before {rss_before / 1024:.0f} MiB, peak sampled "
              f"{max(watched.rss_kb, default=0) / 1024:.0f} MiB)  [target < +200 MB: "
              f"{'met' if growth * MIB < 200e6 else 'MISSED'}]; child processes: peak "
              f"{watched.children_peak} at once, peak RSS sum "
              f"{watched.children_rss_peak_kb / 1024:.0f} MiB")
        print(f"(c) responses: 2xx {sum(n for s, n in total.items() if 200 <= s < 300)}, "
              f"4xx {n4xx} (429 {total[429]}, 413 {total[413]}), 5xx {n5xx}  [target 0], "
              f"no answer {total[0]}")
        for attack in attacks:
            for error in attack.errors[:3]:
                print(f"    {attack.name}: {error}")
        print(f"after: a python grader {alive.status_code} reward "
              f"{alive.json().get('reward') if alive.status_code == 200 else alive.text[:100]}"
              f", victim listing {listing.status_code}; registry verify "
              f"{'clean' if report.ok and not report.orphans else report}; processes under "
              f"the API {len(children_left)} {children_left[:4]} (requests in flight: "
              f"{unfinished}); grader temp dirs left once it stopped {len(left_dirs)}")
        if n5xx or not report.ok or alive.status_code != 200 or listing.status_code != 200:
            status_code = 1
    finally:
        stop_process(proc, grace=20)
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return status_code


if __name__ == "__main__":
    raise SystemExit(main())
