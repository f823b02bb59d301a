"""The web console in a real browser: Debian's chromium driven by Playwright.

One registry, the tune API and the console in threads, a real worker training a few
steps, a real export, and the llama.cpp engine for the playground. The scenario runs in
order (each step builds on the last) as one tenant, then checks what another tenant
sees. Screenshots of each page at 1280x800 and 390x844 go to ``test-artifacts/console``
(or ``$QUANTA_TEST_ARTIFACTS/console``), CI's artifact folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quanta.config import Settings
from quanta.data import write_jsonl
from quanta.models import DEFAULT_MODEL_ID, bundled_gguf_path
from quanta.processes import free_port
from quanta.registry import Registry
from tests.support.fixtures import arithmetic_chat, make_adapter, seeded_registry, tenant_keys
from tests.support.servers import serve_api, start_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("QUANTA_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts")) / "console"
VIEWPORTS = ((1280, 800), (390, 844))
MARKUP = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 1">'
QUANTA_OPTIONS = {"max_steps": 6, "checkpoint_every": 3, "max_length": 128,
                  "lora": {"r": 8, "alpha": 16},
                  "eval": {"physics_n": 1, "max_new_tokens": 16, "loss_examples": 4}}


@dataclass
class Console:
    url: str
    tune_url: str
    registry: Registry
    home: Path
    keys: dict[str, str]
    serve_port: int


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Iterator[Console]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's package)")
    from console.app import create_app as console_app
    from tune.api.app import create_app as tune_app

    home = tmp_path_factory.mktemp("console-home")
    registry = seeded_registry(home, base_model_dir)
    registry.add_export(base_model_id=DEFAULT_MODEL_ID, format="gguf-q4_1",
                        path=bundled_gguf_path())
    keys = tenant_keys(registry, "acme", "globex")
    settings = Settings(home=home, allow_anonymous=False)
    serve_port = free_port()
    with serve_api(tune_app(settings, registry)) as tune_url, \
            serve_api(console_app(tune_url, f"http://127.0.0.1:{serve_port}")) as url:
        yield Console(url, tune_url, registry, home, keys, serve_port)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        # Root in a container has no user namespaces for chromium's own sandbox.
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Any, console: Console, tenant: str, shot: bool = False) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 800},
                               accept_downloads=True).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{console.url}/console/")
    page.wait_for_selector("#api-key")
    if shot:
        _shot(page, "signin")
    page.fill("#api-key", console.keys[tenant])
    page.click("form button[type=submit]")
    page.wait_for_selector("#dropzone")
    return page


def _shot(page: Any, name: str) -> None:
    """The page at a laptop's and a phone's size."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # plotly's responsive relayout
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def _go(page: Any, hash_: str, ready: str) -> None:
    page.evaluate("hash => { window.location.hash = hash; }", hash_)
    page.wait_for_selector(ready)


