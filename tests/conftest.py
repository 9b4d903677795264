"""Fixtures shared by the template's tests.

pytest-copier gives us an isolated git config and a session copy of the template as a
tagged git repository. Its own `copier.copy` always passes `unsafe=True`, which would
hide a template that quietly needs `--trust`, so projects are rendered here through
`render()`, trust-free, exactly as a user's `copier copy` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import jinja2
import pytest
import yaml
from copier import run_copy

import compiled_modules
import levels
import mypy_cache
import releases

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_PATHS = ["copier.yml", "templates", "hooks"]

COPIER_CONFIG = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
LEVELS = sorted(levels.LEVELS)


def first_level_fast(chosen: list[int]) -> list[object]:
    """Parameters for a check that runs the same code path at every level: the first
    level stays in the fast subset, the others are marked slow (the full suite, which CI
    runs, still checks every level)."""
    return [
        pytest.param(level, marks=() if index == 0 else pytest.mark.slow)
        for index, level in enumerate(chosen)
    ]


# Answers a careful user might really give, chosen to break naive quoting: TOML/YAML
# specials, non-ASCII, a dotted and hyphenated distribution name, the oldest Python.
AWKWARD_ANSWERS = {
    "project_name": "Voice.Lab-2_go",
    "description": 'Says "hi": naïve café \\ backslash, # not a comment, {{ not jinja }}',
    "author_name": "José Ñúñez O'Brien",
    "author_email": "jose.o'brien+ai@example.org",
    "license": "Apache-2.0",
    "python_min": "3.10",
}


def pytest_configure(config: pytest.Config) -> None:
    # Copier warns about the dirty/untagged template copies that tests make on purpose.
    warnings.filterwarnings("ignore", module="copier")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pytest_copier")


@pytest.fixture(scope="session")
def copier_template_paths() -> list[str]:
    return TEMPLATE_PATHS


@pytest.fixture(scope="session", autouse=True)
def isolated_copier_settings(
    tmp_path_factory: pytest.TempPathFactory, sessionpatch: pytest.MonkeyPatch
) -> None:
    """Keep the developer's Copier settings (defaults, trusted sources) out of the tests."""
    settings = tmp_path_factory.mktemp("copier-settings") / "settings.yml"
    settings.write_text("{}\n", encoding="utf-8")
    sessionpatch.setenv("COPIER_SETTINGS_PATH", str(settings))


