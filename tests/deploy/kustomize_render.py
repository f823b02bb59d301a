"""A small kustomize renderer for the features k8s/ uses, and nothing more.

Why: CI has no kustomize binary (PyPI has none, and downloads from elsewhere are
impossible), so the manifests are rendered here. When `kubectl` is available,
tests/deploy/test_manifests.py renders with `kubectl kustomize` as well and
checks that both give the same objects.

Supported kustomization fields (anything else raises UnsupportedFeature, so a
new feature in k8s/ cannot be silently mis-rendered):
  resources   files (multi-document YAML) and directories with a kustomization
  components  directories whose kustomization is `kind: Component`
  namespace   set on every namespaced object
  labels      `pairs` with includeSelectors: false (metadata.labels only)
  images      name -> newName / newTag / digest, on containers and initContainers
  patches     strategic-merge patches, from `path` or inline `patch`, matched to
              objects by kind + name (or by an explicit `target`)

Strategic merge follows Kubernetes' patch strategy for the lists that appear in
the manifests: containers/initContainers/env/volumes/imagePullSecrets merge by
`name`, volumeMounts by `mountPath`, container ports by `containerPort` (the
patch's items first, then the base's others, as kustomize orders them); every
other list is replaced; a `null` value deletes the key.

Usage: python tests/deploy/kustomize_render.py k8s/overlays/cpu  (YAML on stdout)
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "components",
    "images",
    "patches",
}
# Kinds that have no namespace (kustomize leaves them alone).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "GatewayClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
}
# List fields merged by key in a strategic merge patch (Kubernetes patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
}


class UnsupportedFeature(ValueError):
    """The kustomization uses something this renderer does not implement."""


Resource = dict[str, Any]


def _load_yaml_docs(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no kustomization file in {directory}")


def _load_kustomization(directory: Path) -> dict[str, Any]:
    data = yaml.safe_load(_kustomization_file(directory).read_text(encoding="utf-8")) or {}
    unknown = set(data) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedFeature(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    return data


def _id(obj: Resource) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", ""))


# --- strategic merge -------------------------------------------------------


def _merge_list(base: list[Any], patch: list[Any], key: str | None) -> list[Any]:
    if key is None or not all(isinstance(i, dict) and key in i for i in base + patch):
        return copy.deepcopy(patch)
    # Same order as kustomize (kyaml): the patch's items first, in patch order
    # (merged with their base counterparts), then the untouched base items.
    by_key = {item[key]: item for item in base}
    merged = []
    for item in patch:
        if item.get("$patch") == "delete":
            raise UnsupportedFeature("$patch: delete")
        if item[key] in by_key:
            merged.append(strategic_merge(by_key[item[key]], item))
        else:
            merged.append(copy.deepcopy(item))
    patched = {item[key] for item in patch}
    merged.extend(copy.deepcopy(item) for item in base if item[key] not in patched)
    return merged


def _list_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # container ports merge by containerPort, Service ports by port
        if all(isinstance(i, dict) and "containerPort" in i for i in items):
            return "containerPort"
        return "port"
    return MERGE_KEYS.get(field)


def strategic_merge(base: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (the subset described in the module docstring)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(base)
    for field, value in patch.items():
        if field.startswith("$"):
            raise UnsupportedFeature(f"patch directive {field}")
        if value is None:
            merged.pop(field, None)
        elif isinstance(value, dict) and isinstance(merged.get(field), dict):
            merged[field] = strategic_merge(merged[field], value)
        elif isinstance(value, list) and isinstance(merged.get(field), list):
            merged[field] = _merge_list(
                merged[field], value, _list_key(field, merged[field] + value)
            )
        else:
            merged[field] = copy.deepcopy(value)
    return merged


def _apply_patches(objs: list[Resource], patches: list[dict[str, Any]], directory: Path) -> None:
    for entry in patches:
        unknown = set(entry) - {"path", "patch", "target"}
        if unknown:
            raise UnsupportedFeature(f"patch fields {sorted(unknown)}")
        if "path" in entry:
            docs = _load_yaml_docs(directory / entry["path"])
        else:
            docs = [d for d in yaml.safe_load_all(entry["patch"]) if d]
        for doc in docs:
            if isinstance(doc, list) or "op" in doc:
                raise UnsupportedFeature("JSON 6902 patches")
            target = entry.get("target") or {
                "kind": doc.get("kind"),
                "name": (doc.get("metadata") or {}).get("name"),
            }
            unknown_t = set(target) - {"kind", "name", "namespace"}
            if unknown_t:
                raise UnsupportedFeature(f"patch target fields {sorted(unknown_t)}")
            hits = [
                i
                for i, obj in enumerate(objs)
                if all(
                    not want or got == want
                    for want, got in (
                        (target.get("kind"), obj.get("kind")),
                        (target.get("name"), obj["metadata"].get("name")),
                        (target.get("namespace"), obj["metadata"].get("namespace")),
                    )
                )
            ]
            if not hits:
                raise ValueError(f"{directory}: patch target {target} matches no resource")
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
            if "metadata" in body:
                body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "name"}
                if not body["metadata"]:
                    del body["metadata"]
            for i in hits:
                objs[i] = strategic_merge(objs[i], body)


# --- other transformers ------------------------------------------------------


def _set_namespace(objs: list[Resource], namespace: str) -> None:
    for obj in objs:
        if obj.get("kind") not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace


def _add_labels(objs: list[Resource], labels: list[dict[str, Any]]) -> None:
    for entry in labels:
        unknown = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
        if unknown or entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise UnsupportedFeature("labels: only `pairs` with includeSelectors: false")
        for obj in objs:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])


def _split_image(image: str) -> tuple[str, str]:
    """'repo/name:tag' -> ('repo/name', ':tag'); digests keep their '@sha256:...'."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _walk_containers(node: Any):
    if isinstance(node, dict):
        for field, value in node.items():
            if field in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict) and "image" in c)
            else:
                yield from _walk_containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_containers(item)


