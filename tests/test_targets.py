"""Target profiles: every shipped YAML loads, unknown keys and names are rejected,
and `edgecls targets list|show` work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.errors import ConfigError
from edgecls.runtime.targets import apply, list_targets, load_target, target_file

REQUIRED = ["raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin-nano", "x86-cpu", "intel-cpu-openvino"]


def test_required_targets_load_with_sources() -> None:
    names = [t.name for t in list_targets()]
    for name in REQUIRED:
        assert name in names
        target = load_target(name)
        assert target.format in ("tflite", "onnx", "openvino")
        assert target.backend in ("litert", "onnxruntime", "openvino")
        assert target.pip.startswith("pip install") and target.sources


def test_backend_options_from_target() -> None:
    orin = load_target("jetson-orin-nano").backend_options()
    assert orin.providers == ["tensorrt", "cuda", "cpu"]
    assert orin.extra["provider_options"]["tensorrt"]["trt_fp16_enable"] is True
    assert load_target("intel-cpu-openvino").backend_options(threads=2).threads == 2


def test_apply_lets_what_the_user_gave_win_and_the_profile_fill_the_rest() -> None:
    """The one rule run, bench and export follow with --target."""
    orin = load_target("jetson-orin-nano")
    chosen = apply(orin, threads=None, device=None, providers=["cpu"], provider_options=None,
                   source="video.mp4", formats=None, precisions=["fp32"], calibration=None)
    assert chosen == {"threads": 4, "device": None,  # the profile's GPU is an OpenVINO device only
                      "providers": ["cpu"], "provider_options": orin.provider_options,
                      "source": "video.mp4", "formats": ["onnx"], "precisions": ["fp32"],
                      "calibration": None}  # an option the profile knows nothing of stays as given
    openvino = apply(load_target("intel-cpu-openvino"), threads=2, device=None, source=None)
    assert openvino == {"threads": 2, "device": "CPU", "source": "0"}
    assert apply(None, threads=None, source="0") == {"threads": None, "source": "0"}


def test_unknown_key_and_name_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: d\narch: a\nformat: onnx\nprecision: fp32\nbackend: onnxruntime\nthreds: 2\n")
    assert target_file(str(bad)) == bad and target_file("x86-cpu") is None
    assert target_file(str(tmp_path / "missing.yaml")) is None
    with pytest.raises(ConfigError, match="unknown key"):
        load_target(str(bad))
    with pytest.raises(ConfigError, match="unknown target"):
        load_target("toaster")


def test_targets_cli() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["targets", "list"], terminal_width=200)
    assert listed.exit_code == 0 and "raspberry-pi-5" in listed.output
    shown = runner.invoke(app, ["targets", "show", "jetson-nano"])
    assert shown.exit_code == 0 and "Python 3.6" in shown.output and "pip install" in shown.output


def test_list_and_show_target_through_the_api_match_the_cli() -> None:
    import edgecls

    listed = edgecls.list_targets()
    assert set(REQUIRED) <= set(listed.names) and listed.names == sorted(listed.names)
    assert ["raspberry-pi-5", "tflite", "int8", "litert", "CPU"] in listed.rows()
    assert "<table" in listed._repr_html_() and "jetson-nano" in listed._repr_html_()
    assert [t["name"] for t in listed.to_dict()["targets"]] == listed.names
    nano = edgecls.show_target("jetson-nano")
    shown = CliRunner().invoke(app, ["targets", "show", "jetson-nano"])
    assert shown.exit_code == 0 and shown.output.rstrip("\n") == nano.to_yaml()
    assert nano.to_dict()["arch"] == "aarch64" and "pip install" in nano._repr_html_()
    with pytest.raises(ConfigError) as error:
        edgecls.show_target("toaster")
    assert error.value.message == "unknown target 'toaster'" and "raspberry-pi-5" in error.value.hint