@pytest.fixture(scope="session")
def template_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a plain folder, not a git repository: Copier renders it in place
    instead of cloning it first (0.07 s instead of 0.9 s to reach a validator). For the
    tests of answers and rendered files; what depends on versions (updates, the answers
    file's `_commit`) uses `copier_template`, as a user's copy does."""
    return copy_template(tmp_path_factory.mktemp("template-folder"))


def copy_template(dst: Path) -> Path:
    """Copy what Copier reads of this repository (TEMPLATE_PATHS) into `dst`, replacing
    what is there, so a test can change or version the template without touching ours."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATE_PATHS:
        source, target = REPO / name, dst / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return dst


def render(template: Path, dst: Path, level: int, **answers: object) -> Path:
    """Render `level` into `dst` the way a user's plain `copier copy --defaults` would."""
    run_copy(
        str(template),
        dst,
        data={"level": level, **answers},
        defaults=True,
        unsafe=False,
        quiet=True,
    )
    return dst


@pytest.fixture(scope="session")
def default_project(
    template_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[int], Path]:
    """`default_project(level)`: the level rendered with every default answer, once for
    the whole run (all xdist workers), for the tests that only read it and never update
    it (rendered from `template_folder`: its answers file names no commit)."""
    folder = run_base(tmp_path_factory) / "default-projects"

    def project(level: int) -> Path:
        rendered = folder / f"level{level}"
        if not rendered.is_dir():
            staging = folder / f".level{level}-{os.getpid()}"
            render(template_folder, staging / "proj", level)
            # A rename is atomic; where another worker was first, its copy is as good.
            with suppress(OSError):
                staging.rename(rendered)
        return rendered / "proj"

    return project


def run(
    args: list[str] | str,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command, showing its output in the failure message when it fails."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        shell=isinstance(args, str),
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{args} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result


def tool(name: str) -> str:
    """A command-line tool of the test environment: on PATH, or beside this Python."""
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def reserved_names() -> dict[str, object]:
    """The lists the package_name validator reads, evaluated by Jinja as Copier does."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO))
    module = env.get_template("templates/_jinja/reserved_names.jinja").module
    return {name: getattr(module, name) for name in ("python_keywords", "stdlib_modules")}


def find_python(version: str) -> str | None:
    """A working interpreter of `version` ("3.10"): pyenv's, or one on PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))]
    candidates += filter(None, [shutil.which(f"python{version}")])
    for candidate in candidates:
        # A pyenv shim for a version that is not enabled exists but does not run.
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


TORCH_PIN = "torch==2.13.0"


def fresh_venv(project: Path, level: int, python: str | None = None) -> Path:
    """A new virtual environment holding only what the project's pyproject declares.

    For a PyTorch level the pinned CPU build of torch goes in first (a looser requirement
    would pull a multi-GB CUDA build); the project's own `torch>=2.3` is then satisfied.
    Where pip is pointed at a folder of wheels (PIP_FIND_LINKS, as on the test machines),
    uv installs torch from there and links it from its cache: about a second instead of
    half a minute of unpacking per environment.
    """
    venv = project / ".venv"
    run(
        [tool("uv"), "venv", "--quiet", "--seed", "--python", python or sys.executable, str(venv)],
        project,
    )
    python = str(venv / "bin" / "python")
    if levels.needs_torch(level):
        find_links = os.environ.get("PIP_FIND_LINKS", "").split()
        if find_links:
            links = [arg for folder in find_links for arg in ("--find-links", folder)]
            run(
                [tool("uv"), "pip", "install", "--quiet", "--python", python, *links, TORCH_PIN],
                project,
            )
        else:
            run([python, "-m", "pip", "install", "--quiet", TORCH_PIN], project)
    install = ["pip", "install", "--quiet", "--python", python, "-e", ".", "--group", "dev"]
    run([tool("uv"), *install], project)
    share_compiled_modules(venv)
    return venv / "bin"


# The pool where the fresh environments of this run (on every xdist worker) put the
# modules they compiled, and the environments of the running test, which add theirs when
# it ends.
_compiled_modules_pool = Path()
_environments_of_this_test: list[Path] = []
# The pool of mypy caches the projects of this run leave (tests/mypy_cache.py).
_mypy_cache_pool = Path()


@pytest.fixture(scope="session", autouse=True)
def _locate_pools(tmp_path_factory: pytest.TempPathFactory) -> None:
    global _compiled_modules_pool, _mypy_cache_pool
    _compiled_modules_pool = run_base(tmp_path_factory) / "compiled-modules"
    _mypy_cache_pool = run_base(tmp_path_factory) / "mypy-cache"


def run_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this test run that all its xdist workers share."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base folder sits in the run's own.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(autouse=True)
def _pool_compiled_modules() -> Iterator[None]:
    yield
    while _environments_of_this_test:
        compiled_modules.collect_from(_environments_of_this_test.pop(), _compiled_modules_pool)


def type_check(project: Path, bin_dir: Path) -> None:
    """The project's own `mypy`, started from the cache earlier projects of this run left."""
    mypy_cache.seed(_mypy_cache_pool, project)
    run([str(bin_dir / "mypy")], project)
    mypy_cache.offer(project, _mypy_cache_pool)


def share_compiled_modules(venv: Path) -> None:
    """Give a fresh environment the modules that earlier ones compiled, and pool what its
    own processes compile once the test is over (tests/compiled_modules.py)."""
    compiled_modules.link_into(_compiled_modules_pool, venv)
    _environments_of_this_test.append(venv)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--level",
        choices=[*map(str, LEVELS), "none"],
        help="run only the tests of one level, or (none) the tests that belong to no level",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # xdist hands tests to its workers in this order: the longest go first, so that the
    # run does not end with one worker on a long test while the other waits.
    items.sort(key=longest_first)
    wanted = config.getoption("--level")
    if wanted is None:
        return
    selected, deselected = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        level = params.params.get("level") if params else None
        keep = level is None if wanted == "none" else str(level) == wanted
        (selected if keep else deselected).append(item)
    config.hook.pytest_deselected(items=deselected)
    items[:] = selected


def longest_first(item: pytest.Item) -> tuple[bool, ...]:
    """Sort key: a level's full run (install, pytest, main job; a minute or more each),
    then an update from a published release (first those that run the project's tests),
    then the other slow tests, the PyTorch levels' first in each group; the rest keep
    their order."""
    params = (
        item.callspec.params
        if isinstance(item, pytest.Function) and hasattr(item, "callspec")
        else {}
    )
    name = getattr(item, "originalname", item.name)
    full_run = (
        name == "test_generated_project_passes_its_own_checks"
        and params.get("answer_set") == "defaults"
    )
    release = name == "test_a_project_from_a_published_release_updates_with_its_edits_kept"
    level = params.get("level")
    runs_its_tests = release and releases.is_oldest_with(params["release"], level)
    torch = isinstance(level, int) and levels.needs_torch(level)
    slow = item.get_closest_marker("slow") is not None
    return (not full_run, not release, not runs_its_tests, not slow, not torch)