def _set_images(objs: list[Resource], images: list[dict[str, Any]]) -> None:
    for entry in images:
        unknown = set(entry) - {"name", "newName", "newTag", "digest"}
        if unknown:
            raise UnsupportedFeature(f"images fields {sorted(unknown)}")
        for obj in objs:
            for container in _walk_containers(obj):
                name, suffix = _split_image(container["image"])
                if name != entry["name"]:
                    continue
                name = entry.get("newName", name)
                if "digest" in entry:
                    suffix = "@" + entry["digest"]
                elif "newTag" in entry:
                    suffix = ":" + str(entry["newTag"])
                container["image"] = name + suffix


# --- driver ------------------------------------------------------------------


def _accumulate(directory: Path, entries: list[str]) -> list[Resource]:
    objs: list[Resource] = []
    for entry in entries:
        target = (directory / entry).resolve()
        if target.is_dir():
            objs.extend(render(target))
        elif target.is_file():
            objs.extend(_load_yaml_docs(target))
        else:
            raise FileNotFoundError(f"{directory}: resource {entry} not found")
    return objs


def _check_unique(objs: list[Resource], where: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objs:
        key = _id(obj)
        if key in seen:
            raise ValueError(f"{where}: duplicate resource {key}")
        seen.add(key)


def _transform(objs: list[Resource], kustomization: dict[str, Any], directory: Path) -> None:
    _apply_patches(objs, kustomization.get("patches") or [], directory)
    if kustomization.get("namespace"):
        _set_namespace(objs, kustomization["namespace"])
    _add_labels(objs, kustomization.get("labels") or [])
    _set_images(objs, kustomization.get("images") or [])


def _apply_component(objs: list[Resource], directory: Path) -> list[Resource]:
    component = _load_kustomization(directory)
    if component.get("kind") != "Component":
        raise ValueError(f"{directory} is listed under components but is not a Component")
    objs = objs + _accumulate(directory, component.get("resources") or [])
    for nested in component.get("components") or []:
        objs = _apply_component(objs, (directory / nested).resolve())
    _transform(objs, component, directory)
    return objs


def render(directory: str | Path) -> list[Resource]:
    """Render the kustomization in `directory` to a list of Kubernetes objects."""
    directory = Path(directory).resolve()
    kustomization = _load_kustomization(directory)
    if kustomization.get("kind") == "Component":
        raise ValueError(f"{directory} is a Component: render a kustomization that uses it")
    objs = _accumulate(directory, kustomization.get("resources") or [])
    for component in kustomization.get("components") or []:
        objs = _apply_component(objs, (directory / component).resolve())
    _transform(objs, kustomization, directory)
    _check_unique(objs, directory)
    return objs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    yaml.safe_dump_all(render(argv[1]), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
