"""The restricted legacy-PyTorch reader, on files crafted here without torch."""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import ModelError
from edgecls.models.torch_pickle import MAGIC_NUMBER, PROTOCOL_VERSION, load_state_dict


class _Global:
    """Pickles as the global ``module.name`` without that module being importable."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists a reduce function is callable
        raise AssertionError("a marker global is never called")


class _Storage:
    """A flat storage: written as a persistent id, its bytes after the pickles."""

    def __init__(self, key: str, data: np.ndarray, type_name: str = "FloatStorage") -> None:
        self.key, self.data, self.type_name = key, data.ravel(), type_name


class _Tensor:
    """Pickles the way torch pickles a tensor: ``_rebuild_tensor_v2(storage, ...)``."""

    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.args = (storage, offset, shape, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return _Global("torch._utils", "_rebuild_tensor_v2"), self.args


class _LegacyPickler(pickle._Pickler):
    """Protocol-2 pickler that writes ``_Global`` markers and storage persistent ids."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, storages: dict[str, _Storage]) -> None:
        super().__init__(file, protocol=2)
        self.storages = storages

    def save_marker_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_marker_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            self.storages[obj.key] = obj
            return ("storage", _Global("torch", obj.type_name), obj.key, "cpu",
                    obj.data.size, None)
        return None


def write_legacy(path: Path, obj, raw_object_pickle: bytes | None = None) -> Path:
    """Writes ``obj`` in torch's legacy format (or a given object pickle instead)."""
    buffer = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION,
                   {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, buffer, protocol=2)
    storages: dict[str, _Storage] = {}
    if raw_object_pickle is None:
        _LegacyPickler(buffer, storages).dump(obj)
    else:
        buffer.write(raw_object_pickle)
    keys = sorted(storages)
    pickle.dump(keys, buffer, protocol=2)
    for key in keys:
        data = storages[key].data
        buffer.write(struct.pack("<q", data.size) + data.tobytes())
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A legacy file whose tensors use transposed strides, offsets and shared storages."""
    rng = np.random.default_rng(0)
    hwio = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)  # stored HWIO, read as OIHW
    shared = rng.standard_normal(20).astype(np.float32)
    counts = np.array([7, 42], dtype=np.int64)
    s_conv, s_shared, s_long = _Storage("1", hwio), _Storage("2", shared), _Storage("3", counts, "LongStorage")
    state = collections.OrderedDict()
    state["conv.weight"] = _Tensor(s_conv, 0, (4, 2, 3, 3), (1, 4, 24, 8))
    state["bn.weight"] = _Tensor(s_shared, 0, (5,), (1,))
    state["bn.bias"] = _Tensor(s_shared, 5, (5,), (1,))
    state["every_other"] = _Tensor(s_shared, 10, (2, 3), (1, 2))
    state["bn.num_batches_tracked"] = _Tensor(s_long, 1, (), ())
    expected = {
        "conv.weight": hwio.transpose(3, 2, 0, 1),
        "bn.weight": shared[:5],
        "bn.bias": shared[5:10],
        "every_other": np.array([[shared[10 + i + 2 * j] for j in range(3)] for i in range(2)]),
        "bn.num_batches_tracked": np.array(42, dtype=np.int64),
    }
    return write_legacy(tmp_path / "crafted.pth", state), expected


def test_reads_offsets_strides_and_dtypes(crafted):
    path, expected = crafted
    state = load_state_dict(path)
    assert list(state) == list(expected)
    for name, want in expected.items():
        got = state[name]
        assert got.shape == want.shape and got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert got.flags["C_CONTIGUOUS"] and got.flags["OWNDATA"]


def test_refuses_os_system_and_runs_nothing(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(f"touch {marker}"))
            + f"touch {marker}".encode() + b"\x85R.")
    path = write_legacy(tmp_path / "evil.pth", None, raw_object_pickle=evil)
    with pytest.raises(ModelError, match=r"os\.system"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("torch", "load"),
                                          ("posix", "system"), ("subprocess", "Popen")])
def test_refuses_any_other_global(tmp_path: Path, module: str, name: str):
    state = {"x": _Global(module, name)}
    path = write_legacy(tmp_path / "other.pth", state)
    with pytest.raises(ModelError, match=f"{module}.{name}") as info:
        load_state_dict(path)
    assert "other.pth" in str(info.value)


def test_allowed_globals_cannot_be_tampered_with(tmp_path: Path, crafted):
    # GLOBAL torch.FloatStorage; BUILD it with {"dtype": 1} (dict state) or slot state.
    dict_state = b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeK\x01sb."
    slot_state = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x04\x00\x00\x00name"
                  b"X\x01\x00\x00\x00xs\x86b.")
    for index, raw in enumerate((dict_state, slot_state)):
        path = write_legacy(tmp_path / f"tamper{index}.pth", None, raw_object_pickle=raw)
        with pytest.raises(ModelError, match=f"tamper{index}.pth.*tries to modify torch"):
            load_state_dict(path)
    path, expected = crafted
    np.testing.assert_array_equal(load_state_dict(path)["bn.bias"], expected["bn.bias"])


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file_names_the_file(crafted, keep: float):
    path, _ = crafted
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="crafted.pth.*truncated"):
        load_state_dict(path)


def test_missing_file_and_wrong_format(tmp_path: Path):
    with pytest.raises(ModelError, match="absent.pth"):
        load_state_dict(tmp_path / "absent.pth")
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ModelError, match="zip-format"):
        load_state_dict(tmp_path / "zip.pth")
    not_torch = tmp_path / "plain.pkl"
    not_torch.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ModelError, match="magic number"):
        load_state_dict(not_torch)


def test_strides_beyond_storage_are_refused(tmp_path: Path):
    storage = _Storage("1", np.arange(6, dtype=np.float32))
    path = write_legacy(tmp_path / "oob.pth", {"w": _Tensor(storage, 2, (2, 3), (3, 1))})
    with pytest.raises(ModelError, match="oob.pth.*past its storage"):
        load_state_dict(path)