def test_a_physicist_does_the_whole_job_in_the_browser(console: Console, browser: Any,
                                                       tmp_path: Path) -> None:
    from quantize.worker import ExportWorker
    from tune.train.worker import Worker

    page = _page(browser, console, "acme")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Datasets: a good file, a broken one (line and field shown), a record with markup.
    good = write_jsonl(arithmetic_chat(8) * 2, tmp_path / "arith.jsonl")
    page.set_input_files("#file-input", str(good))
    page.wait_for_selector("#upload-result .ok-text")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(arithmetic_chat(1)[0]) + "\n" + json.dumps(
        {"messages": [{"role": "wizard", "content": "hi"}]}) + "\nnot json\n")
    page.set_input_files("#file-input", str(broken))
    problems = page.wait_for_selector("#upload-problems")
    rows = [r.inner_text() for r in problems.query_selector_all("tbody tr")]
    assert any(r.startswith("2\tmessages[0].role") for r in rows), rows
    assert any(r.startswith("3\t") and "JSON" in r for r in rows), rows
    hostile = write_jsonl([{"messages": [{"role": "user", "content": MARKUP},
                                         {"role": "assistant", "content": MARKUP}]}] * 2,
                          tmp_path / "hostile.jsonl")
    page.set_input_files("#file-input", str(hostile))
    page.wait_for_selector("#upload-result .ok-text")
    page.locator("#files tr", has_text="hostile.jsonl").get_by_text("Preview").click()
    preview = page.wait_for_selector("#preview")
    assert MARKUP in preview.inner_text()
    assert page.evaluate("window.__pwned") is None and not page.query_selector("#preview img")
    _shot(page, "datasets")

    # Jobs: a bad value is a readable 400, the page goes on; then a real job.
    _go(page, "#/jobs", "#job-form")
    _shot(page, "jobs")
    [arith] = [f.id for f in console.registry.list_files("acme") if f.filename == "arith.jsonl"]
    page.select_option("#job-training-file", arith)
    page.fill("#job-lora-r", "0")
    page.click("#job-form button[type=submit]")
    banner = page.wait_for_selector("#error:not([hidden])")
    assert "quanta.lora.r" in banner.inner_text()
    page.fill("#job-lora-r", "")
    page.fill("#job-batch-size", "4")
    page.fill("#job-lr-multiplier", "10")
    page.fill("#job-suffix", "arith")
    page.fill("#job-seed", "7")
    page.fill("#job-quanta", json.dumps(QUANTA_OPTIONS))
    page.click("#job-form button[type=submit]")
    page.wait_for_selector("#job-status")
    job_id = page.url.rsplit("/", 1)[-1]
    assert job_id.startswith("ftjob-")

    # A real worker trains it, slowly enough for the page's 2 s polling to watch.
    worker = threading.Thread(target=Worker(
        console.registry, progress=lambda step, total, loss: time.sleep(0.5)).run_once,
        args=(job_id,), daemon=True)
    worker.start()
    page.wait_for_function(
        "() => document.querySelector('#job-status')?.textContent === 'running' && "
        "Number(document.querySelector('#loss-chart')?.dataset.points) >= 1", timeout=300_000)
    while_running = int(page.get_attribute("#loss-chart", "data-points"))
    page.wait_for_function(
        "() => document.querySelector('#job-status')?.textContent === 'succeeded'",
        timeout=600_000)
    worker.join(timeout=60)
    points = int(page.get_attribute("#loss-chart", "data-points"))
    assert points >= 6 and points > while_running  # the curve grew while it trained
    assert page.query_selector("#loss-chart .main-svg")  # plotly drew it
    _shot(page, "job")

    # The model: lineage, before/after answers side by side, then an export.
    page.click("#job-model a")
    page.wait_for_selector("#evaluation")
    model = page.inner_text("h1")
    assert model.startswith("ft:smollm2-135m-instruct:acme:arith:")
    assert job_id in page.inner_text("#lineage")
    assert page.query_selector_all("#evaluation pre.answer.after")
    assert page.query_selector_all("#evaluation pre.answer.before")
    page.select_option("#export-format", "gguf-lora")
    page.fill("#export-accuracy-n", "1")
    # The API queues the export; a quantize worker (quanta exports worker) builds it.
    stop_exports = threading.Event()
    exporter = threading.Thread(target=ExportWorker(console.registry, heartbeat_interval=1)
                                .run_forever, args=(0.5, stop_exports), daemon=True)
    exporter.start()
    page.click("#export-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#export-status')?.textContent"
                           " === 'Export registered.'", timeout=600_000)
    stop_exports.set()
    exporter.join(timeout=60)
    row = page.locator("#exports tbody tr", has_text="gguf-lora")
    assert model in row.inner_text() and re.search(r"\d+\.\d{4}", row.inner_text())
    _shot(page, "model")
    with page.expect_download() as downloaded:
        row.get_by_text("Download").click()
    [exported] = [e for e in console.registry.list_exports("acme") if e.format == "gguf-lora"]
    assert Path(downloaded.value.path()).stat().st_size == exported.bytes
    # Pin it: every server of the base keeps it loaded.
    page.click("#pin-toggle")
    page.wait_for_function("() => document.querySelector('#pin-toggle').textContent === 'Unpin'")
    assert console.registry.pinned_adapter_names(DEFAULT_MODEL_ID) == {model}
    assert page.inner_text("#pin-state").startswith("yes")
    _go(page, "#/models", "#models")
    assert model in page.inner_text("#models")
    _shot(page, "models")

    # Playground: base and adapter side by side, streamed, through the llama.cpp engine.
    serve = start_serve(console.home, "--engine", "llama-cpp", "--gguf-format", "gguf-q4_1",
                        grpc=False, timeout=180, log_name="console-serve.log",
                        port=console.serve_port)
    try:
        _go(page, "#/playground", "#pg-form")
        page.select_option("#pg-model-0", DEFAULT_MODEL_ID)
        page.select_option("#pg-model-1", model)
        page.fill("#pg-prompt", "What is 12 + 30?")
        page.fill("#pg-max-tokens", "24")
        page.click("#pg-form button[type=submit]")
        page.wait_for_function("() => ['#pg-output-0', '#pg-output-1'].every(s => "
                               "document.querySelector(s).dataset.done === 'true')",
                               timeout=300_000)
        left, right = page.inner_text("#pg-output-0"), page.inner_text("#pg-output-1")
        assert left and right and left != right, page.inner_text("#error")
        assert "tokens/s" in page.inner_text("#pg-stats-1")
        _shot(page, "playground")
    finally:
        serve.stop(grace=10)

    # A model answer with markup (an evaluation sample) is shown as text.
    answers = make_adapter(console.registry.materialize(
        console.registry.get_base_model(DEFAULT_MODEL_ID).sha256), tmp_path / "a", seed=3)
    marked = console.registry.add_adapter(
        "acme", DEFAULT_MODEL_ID, answers, suffix="marked",
        eval={"before": {"samples": [{"question": MARKUP, "answer": MARKUP}]},
              "after": {"samples": [{"question": MARKUP, "answer": MARKUP,
                                     "expected": MARKUP}]}})
    _go(page, f"#/models/{marked.name}", "#evaluation")
    assert page.inner_text("#evaluation pre.answer.after") == MARKUP
    assert page.evaluate("window.__pwned") is None
    assert not page.query_selector("#evaluation img")
    page.get_by_text("Delete this model").click()  # the confirm dialog is accepted
    page.wait_for_function("() => window.location.hash === '#/models'")
    page.wait_for_selector("#models")
    assert marked.name not in page.inner_text("#models")
    assert [a.name for a in console.registry.list_adapters("acme")] == [model]

    console.registry.verify()  # what the operator's cron runs; the page shows its counts
    _go(page, "#/health", "#registry-ok")
    assert "every stored object matched" in page.inner_text("#registry-ok")
    sandbox = page.inner_text("#grader-sandbox")  # the operator's side of python graders
    assert ("sandbox runs" in sandbox) == (shutil.which("bwrap") is not None), sandbox
    _shot(page, "registry")
    assert not errors, errors


