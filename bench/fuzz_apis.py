"""Fuzz the HTTP APIs from their own OpenAPI schemas with schemathesis (loopback only).

    python bench/fuzz_apis.py [--max-examples 20] [--max-time 120]
                              [--serve-url http://127.0.0.1:8000 --serve-key qk-...]

The tune API runs in-process (its own temporary registry); serve is fuzzed only when a
running server's URL and key are given (``bench/load_serve.py --fuzz`` starts one and
passes them). Prints requests sent, responses by status class, 5xx seen and the
schemathesis failures by check (``tests.support.fuzz``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:  # `python bench/x.py` puts bench/ there; tests.support needs the root
    sys.path.insert(0, REPO)

from tests.support.fuzz import TUNE_CHECKS, UPSTREAM_5XX_OPS, fuzz_serve, fuzz_tune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--max-time", type=float, default=120)
    parser.add_argument("--serve-url")
    parser.add_argument("--serve-key")
    parser.add_argument("--all-checks", action="store_true",
                        help="tune: run every schemathesis check (shows the conformance gaps)")
    args = parser.parse_args(argv)
    results = [fuzz_tune(args.max_examples, args.max_time,
                         "all" if args.all_checks else TUNE_CHECKS)]
    if args.serve_url:
        results.append(fuzz_serve(args.serve_url, args.serve_key, args.max_examples,
                                  args.max_time))
    for result in results:
        print(result.line())
    quanta_5xx = sum(n for r in results for op, n in r.server_error_ops.items()
                     if op not in UPSTREAM_5XX_OPS)
    print(f"5xx outside the known upstream vLLM operations: {quanta_5xx}")
    return 1 if quanta_5xx else 0


if __name__ == "__main__":
    sys.exit(main())
