"""The console's Evals and Batches pages in a real browser (Debian's chromium, Playwright).

The tune API and the console run in threads over one registry. The eval and its two runs
are created through the API with the openai SDK, as a tenant would; their items are
graded here, written through the registry's row API as ``quanta tune runner`` writes
them (no serve, no model: the page shows what the registry holds), and so is a finished
batch with its output and error files. The browser then compares the runs, pages through
a run's items, starts a run on a third model and cancels it, downloads the batch's files,
and another tenant sees none of it. Screenshots at 1280x800 and 390x844 go next to the
main console test's (``test-artifacts/console``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from quanta.config import Settings
from quanta.registry import Registry
from quanta.types import BatchStatus, EvalRunStatus, FilePurpose
from tests.support.fixtures import fake_base_models, tenant_keys
from tests.support.servers import serve_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300),
              # The SDK warns of OpenAI's own Evals service's shutdown, not of this API.
              pytest.mark.filterwarnings("ignore:The Evals API is deprecated")]
playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("QUANTA_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts")) / "console"
VIEWPORTS = ((1280, 800), (390, 844))
MARKUP = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 1">'
MODELS = ("base-a", "base-b", "base-c")
ITEMS = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(11)] + [
    {"question": MARKUP, "answer": MARKUP}]
# How many items each model gets right, exactly ("exact") and within its answer ("mentions").
RIGHT = {"base-a": {"exact": 4, "mentions": 6}, "base-b": {"exact": 9, "mentions": 12}}
ITEM_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"},
                                                "answer": {"type": "string"}},
               "required": ["question", "answer"]}
CRITERIA = [{"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
             "reference": "{{item.answer}}", "operation": "eq"},
            {"type": "string_check", "name": "mentions", "input": "{{sample.output_text}}",
             "reference": "{{item.answer}}", "operation": "like"}]


@dataclass
class Console:
    url: str
    registry: Registry
    keys: dict[str, str]
    eval_id: str
    runs: dict[str, dict[str, Any]]  # model -> the run as the API answered it
    batch_id: str
    output: bytes
    errors: bytes


def _data_source(model: str) -> dict[str, Any]:
    return {"type": "completions", "model": model,
            "source": {"type": "file_content", "content": [{"item": i} for i in ITEMS]},
            "input_messages": {"type": "template", "template": [
                {"role": "developer", "content": "Answer with the number only."},
                {"role": "user", "content": "{{item.question}}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 16, "seed": 7}}


def _grade(registry: Registry, eval_id: str, model: str) -> None:
    """Grade the oldest queued run (``model``'s) as the eval runner does: the first
    ``RIGHT[model]`` items pass each criterion, the others answer with markup."""
    ids = {c["name"]: c["id"] for c in registry.evals.owned("acme", eval_id).testing_criteria}
    run = registry.evals.claim_next("console-test")
    assert run is not None and run.model == model
    for index, item in enumerate(ITEMS):
        passed = {name: index < RIGHT[model][name] for name in ("exact", "mentions")}
        answer = item["answer"] if passed["exact"] else (
            f"I think {item['answer']}" if passed["mentions"] else f"{MARKUP} no idea")
        registry.evals.put_item(
            run.id, "console-test", datasource_item_id=index, datasource_item=item,
            sample={"input": [{"role": "user", "content": item["question"]}],
                    "output": [{"role": "assistant", "content": answer}],
                    "finish_reason": "stop", "model": model,
                    "usage": {"prompt_tokens": 20, "completion_tokens": 5,
                              "total_tokens": 25, "cached_tokens": 0},
                    "error": {"code": "", "message": ""}, "temperature": 0.0,
                    "max_completion_tokens": 16, "top_p": 1.0, "seed": 7},
            results=[{"name": ids[name], "type": "string_check", "score": float(ok),
                      "passed": ok, "sample": None, "metadata": {"name": name}}
                     for name, ok in passed.items()],
            status="pass" if all(passed.values()) else "fail",
            criteria={ids[name]: ok for name, ok in passed.items()},
            usage=[{"model_name": model, "invocation_count": 1, "prompt_tokens": 20,
                    "completion_tokens": 5, "total_tokens": 25, "cached_tokens": 0}])
    assert registry.evals.finish(run.id, "console-test", EvalRunStatus.COMPLETED)


def _batch(registry: Registry, tmp: Path) -> tuple[str, bytes, bytes]:
    """A finished batch of three requests: two answered, one refused."""
    requests = tmp / "requests.jsonl"
    requests.write_text("".join(json.dumps(
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "base-a", "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
        for i in range(3)))
    source = registry.add_file("acme", "requests.jsonl", FilePurpose.BATCH, requests)
    batch = registry.batches.create(tenant_id="acme", endpoint="/v1/chat/completions",
                                    input_file_id=source.id, completion_window="24h",
                                    window=timedelta(hours=24), total=3)
    assert registry.batches.claim_next("console-test").id == batch.id
    lines = {True: b"", False: b""}
    for line in range(1, 4):
        ok = line != 2
        record = {"id": f"batch_req_{line}", "custom_id": f"r{line - 1}",
                  "response": {"status_code": 200, "body": {"answer": MARKUP}} if ok else None,
                  "error": None if ok else {"code": "model_not_found", "message": "no"}}
        registry.batches.put_result(batch.id, "console-test", line, f"r{line - 1}", ok, record)
        lines[ok] += (json.dumps(record) + "\n").encode()
    files = {}
    for ok, kind in ((True, "output"), (False, "error")):
        path = tmp / f"{kind}.jsonl"
        path.write_bytes(lines[ok])
        files[kind] = registry.add_file("acme", f"{batch.id}_{kind}.jsonl",
                                        FilePurpose.BATCH_OUTPUT, path).id
    assert registry.batches.finish(batch.id, "console-test", BatchStatus.COMPLETED,
                                   output_file_id=files["output"],
                                   error_file_id=files["error"])
    return batch.id, lines[True], lines[False]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's package)")
    from console.app import create_app as console_app
    from tune.api.app import create_app as tune_app

    home = tmp_path_factory.mktemp("console-evals-home")
    settings = Settings(home=home, allow_anonymous=False)
    registry = Registry.open(settings)
    fake_base_models(registry, home / "stand-in", *MODELS)
    keys = tenant_keys(registry, "acme", "globex")
    with serve_api(tune_app(settings, registry)) as tune_url, \
            serve_api(console_app(tune_url)) as url:
        client = openai.OpenAI(base_url=f"{tune_url}/v1", api_key=keys["acme"], max_retries=0)
        evaluation = client.evals.create(
            name=f"arithmetic {MARKUP}", testing_criteria=CRITERIA,  # type: ignore[arg-type]
            data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA,
                                "include_sample_schema": True})
        runs = {}
        for model in ("base-a", "base-b"):
            runs[model] = client.evals.runs.create(
                evaluation.id, name=f"{model} run",
                data_source=_data_source(model)).model_dump()  # type: ignore[arg-type]
            _grade(registry, evaluation.id, model)
        batch_id, output, errors = _batch(registry, tmp_path_factory.mktemp("batch"))
        yield Console(url, registry, keys, evaluation.id, runs, batch_id, output, errors)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        # Root in a container has no user namespaces for chromium's own sandbox.
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Any, console: Console, tenant: str, hash_: str = "") -> Any:
    """A signed-in page of ``tenant``, opened at ``hash_`` (the sign-in form first)."""
    page = browser.new_context(viewport={"width": 1280, "height": 800},
                               accept_downloads=True).new_page()
    page.goto(f"{console.url}/console/{hash_}")
    page.fill("#api-key", console.keys[tenant])
    page.click("form button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")
    return page


def _shot(page: Any, name: str) -> None:
    """The page at a laptop's and a phone's size."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def _go(page: Any, hash_: str, ready: str) -> None:
    page.evaluate("hash => { window.location.hash = hash; }", hash_)
    page.wait_for_selector(ready)


def _cells(page: Any, criterion: str) -> list[str]:
    return [c.inner_text() for c in
            page.query_selector_all(f"#eval-runs tr[data-criterion='{criterion}'] td")]


def _range(page: Any, text: str) -> None:
    page.wait_for_function("text => document.querySelector('#items-range')?.textContent"
                           " === text", arg=text)


def _item_indexes(page: Any) -> list[int]:
    return [int(h.inner_text().split()[-1])
            for h in page.query_selector_all("#output-items .output-item .item-head strong")]


def test_runs_side_by_side_items_a_new_run_and_batches(console: Console, browser: Any,
                                                       tmp_path: Path) -> None:
    page = _page(browser, console, "acme", "")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    a = console.runs["base-a"]

    _go(page, "#/evals", "#evals")
    assert page.inner_text("#evals tbody a") == f"arithmetic {MARKUP}"
    _shot(page, "evals")

    # The runs side by side: one column per model, each criterion's pass rate.
    page.click("#evals tbody a")
    page.wait_for_selector("#eval-runs td")
    heads = page.inner_text("#eval-runs thead")
    assert heads.index("base-a") < heads.index("base-b")
    assert _cells(page, "exact") == ["33.3% (4/12)", "75.0% (9/12)"]
    assert _cells(page, "mentions") == ["50.0% (6/12)", "100.0% (12/12)"]
    assert page.inner_text("#eval-runs tr[data-criterion=exact] td.best") == "75.0% (9/12)"
    overall = [c.inner_text() for c in page.query_selector_all("#eval-runs tr.overall td")]
    assert overall == ["33.3% (4/12)", "75.0% (9/12)"]
    tokens = page.inner_text("#eval-runs").split("Tokens")[1].split("\n")[0]
    assert tokens.count("300 (240 in, 60 out, 12 calls)") == 2
    times = [c.inner_text() for c in page.query_selector_all("#eval-runs tr.time td")]
    assert all(t.endswith(" s") for t in times), times
    assert page.inner_text("#eval-runs").count("completed") == 2
    _shot(page, "eval-runs")

    # A run's items, ten a page, forward and back, then only the failures.
    page.click(f"#eval-runs thead a[href$='{a['id']}']")
    page.wait_for_selector("#output-items .output-item")
    assert "4 passed, 8 failed, 0 errored of 12" in page.inner_text("#run-counts")
    assert _item_indexes(page) == list(range(10))
    assert page.is_disabled("#items-prev")
    first = page.inner_text("#output-items .output-item")
    assert "exact: 1 passed" in first and "mentions: 1 passed" in first
    page.click("#items-next")
    _range(page, "Items 11 to 12")
    assert _item_indexes(page) == [10, 11] and page.is_disabled("#items-next")
    last = page.query_selector_all("#output-items .output-item")[-1]
    assert json.dumps(MARKUP) in last.query_selector("pre.item").inner_text()  # as JSON
    assert last.query_selector(".content").inner_text() == f"{MARKUP} no idea"
    assert page.evaluate("window.__pwned") is None and not page.query_selector("main img")
    page.click("#items-prev")
    _range(page, "Items 1 to 10")
    assert _item_indexes(page) == list(range(10))
    page.select_option("#items-status", "fail")
    _range(page, "Items 1 to 8")
    assert _item_indexes(page) == list(range(4, 12))
    assert "exact: 0 failed" in page.inner_text("#output-items")
    _shot(page, "eval-run")

    # Run the eval again on a third model with run A's data source; cancel it.
    _go(page, f"#/evals/{console.eval_id}", "#eval-runs td")
    page.select_option("#run-model", "base-c")
    page.select_option("#run-source", a["id"])
    page.click("#run-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#run-form-status').textContent"
                           ".includes('queued on base-c')")
    runs, _ = console.registry.evals.list_runs("acme", console.eval_id)
    assert [r.model for r in runs] == ["base-a", "base-b", "base-c"]
    new = runs[-1]
    assert new.status == "queued"
    assert new.data_source == {**runs[0].data_source, "model": "base-c"}
    page.wait_for_selector(f"#eval-runs td[data-run='{new.id}']")
    assert "queued" in page.inner_text(f"#eval-runs tr:last-child td[data-run='{new.id}']")
    page.click(f"button[data-cancel='{new.id}']")
    page.wait_for_function(
        f"() => document.querySelector(\"#eval-runs tr:last-child td[data-run='{new.id}']\")"
        "?.innerText.includes('canceled')")
    assert console.registry.evals.get_run(new.id).status == "canceled"

    # The batch: its counts, and its output and error files through the proxy.
    _go(page, "#/batches", "#batches")
    row = page.locator(f"#batches tr[data-batch='{console.batch_id}']")
    text = row.inner_text()
    assert "completed" in text and "/v1/chat/completions" in text
    assert "2 completed, 1 failed of 3" in text
    for kind, expected in (("Output", console.output), ("Errors", console.errors)):
        with page.expect_download() as downloaded:
            row.get_by_text(kind, exact=True).click()
        assert Path(downloaded.value.path()).read_bytes() == expected
    _shot(page, "batches")
    assert not errors, errors


def test_a_report_url_opens_the_run_and_another_tenant_sees_nothing(console: Console,
                                                                   browser: Any) -> None:
    # A run's report_url is the console's page of the run: signed in, it opens there.
    run = console.runs["base-b"]
    fragment = f"#/evals/{console.eval_id}/runs/{run['id']}"
    assert run["report_url"].endswith(f"/console/{fragment}")
    page = _page(browser, console, "acme", fragment)
    page.wait_for_selector("#run-facts")
    assert "9 passed, 3 failed, 0 errored of 12" in page.inner_text("#run-counts")

    other = _page(browser, console, "globex", "#/evals")
    other.wait_for_selector("#evals")
    assert "arithmetic" not in other.inner_text("#evals")
    _go(other, "#/batches", "#batches")
    assert console.batch_id not in other.inner_text("#batches")
    _go(other, fragment, "#error:not([hidden])")
    assert "No such eval" in other.inner_text("#error")
    # Not through the proxy either: their items and the batch's files are 404s.
    auth = {"Authorization": f"Bearer {console.keys['globex']}"}
    api = f"{console.url}/api/tune/v1"
    items = httpx.get(f"{api}/evals/{console.eval_id}/runs/{run['id']}/output_items",
                      headers=auth)
    assert items.status_code == 404
    batch = console.registry.batches.get(console.batch_id)
    assert batch is not None and batch.output_file_id is not None
    content = httpx.get(f"{api}/files/{batch.output_file_id}/content", headers=auth)
    assert content.status_code == 404
    assert httpx.post(f"{api}/evals/{console.eval_id}/runs", headers=auth,
                      json={"data_source": _data_source("base-a")}).status_code == 404
