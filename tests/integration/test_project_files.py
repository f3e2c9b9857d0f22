"""Project files a newcomer relies on: README commands and settings, docker-compose, layer contracts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.cli.app import app as cli_app
from src.config import REPO_ROOT, Settings, describe_settings

README = (REPO_ROOT / "README.md").read_text()
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_readme_opens_with_exactly_the_run_and_test_commands():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["./keel up", "./keel test"]
    assert README.index("```bash") < README.index("## ")  # before any other section
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "./keel test" in ci


def test_readme_lists_every_setting_with_its_default():
    for variable, default, _ in describe_settings():
        row = re.search(rf"^\| `{variable}` \| ([^|]+) \|", README, re.MULTILINE)
        assert row, f"{variable} missing from the README's configuration table"
        assert row.group(1).strip() == (f"`{default}`" if default else "(unset)")


def test_every_compose_service_builds_from_the_repo_and_runs_a_real_command():
    commands = {command.name or command.callback.__name__ for command in cli_app.registered_commands}
    for name, service in COMPOSE["services"].items():
        build = service.get("build")
        if build:
            context = REPO_ROOT / (build if isinstance(build, str) else build["context"])
            assert (context / "Dockerfile").exists(), f"{name}: no Dockerfile in {context}"
        if name in ("api", "worker", "migrate"):
            assert service["command"][0] == "keel" and service["command"][1] in commands, name


def test_every_setting_keel_reads_is_passed_to_its_containers():
    wanted = {f"KEEL_{field.upper()}" for field in Settings.model_fields}
    for name in ("api", "worker", "migrate"):
        assert set(COMPOSE["services"][name]["environment"]) == wanted, name


def test_docker_compose_validates_the_file():
    if shutil.which("docker-compose") is None:
        pytest.skip("Debian's docker-compose is not installed (`keel test` installs it as root)")
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("module", "line"),
    [("src/core/billing/leak.py", "import sqlalchemy\n"), ("src/core/billing/leak.py", "import src.adapters.queue\n"),
     ("src/core/knowledge/leak.py", "import src.core.billing\n"), ("src/ports/leak.py", "import strawberry\n"),
     ("src/adapters/queue/leak.py", "import src.graphql\n")],
)
def test_layer_contracts_fail_on_a_forbidden_import(tmp_path, module, line):
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    clean = subprocess.run(lint, cwd=copy, capture_output=True, text=True, env={"PYTHONPATH": str(copy)})
    assert clean.returncode == 0, clean.stdout
    (copy / module).write_text(line)
    broken = subprocess.run(lint, cwd=copy, capture_output=True, text=True, env={"PYTHONPATH": str(copy)})
    assert broken.returncode != 0 and "BROKEN" in broken.stdout
