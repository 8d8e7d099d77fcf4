"""An export publishes as a whole: every artifact plus ``manifest.json``, or the old set.

``export_transaction(out)`` takes an exclusive lock (``flock``) on the output folder, cleans what a
killed export left there, and yields a transaction whose scratch folder
(``OUT/.edgecls-export-XXXX/``) lives on the same file system as ``OUT``. Artifacts are
``stage``d into it under their final names (small files by ``add_text``); ``commit`` adds ``manifest.json``, writes the
journal ``OUT/.edgecls-publish.json`` (atomically) naming every staged file, renames them
into place (an OpenVINO ``.bin`` before its ``.xml``, the manifest last) and deletes the
journal. Killed before the journal exists, the old set stays untouched; killed after,
the next export into ``OUT`` finishes the renames first (roll forward). Either way the
next export removes the stale scratch folders and temporary files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edgecls.atomic import write_text_atomic
from edgecls.errors import ConfigError
from edgecls.export.manifest import MANIFEST_NAME, Manifest
from edgecls.formats import artifact_files
from edgecls.rundir import ExportDir

WORK_PREFIX = ".edgecls-export-"
JOURNAL_NAME = ".edgecls-publish.json"
_STAGING = "publish"
_JOURNAL_SCHEMA_VERSION = 1


class ExportTransaction:
    """Stages the files of one export and publishes them together.

    Attributes:
        out: the output folder.
        work: scratch folder for the exporters (removed when the transaction ends).
    """

    def __init__(self, out: Path, work: Path) -> None:
        self.out = out
        self.work = work
        self._staging = work / _STAGING
        self._staging.mkdir()
        self._names: list[str] = []

    def stage(self, artifact: Path, final: Path) -> Path:
        """Moves an artifact (with an OpenVINO ``.bin``) into staging as ``final.name``.

        Returns:
            The staged artifact, named as it will be in ``out``.
        """
        staged = self._staging / final.name
        for source in reversed(artifact_files(artifact)):  # .bin first, then .xml
            target = staged.with_suffix(source.suffix)
            os.replace(source, target)
            if target.name not in self._names:
                self._names.append(target.name)
        return staged

    def add_text(self, name: str, text: str) -> None:
        """Stages a small file of the export (e.g. ``predictions.json``), published with the rest."""
        write_text_atomic(self._staging / name, text)
        if name not in self._names:
            self._names.append(name)

    def commit(self, manifest: Manifest) -> Path:
        """Publishes every staged file and ``manifest.json`` (last); returns the manifest path."""
        manifest.save(self._staging)
        names = [n for n in self._names if n != MANIFEST_NAME] + [MANIFEST_NAME]
        journal = {"schema_version": _JOURNAL_SCHEMA_VERSION,
                   "staging": self._staging.relative_to(self.out).as_posix(), "files": names}
        write_text_atomic(self.out / JOURNAL_NAME, json.dumps(journal, indent=1))
        roll_forward(self.out)
        return ExportDir(self.out).manifest


@contextlib.contextmanager
def export_transaction(out: Path) -> Iterator[ExportTransaction]:
    """Locks ``out``, recovers from a killed export, yields a transaction, cleans up.

    Raises:
        ConfigError: another export is writing into ``out`` right now.
    """
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(out):
        recover(out)
        work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out))
        try:
            yield ExportTransaction(out, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def recover(out: Path) -> list[str]:
    """Finishes an interrupted publish and removes debris of killed exports in ``out``.

    Call only while holding the folder's lock. Returns what was done, for logs and tests.
    """
    done = []
    if (out / JOURNAL_NAME).is_file():
        done += [f"published {name}" for name in roll_forward(out)]
    for path in sorted(out.iterdir()):
        if path.name.startswith(WORK_PREFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
        elif path.name.startswith(".") and path.name.endswith((".incoming", ".tmp")):
            _remove(path)
            done.append(f"removed {path.name}")
    return done


def roll_forward(out: Path) -> list[str]:
    """Renames the files a journal lists into ``out`` (those still staged); drops the journal."""
    journal_path = out / JOURNAL_NAME
    try:
        journal = json.loads(journal_path.read_text(encoding="utf-8"))
        staging = out / journal["staging"]
        names = [str(n) for n in journal["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        journal_path.unlink(missing_ok=True)  # unreadable: written by no complete publish
        return []
    moved = []
    for name in names:
        source = staging / Path(name).name
        if source.is_file():
            os.replace(source, out / Path(name).name)
            moved.append(name)
    journal_path.unlink(missing_ok=True)
    return moved


@contextlib.contextmanager
def _exclusive_lock(out: Path) -> Iterator[None]:
    """An advisory lock on the folder itself (no lock file left behind); none on Windows."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; exports there are single-user anyway
        yield
        return
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another edgecls export is writing into {out}",
                              "wait for it to finish, or pass a different --out") from None
        except OSError:  # a file system without locks (some network mounts): go unlocked
            pass
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
