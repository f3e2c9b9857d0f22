"""PromptLibrary over the TOML files of `src/prompts` (or another folder)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from src.ports.models import PromptTemplate
from src.ports.shared import NotFound

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
_VERSION = re.compile(r"^v(\d+)\.toml$")


class FilePromptLibrary:
    def __init__(self, folder: Path = PROMPTS) -> None:
        self._templates: dict[str, dict[int, PromptTemplate]] = {}
        for path in sorted(folder.glob("*/v*.toml")):
            match = _VERSION.match(path.name)
            if match:
                raw = tomllib.loads(path.read_text())
                name, version = path.parent.name, int(match.group(1))
                self._templates.setdefault(name, {})[version] = PromptTemplate(name, version, raw["system"],
                                                                               raw["user"])

    def get(self, name: str, version: int | None = None) -> PromptTemplate:
        versions = self._templates.get(name, {})
        if not versions:
            raise NotFound(f"no prompt template {name!r}")
        chosen = max(versions) if version is None else version
        if chosen not in versions:
            raise NotFound(f"no version {version} of prompt template {name!r}")
        return versions[chosen]
