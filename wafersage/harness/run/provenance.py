"""What produced a result: installed package versions and the git commit of the wafersage checkout."""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Iterable


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """name -> installed version, for the packages of ``names`` that are installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The commit of the wafersage checkout, when it is one."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None
