"""The ops repo opsrun works on: inventories/, group_data/, deploys/, verify/ beside each other.

Found from --project, then OPSRUN_PROJECT, then the current folder and its parents.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from opsrun.errors import ConfigError

MARKERS = ("inventories", "deploys")
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _choices(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


@dataclass(frozen=True)
class Project:
    root: Path
    state: Path | None = None  # .opsrun/ of another project (a rollback's checkout keeps its state at home)

    @classmethod
    def find(cls, explicit: str | os.PathLike[str] | None = None) -> Project:
        if explicit is not None:
            root = Path(explicit).resolve()
            if not all((root / m).is_dir() for m in MARKERS):
                raise ConfigError(
                    root,
                    "not an opsrun project (no inventories/ and deploys/ folders).",
                    fix="pass --project DIR of a folder that has them",
                )
            return cls(root)
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            if all((folder / m).is_dir() for m in MARKERS):
                return cls(folder)
        raise ConfigError(
            here,
            "no opsrun project here or above (no inventories/ and deploys/ folders).",
            fix="cd into the ops repo, or pass --project DIR or set OPSRUN_PROJECT",
        )

    @property
    def group_data_dir(self) -> Path:
        return self.root / "group_data"

    @property
    def state_dir(self) -> Path:
        return self.state or self.root / ".opsrun"

    def _names(self, folder: str, *, dirs: bool = False) -> list[str]:
        base = self.root / folder
        if not base.is_dir():
            return []
        if dirs:
            return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        return sorted(p.stem for p in base.glob("*.py") if not p.name.startswith("_"))

    def inventories(self) -> list[str]:
        return self._names("inventories")

    def deploys(self) -> list[str]:
        return self._names("deploys")

    def suites(self) -> list[str]:
        return self._names("verify", dirs=True)

    def _plain(self, name: str, kind: str, folder: str, what: str, names: list[str]) -> None:
        """A name on the command line is one word (never a path out of its folder: `../evil`)."""
        if not PLAIN_NAME.fullmatch(name):
            raise ConfigError(
                self.root / folder,
                f"{name!r} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} name.",
                fix=f"name {what}: {_choices(names)}",
            )

    def inventory_path(self, name: str) -> Path:
        return self._module(name, "inventory", "inventories", self.inventories())

    def deploy_path(self, name: str) -> Path:
        return self._module(name, "deploy", "deploys", self.deploys())

    def _module(self, name: str, kind: str, folder: str, names: list[str]) -> Path:
        """FOLDER/NAME.py, refused with the names there are when it is not a plain name or not there."""
        self._plain(name, kind, folder, f"a file of {folder}/ without .py", names)
        path = self.root / folder / f"{name}.py"
        if not path.is_file():
            raise ConfigError(path, f"no {kind} named {name!r}.", fix=f"use one of: {_choices(names)}")
        return path

    def suite_path(self, name: str) -> Path:
        self._plain(name, "verify suite", "verify", "a folder of verify/", self.suites())
        path = self.root / "verify" / name
        if not path.is_dir() or not any(path.glob("test_*.py")):
            raise ConfigError(
                path,
                f"no verify suite named {name!r} (a folder of test_*.py files).",
                fix=f"use one of: {_choices(self.suites())}",
            )
        return path