def test_another_tenant_sees_nothing_and_errors_are_messages(console: Console,
                                                             browser: Any) -> None:
    acme = console.registry.list_adapters("acme")
    assert acme, "runs after the scenario above"
    page = _page(browser, console, "globex", shot=True)
    assert not page.query_selector_all("#files tbody tr td code")  # no files listed
    _go(page, "#/models", "#models")
    assert "acme" not in page.inner_text("#models")
    _go(page, "#/jobs", "#jobs")
    assert "ftjob-" not in page.inner_text("#jobs")
    # Another tenant's model by URL: a readable 404, not a blank page.
    _go(page, f"#/models/{acme[0].name}", "#error:not([hidden])")
    assert "does not exist" in page.inner_text("#error")
    assert "Something went wrong" in page.inner_text("main")

    # A state-changing request from another site is refused; the same one from the
    # console's own pages (no Origin, or its own) reaches the API.
    auth = {"Authorization": f"Bearer {console.keys['globex']}"}
    forged = httpx.post(f"{console.url}/api/tune/v1/fine_tuning/jobs", json={},
                        headers={**auth, "Origin": "http://evil.example"})
    assert forged.status_code == 403
    own = httpx.post(f"{console.url}/api/tune/v1/fine_tuning/jobs", json={},
                     headers={**auth, "Origin": console.url})
    assert own.status_code == 400 and own.json()["error"]["param"] == "model"
    page_response = httpx.get(f"{console.url}/console/")
    assert "script-src 'self'" in page_response.headers["content-security-policy"]
    # The proxy reaches the APIs' v1 routes only, on the two configured servers only.
    assert httpx.get(f"{console.url}/api/tune/health", headers=auth).status_code == 404
    assert httpx.get(f"{console.url}/api/admin/v1/models", headers=auth).status_code == 404
