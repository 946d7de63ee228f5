"""First-use installation of the library's Python dependencies into Slicer's Python.

Never at import time (that would block Slicer's start-up and install without asking): only when
the user starts a detection, after a confirmation dialog. torch comes from the PyTorch extension
(it picks the wheel matching the GPU driver); SimpleITK is Slicer's own and must not be replaced.
Only *missing* packages are installed, so numpy/scipy that Slicer bundles are never swapped for
the pinned versions in ``Resources/requirements.txt``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

SKIP_PACKAGES = ("SimpleITK", "torch")  # provided by Slicer / by the PyTorch extension
TORCH_REQUIREMENT = ">=2.4"
REQUESTER = "LatentAnomaly"
# Distribution name -> module name where they differ.
IMPORT_NAMES = {"scikit-learn": "sklearn", "simpleitk": "SimpleITK", "pyyaml": "yaml", "pillow": "PIL"}
REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"


def read_requirements(path: str | os.PathLike[str] = REQUIREMENTS_FILE) -> list[str]:
    """Requirement lines of a requirements file, without comments, blanks and pip options."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def requirement_name(requirement: str) -> str:
    """``scikit-learn==1.8.0`` -> ``scikit-learn``."""
    return re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0]


def import_name(requirement: str) -> str:
    name = requirement_name(requirement)
    return IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))


_CHECK_SCRIPT = (
    "import importlib.util, json, sys\n"
    "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))\n"
)


def _same_interpreter(python: str | os.PathLike[str] | None) -> bool:
    """Same executable path, symlinks *not* resolved: a venv's python links to the base one but sees other packages."""
    if python is None:
        return True
    return os.path.normcase(os.path.abspath(python)) == os.path.normcase(os.path.abspath(sys.executable))


def missing_modules(
    modules: list[str], python: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> list[str]:
    """The modules ``python`` cannot find (``find_spec``, nothing is imported).

    In Slicer the GUI process and ``PythonSlicer`` share one site-packages, but another interpreter
    may have been configured, so a different executable is asked in a short child process.
    """
    if _same_interpreter(python):
        importlib.invalidate_caches()
        return [m for m in modules if importlib.util.find_spec(m) is None]
    result = subprocess.run(
        [os.fspath(python), "-c", _CHECK_SCRIPT, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot run {python} to check the Python packages: {result.stderr.strip()[-500:]}")
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def missing_requirements(
    requirements: list[str], python: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> list[str]:
    """The requirement lines whose module is missing (``torch`` and ``SimpleITK`` included if listed)."""
    by_module = {import_name(r): r for r in requirements}
    return [by_module[m] for m in missing_modules(list(by_module), python, env)]


def wanted_requirements(requirements_path: str | os.PathLike[str] = REQUIREMENTS_FILE) -> list[str]:
    """Everything the CLI needs: ``requirements.txt`` plus torch and SimpleITK (checked, installed differently)."""
    return [*read_requirements(requirements_path), f"torch{TORCH_REQUIREMENT}", "SimpleITK"]


def install_plan(missing: list[str]) -> tuple[bool, list[str], list[str]]:
    """(need torch, requirements for pip, problems) from the missing requirement lines."""
    names = {requirement_name(r).lower(): r for r in missing}
    need_torch = "torch" in names
    problems = ["SimpleITK is missing from Slicer's Python; reinstall Slicer"] if "simpleitk" in names else []
    skip = {s.lower() for s in SKIP_PACKAGES}
    return need_torch, [r for r in missing if requirement_name(r).lower() not in skip], problems


def ensure_dependencies(
    python: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    requirements_path: str | os.PathLike[str] = REQUIREMENTS_FILE,
    ask: bool = True,
) -> bool:
    """Inside Slicer: install what the CLI needs after asking the user. False if the user declined.

    Raises ``RuntimeError`` if something is still missing afterwards (no network, PyTorch extension absent).
    """
    import slicer

    wanted = wanted_requirements(requirements_path)
    missing = missing_requirements(wanted, python, env)
    if not missing:
        return True
    need_torch, pip_requirements, problems = install_plan(missing)
    if problems:
        raise RuntimeError("; ".join(problems))
    listing = "\n".join(f"  {r}" for r in missing)
    if ask and not slicer.util.confirmOkCancelDisplay(
        f"Latent Anomaly needs these Python packages, which are not installed yet:\n{listing}\n\n"
        "Install them now? This downloads several hundred MB (PyTorch) and can take minutes.",
        windowTitle="Latent Anomaly: install Python packages",
    ):
        return False
    if need_torch:  # first, so that monai's own torch requirement is already met
        try:
            import PyTorchUtils
        except ImportError:
            raise RuntimeError(
                "the PyTorch extension is required: install 'PyTorch' from the Extensions Manager and restart Slicer"
            ) from None
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT
        )
        if torch is None:
            return False
    if pip_requirements:
        _pip_install(pip_requirements)
    still = missing_requirements(wanted, python, env)
    if still:
        raise RuntimeError(f"still missing after installation: {', '.join(still)}")
    return True


def _pip_install(requirements: list[str]) -> None:
    """``slicer.packaging.pip_ensure`` (Slicer >= 5.12; ``slicer.pydeps`` in 5.11), else ``slicer.util.pip_install``."""
    import slicer

    for name in ("packaging", "pydeps"):
        try:
            module = importlib.import_module(f"slicer.{name}")
        except ImportError:
            continue
        if hasattr(module, "pip_ensure"):
            from packaging.requirements import Requirement

            module.pip_ensure(
                [Requirement(r) for r in requirements],
                requester=REQUESTER,
                skip_packages=list(SKIP_PACKAGES),
                prompt_install=False,
            )
            return
    slicer.util.pip_install(" ".join(requirements))
