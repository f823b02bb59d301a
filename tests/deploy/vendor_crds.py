"""Vendor upstream CRD schemas into tests/deploy/crds/ from git checkouts of the upstream
repositories (never typed by hand):

    python tests/deploy/vendor_crds.py gie=PATH llm-d-router=PATH gateway-api=PATH

Each PATH is a clone (or bare mirror) of the repository that has the release tag below. One
JSON file per release: ``spec.versions[*].schema.openAPIV3Schema`` of each CRD, keyed
"<group>/<version> <Kind>", with every ``description`` removed and nothing else changed; the
file names the release, and ``source`` names the tag, commit and paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent / "crds"

# name -> (repository, tag, output file, [(path, served version)])
RELEASES: dict[str, tuple[str, str, str, list[tuple[str, str]]]] = {
    "gie": (
        "github.com/kubernetes-sigs/gateway-api-inference-extension", "v1.6.0",
        "gateway-api-inference-extension-v1.6.0.json",
        [("config/crd/bases/inference.networking.k8s.io_inferencepools.yaml", "v1")],
    ),
    "llm-d-router": (
        "github.com/llm-d/llm-d-router", "v0.10.0", "llm-d-router-v0.10.0.json",
        [("config/crd/bases/llm-d.ai_inferenceobjectives.yaml", "v1alpha2"),
         ("config/crd/bases/llm-d.ai_inferencemodelrewrites.yaml", "v1alpha2")],
    ),
    "gateway-api": (
        "github.com/kubernetes-sigs/gateway-api", "v1.6.1", "gateway-api-v1.6.1.json",
        [("config/crd/standard/gateway.networking.k8s.io_httproutes.yaml", "v1")],
    ),
}


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def vendor(name: str, repo: Path) -> Path:
    upstream, tag, filename, crds = RELEASES[name]
    commit = _git(repo, "rev-parse", f"{tag}^{{commit}}").strip()
    schemas = {}
    for path, version in crds:
        crd = yaml.safe_load(_git(repo, "show", f"{commit}:{path}"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        served = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
        if not served:
            raise SystemExit(f"{path} at {tag}: {version} is not served")
        schemas[f"{group}/{version} {kind}"] = _strip_descriptions(
            served[0]["schema"]["openAPIV3Schema"])
    out = OUT / filename
    out.write_text(json.dumps({
        "note": "spec.versions[<version>].schema.openAPIV3Schema of each CRD, with every "
                "'description' removed; nothing else changed",
        "schemas": schemas,
        "source": f"{upstream} {tag} (commit {commit}), " + ", ".join(p for p, _ in crds),
    }, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    return out


def main(argv: list[str]) -> int:
    for arg in argv:
        name, _, path = arg.partition("=")
        if name not in RELEASES or not path:
            raise SystemExit(f"usage: vendor_crds.py {' '.join(f'{n}=PATH' for n in RELEASES)}")
        print(vendor(name, Path(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
