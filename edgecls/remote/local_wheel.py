"""A wheel of the edgecls this machine runs, for devices (edgecls may not be on their index).

Built offline, without a build backend: the files of the imported package (exactly the code
that runs here), ``edgecls/_build.json`` (the build digest and where it was built) and the
package metadata, taken from the checkout's ``pyproject.toml`` when edgecls runs from one,
else from the installed distribution. The version gets the digest as a local label
(``0.1.0+b<digest>``), so a device's pip replaces another build of the same release. Cached
by digest under ``$EDGECLS_CACHE/edgecls-wheel/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import edgecls
from edgecls.atomic import atomic_path
from edgecls.build_info import BUILD_FILE, this_build
from edgecls.errors import EdgeclsError
from edgecls.resources import resource_dir

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same build gives the same bytes
_DATA_FOLDERS = ("targets", "calibration")  # installed under <prefix>/share/edgecls/ (resources.py)


@dataclass(frozen=True)
class LocalWheel:
    """The wheel file, the build digest it carries, and where its metadata came from."""

    path: Path
    digest: str
    built_from: str


def local_wheel(cache: Path | None = None) -> LocalWheel:
    """The wheel of this edgecls build, made once per build digest.

    Raises:
        EdgeclsError: neither a checkout's pyproject.toml nor an installed distribution
            says edgecls's dependencies.
    """
    digest = this_build()
    package = Path(edgecls.__file__).resolve().parent
    metadata, entry_points, built_from = _metadata(package)
    root = cache or Path(os.environ.get("EDGECLS_CACHE", "~/.cache/edgecls")).expanduser()
    folder = root / "edgecls-wheel" / f"{digest}-{hashlib.sha256(metadata.encode()).hexdigest()[:8]}"
    version = f"{_field(metadata, 'Version')}+b{digest[:12]}"
    path = folder / f"edgecls-{version}-py3-none-any.whl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        files = _package_files(package, {"digest": digest, "version": version, "built_from": built_from})
        files += _data_files(package, version)
        dist_info = f"edgecls-{version}.dist-info"
        files += [(f"{dist_info}/METADATA", _with_version(metadata, version).encode()),
                  (f"{dist_info}/WHEEL", _WHEEL.encode()),
                  (f"{dist_info}/entry_points.txt", entry_points.encode())]
        with atomic_path(path) as temporary:
            _write_wheel(temporary, files, f"{dist_info}/RECORD")
    return LocalWheel(path, digest, built_from)


_WHEEL = "Wheel-Version: 1.0\nGenerator: edgecls\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _package_files(package: Path, build: dict) -> list[tuple[str, bytes]]:
    files = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if path.is_dir() or "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo") \
                or relative.as_posix() == BUILD_FILE:
            continue
        files.append((f"edgecls/{relative.as_posix()}", path.read_bytes()))
    return files + [(f"edgecls/{BUILD_FILE}", json.dumps(build, indent=1).encode())]


def _data_files(package: Path, version: str) -> list[tuple[str, bytes]]:
    files = []
    for name in _DATA_FOLDERS:
        folder = resource_dir(name)
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            files.append((f"edgecls-{version}.data/data/share/edgecls/{name}/{path.name}", path.read_bytes()))
    return files


def _metadata(package: Path) -> tuple[str, str, str]:
    """(METADATA text, entry_points.txt text, where they came from)."""
    pyproject = package.parent / "pyproject.toml"
    project = _pyproject_project(pyproject)
    if project is not None:
        return _metadata_from_project(project), _entry_points(project), f"checkout {package.parent}"
    from importlib import metadata

    try:
        dist = metadata.distribution("edgecls")
        text = dist.read_text("METADATA")
    except metadata.PackageNotFoundError:
        text = None
    if not text:
        raise EdgeclsError(f"cannot make a wheel of edgecls at {package}: no pyproject.toml beside it and "
                           "no installed distribution", "install edgecls with pip, or run it from its checkout")
    return text, dist.read_text("entry_points.txt") or "", "installed distribution"


def _pyproject_project(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return None
    project = tomllib.loads(path.read_text(encoding="utf-8")).get("project") or {}
    return project if project.get("name") == "edgecls" else None


def _metadata_from_project(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {_with_extra_marker(r, extra)}" for r in requirements]
    return "\n".join(lines) + "\n"


def _with_extra_marker(requirement: str, extra: str) -> str:
    name, _, marker = requirement.partition(";")
    condition = f'extra == "{extra}"'
    return f"{name.strip()}; ({marker.strip()}) and {condition}" if marker.strip() else f"{name.strip()}; {condition}"


def _entry_points(project: dict) -> str:
    scripts = project.get("scripts") or {}
    return "[console_scripts]\n" + "".join(f"{name} = {target}\n" for name, target in scripts.items())


def _field(metadata: str, name: str) -> str:
    for line in metadata.splitlines():
        if line.startswith(f"{name}: "):
            return line.split(": ", 1)[1].split("+", 1)[0].strip()
    return edgecls.__version__


def _with_version(metadata: str, version: str) -> str:
    return "".join(f"Version: {version}\n" if line.startswith("Version: ") else line
                   for line in metadata.splitlines(keepends=True))


def _write_wheel(path: Path, files: list[tuple[str, bytes]], record_name: str) -> None:
    records = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files:
            wheel.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
            hashed = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{name},sha256={hashed},{len(data)}")
        records.append(f"{record_name},,")
        wheel.writestr(zipfile.ZipInfo(record_name, _ZIP_TIME), "\n".join(records) + "\n",
                       compress_type=zipfile.ZIP_DEFLATED)
