"""A restricted reader of legacy (pre-zip) PyTorch checkpoints that needs no torch.

A legacy ``torch.save`` file is a sequence of pickles followed by raw storage bytes::

    magic number | protocol version | sys info | object pickle | storage keys | storages

The object pickle refers to storages through persistent ids
``("storage", StorageType, key, location, numel, view_metadata)`` and builds tensors
with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``. Each
storage is then written as a little-endian int64 element count and its raw bytes.

The unpickler here resolves only the handful of globals such a state dict needs, to
this module's own stand-ins; any other global (``os.system``, ``builtins.eval``...)
is refused with a ``ModelError`` before anything is called.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgecls.errors import ModelError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True, slots=True)
class StorageType:
    """Stands for ``torch.<Name>Storage`` in the pickle: only its element type matters.

    Frozen and slotted, like ``TensorRebuilder``, so a pickle's BUILD opcode cannot
    alter it.
    """

    name: str
    dtype: np.dtype

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the pickle tries to modify torch.{self.name}")


@dataclass
class Storage:
    """A flat typed buffer, filled from the file after the object pickle is read."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class StorageView:
    """A legacy storage view: ``numel`` elements of ``base`` starting at ``offset``."""

    base: Storage
    offset: int
    numel: int

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype


@dataclass
class PendingTensor:
    """A tensor whose storage bytes have not been read yet."""

    storage: Storage | StorageView
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    extra: tuple = field(default=())


def _rebuild_tensor(storage: Any, storage_offset: int, size: tuple, stride: tuple,
                    *extra: Any) -> PendingTensor:
    """Our stand-in for ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor``."""
    if not isinstance(storage, (Storage, StorageView)):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} differ in rank")
    return PendingTensor(storage, int(storage_offset), tuple(int(s) for s in size),
                         tuple(int(s) for s in stride), extra)


