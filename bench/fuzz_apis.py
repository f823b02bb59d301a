"""Fuzz the HTTP APIs from their own OpenAPI schemas with schemathesis (loopback only).

    python bench/fuzz_apis.py [--max-examples 20] [--max-time 120]
                              [--serve-url http://127.0.0.1:8000 --serve-key qk-...]
    python bench/fuzz_apis.py --graders [--grader-examples 1000]

The tune API runs in-process (its own temporary registry); serve is fuzzed only when a
running server's URL and key are given (``bench/load_serve.py --fuzz`` starts one and
passes them). Prints requests sent, responses by status class, 5xx seen and the
schemathesis failures by check (``tests.support.fuzz``).

``--graders`` instead runs the hypothesis properties of ``tests/hardening/test_grader_fuzz.py``
(``tests.support.grader_fuzz``: grader configs, raw bodies, job bodies, hostile python
graders) N examples each against the tune API in-process, then ``registry.verify()``;
prints requests sent, responses by class, the 5xx and other violations, and the verify
result. Exit status 1 on any 5xx, violation or verify problem.
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
    parser.add_argument("--graders", action="store_true",
                        help="fuzz the grader routes and job bodies with hypothesis instead")
    parser.add_argument("--grader-examples", type=int, default=1000,
                        help="--graders: examples per property (hostile python: a tenth)")
    parser.add_argument("--grader-seed", type=int, help="--graders: repeat a run (random "
                        "by default; each run prints its seed)")
    parser.add_argument("--grader-properties", nargs="+", metavar="WORD",
                        help="--graders: only the properties whose name has one of these "
                        "words (configs, raw, job, hostile)")
    args = parser.parse_args(argv)
    if args.graders:
        return fuzz_graders_main(args.grader_examples, args.grader_seed,
                                 args.grader_properties)
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


def fuzz_graders_main(examples: int, seed: int | None, only: list[str] | None) -> int:
    import random

    from tests.support.grader_fuzz import fuzz_graders

    seed = random.randrange(2**32) if seed is None else seed
    print(f"grader fuzz: {examples} examples per property, --grader-seed {seed}")
    result, problems = fuzz_graders(examples, seed=seed, only=only)
    print(result.line())
    for line in result.output.splitlines():
        print(f"  violation: {line[:1500]}")
    print(f"violations: {sum(result.failures.values())}"
          + "".join(f"\n  {kind}: {n}" for kind, n in sorted(result.failures.items())))
    print(f"verify after fuzzing: {'clean' if not problems else '; '.join(problems)}")
    return 1 if result.server_errors or result.failures or problems else 0


if __name__ == "__main__":
    sys.exit(main())
