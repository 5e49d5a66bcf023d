"""Read compose.yaml the way `docker compose` does, for tests that cannot run Docker:
variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, $$) and YAML merge keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.groups()
        value = env.get(name, "")
        if op == "-" and not value:
            return arg
        if op == "?" and not value:
            raise ValueError(f"{name}: {arg}")
        return value

    return VARIABLE.sub(replace, text)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml with .env.example standing in for .env (plus `env` on top)."""
    values = read_env_file(ROOT / ".env.example") | (env or {})
    data: dict[str, Any] = yaml.safe_load(interpolate((ROOT / "compose.yaml").read_text(), values))
    return data


def dockerfile_stages() -> dict[str, list[str]]:
    """Each `FROM ... AS name` stage's instruction lines (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\w+)", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(2), [line])
        else:
            current.append(line)
    return stages