@dataclass(frozen=True, slots=True)
class TensorRebuilder:
    """Stands for ``torch._utils._rebuild_tensor_v2``; calls ``_rebuild_tensor``."""

    name: str

    def __call__(self, *args: Any) -> PendingTensor:
        return _rebuild_tensor(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the pickle tries to modify torch._utils.{self.name}")


def allowed_global(module: str, name: str) -> Any:
    """A fresh stand-in for one of the few globals a state dict needs, else ``None``."""
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict  # a C type: its attributes cannot be set
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
        return TensorRebuilder(name)
    if module == "torch" and name in STORAGE_DTYPES:
        return StorageType(name, STORAGE_DTYPES[name])
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a legacy torch object pickle, resolving only ``allowed_global`` names.

    Args:
        file: binary stream positioned at the object pickle.
        source: file name used in error messages.
    """

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file)
        self.source = source
        self.storages: dict[str, Storage] = {}
        self.views: dict[str, StorageView] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = allowed_global(module, name)
        if found is None:
            raise ModelError(
                f"{self.source} asks to load the global {module}.{name}, which a weights "
                "file has no need of; refusing to unpickle it",
                "the file may be malicious or not a plain state dict; use a trusted file",
            )
        return found

    def persistent_load(self, pid: Any) -> Storage | StorageView:
        if not (isinstance(pid, tuple) and len(pid) == 6 and _as_str(pid[0]) == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r:.80}")
        key = _as_str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = Storage(key, storage_type.dtype, int(numel))
        if view is None:
            return storage
        view_key, offset, view_numel = view
        view_key = _as_str(view_key)
        if view_key not in self.views:
            self.views[view_key] = StorageView(storage, int(offset), int(view_numel))
        return self.views[view_key]


def _as_str(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a legacy PyTorch ``state_dict`` file into numpy arrays, without torch.

    Args:
        path: the ``.pth`` file written by ``torch.save(..., _use_new_zipfile_serialization=False)``
            or by torch < 1.6.

    Returns:
        An ordered mapping from parameter name to a C-contiguous numpy array.

    Raises:
        ModelError: the file is missing, truncated, not a legacy torch file, not a
            dict (or ``{"state_dict": dict}``), or asks for a forbidden global.
            Non-tensor entries of the dict are skipped.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read weights file {path}: {exc.strerror or exc}",
                         "check that the file exists and is readable") from None
    try:
        return _parse(io.BytesIO(raw), str(path))
    except ModelError:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, TypeError,
            KeyError, IndexError, AttributeError, MemoryError) as exc:
        truncated = isinstance(exc, EOFError) or "truncated" in str(exc)
        what = "truncated" if truncated else "corrupt or not a plain state dict"
        raise ModelError(f"weights file {path} is {what} ({exc})",
                         "reinstall the package or use a trusted file") from None


def _parse(stream: io.BytesIO, source: str) -> dict[str, np.ndarray]:
    if stream.getbuffer()[:2].tobytes() == b"PK":
        raise ModelError(f"{source} is a zip-format torch file, not a legacy one",
                         "only legacy (pre-zip) PyTorch checkpoints are supported")
    _read_header(stream, source)
    unpickler = RestrictedUnpickler(stream, source)
    obj = unpickler.load()
    keys = [_as_str(k) for k in pickle.load(stream)]
    _read_storages(stream, unpickler.storages, keys, source)
    return _materialize(obj, source)


def _read_header(stream: BinaryIO, source: str) -> None:
    header = RestrictedUnpickler(stream, source)
    if header.load() != MAGIC_NUMBER:
        raise ModelError(f"{source} is not a legacy PyTorch file (bad magic number)",
                         "pass a .pth file saved by torch.save")
    version = RestrictedUnpickler(stream, source).load()
    if version != PROTOCOL_VERSION:
        raise ModelError(f"{source} uses torch protocol version {version}, expected 1001")
    sys_info = RestrictedUnpickler(stream, source).load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise ModelError(f"{source} was written on a big-endian machine; not supported")


def _read_storages(stream: io.BytesIO, storages: dict[str, Storage], keys: list[str],
                   source: str) -> None:
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise pickle.UnpicklingError(f"storage {key} is listed but never referenced")
        (numel,) = struct.unpack("<q", _read_exact(stream, 8, source))
        if numel != storage.numel:
            raise pickle.UnpicklingError(f"storage {key} holds {numel} elements, "
                                         f"expected {storage.numel}")
        data = _read_exact(stream, numel * storage.dtype.itemsize, source)
        storage.data = np.frombuffer(data, dtype=storage.dtype)
    missing = [k for k, s in storages.items() if s.data is None]
    if missing:
        raise pickle.UnpicklingError(f"storages {missing[:3]} have no data")


def _read_exact(stream: BinaryIO, count: int, source: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ModelError(f"weights file {source} is truncated",
                         "reinstall the package or download the file again")
    return data


def _materialize(obj: Any, source: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ModelError(f"{source} holds a {type(obj).__name__}, not a state dict")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    tensors: dict[str, np.ndarray] = collections.OrderedDict()
    for name, value in obj.items():
        if isinstance(value, PendingTensor):
            tensors[_as_str(name)] = tensor_to_array(value)
    return tensors


def tensor_to_array(tensor: PendingTensor) -> np.ndarray:
    """Copies a tensor out of its storage, honouring storage offset, views and strides.

    Raises:
        pickle.UnpicklingError: the shape/strides reach outside the storage.
    """
    storage, offset = tensor.storage, tensor.offset
    if isinstance(storage, StorageView):
        _check_bounds(tensor.shape, tensor.stride, offset, storage.numel)
        storage, offset = storage.base, storage.offset + offset
    _check_bounds(tensor.shape, tensor.stride, offset, storage.numel)
    flat = storage.data
    if any(s == 0 for s in tensor.shape):
        return np.zeros(tensor.shape, dtype=flat.dtype)
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=tensor.shape, strides=tuple(s * item for s in tensor.stride),
        writeable=False)
    return np.array(view, order="C", copy=True)


def _check_bounds(shape: tuple[int, ...], stride: tuple[int, ...], offset: int,
                  numel: int) -> None:
    if offset < 0 or any(s < 0 for s in stride) or any(d < 0 for d in shape):
        raise pickle.UnpicklingError("negative tensor offset, size or stride")
    if any(d == 0 for d in shape):
        return
    last = offset + sum((d - 1) * s for d, s in zip(shape, stride))
    if last >= numel:
        raise pickle.UnpicklingError(
            f"tensor of shape {shape} strides {stride} at offset {offset} reaches "
            f"past its storage of {numel} elements")
