"""Cross-check tests/deploy/kustomize_render.py against `kubectl kustomize`.

kubectl embeds the real kustomize; where it is installed, both renderers must
produce the same objects, field for field (list order included).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_checks import KUSTOMIZATIONS
from kustomize_render import render


def kubectl_render(path: Path) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def differences() -> list[str]:
    if shutil.which("kubectl") is None:
        raise FileNotFoundError("kubectl is not installed")
    findings = []
    for name, path in KUSTOMIZATIONS.items():
        ours = {_key(o): o for o in render(path)}
        theirs = {_key(o): o for o in kubectl_render(path)}
        for key in sorted(set(ours) ^ set(theirs)):
            side = "only in the Python renderer" if key in ours else "only in kubectl kustomize"
            findings.append(f"{name}: {'/'.join(key)} {side}")
        for key in sorted(set(ours) & set(theirs)):
            if json.dumps(ours[key], sort_keys=True) != json.dumps(theirs[key], sort_keys=True):
                findings.append(f"{name}: {'/'.join(key)} differs between the renderers")
    return findings


def main() -> int:
    findings = differences()
    for finding in findings:
        print(f"  {finding}")
    print("kubectl kustomize: " + ("differs" if findings else "identical objects"))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
