import json
import os
import sys
import types

import pytest
import torch
from safetensors.torch import save_file

from aigc_course import pretrained
from aigc_course.pretrained import CheckpointError


class TinyBuilder(torch.nn.Module):
    """A builder registered under a throw-away module for these tests."""

    def __init__(self, width):
        super().__init__()
        self.lin = torch.nn.Linear(width, width)

    @classmethod
    def from_checkpoint(cls, tensors, config, device):
        model = cls(config["width"])
        pretrained.load_module_state(model, tensors)
        return model.to(device).eval()


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """Point the registry at a temporary folder holding one checkpoint, 'tiny'."""
    module = types.ModuleType("tiny_builder_module")
    module.TinyBuilder = TinyBuilder
    monkeypatch.setitem(sys.modules, "tiny_builder_module", module)
    monkeypatch.setattr(pretrained, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", tmp_path / "registry.json")
    torch.manual_seed(0)
    model = TinyBuilder(3)
    pretrained.publish("tiny", model.state_dict(), {"width": 3}, "tiny_builder_module:TinyBuilder",
                       description="test", script="tests", checkpoint_dir=tmp_path)
    return tmp_path, model


def test_round_trip(registry):
    _, model = registry
    assert pretrained.available() == ["tiny"]
    loaded = pretrained.load("tiny", device="cpu")
    assert torch.equal(loaded.lin.weight, model.lin.weight)
    assert not loaded.training


def test_unknown_name_lists_available(registry):
    with pytest.raises(ValueError, match=r"unknown checkpoint 'nope'; available checkpoints: tiny"):
        pretrained.load("nope")


def test_missing_file_names_file_and_hash(registry):
    folder, _ = registry
    (folder / "tiny" / "model.safetensors").unlink()
    expected = pretrained.info("tiny")["sha256"]["model.safetensors"]
    with pytest.raises(CheckpointError, match=rf"model.safetensors is missing \(expected sha256 {expected}\)"):
        pretrained.load("tiny")


def test_truncated_file_is_refused(registry):
    folder, _ = registry
    path = folder / "tiny" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="registry expects .* truncated, corrupted"):
        pretrained.load("tiny")


def test_tampered_config_is_refused(registry):
    folder, _ = registry
    path = folder / "tiny" / "config.json"
    path.write_text(json.dumps({"width": 4}))
    with pytest.raises(CheckpointError, match=str(path)):
        pretrained.load("tiny")


def test_tampered_weights_same_size_are_refused(registry):
    folder, _ = registry
    path = folder / "tiny" / "model.safetensors"
    tensors = {"lin.weight": torch.zeros(3, 3), "lin.bias": torch.zeros(3)}
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError, match="sha256"):
        pretrained.load("tiny")


def test_publish_is_atomic_when_writing_fails(registry, monkeypatch):
    folder, _ = registry
    before = (folder / "tiny" / "model.safetensors").read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        pretrained.publish("tiny", {"lin.weight": torch.ones(3, 3), "lin.bias": torch.ones(3)}, {"width": 3},
                           "tiny_builder_module:TinyBuilder", "test", "tests", checkpoint_dir=folder)
    assert (folder / "tiny" / "model.safetensors").read_bytes() == before
    assert not list((folder / "tiny").glob(".*.tmp"))
    assert pretrained.load("tiny", device="cpu").lin.weight.abs().sum() > 0


def test_publish_refuses_unknown_builder_before_writing(tmp_path):
    with pytest.raises(ModuleNotFoundError):
        pretrained.publish("x", {"a": torch.ones(1)}, {}, "no_such_module:Thing", "d", "s", checkpoint_dir=tmp_path)
    assert not (tmp_path / "x").exists()


def test_tied_weights_are_stored_once_and_reloaded():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            self.head.weight = self.embed.weight

    model = Tied()
    saved = pretrained.tensors_for_saving(model.state_dict())
    assert list(saved) == ["embed.weight"]
    fresh = Tied()
    pretrained.load_module_state(fresh, saved)
    assert torch.equal(fresh.head.weight, model.embed.weight)


def test_missing_untied_key_is_an_error():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="lacks keys"):
        pretrained.load_module_state(model, {"weight": torch.zeros(2, 2)})


def test_no_pickle_anywhere_in_shipped_checkpoints():
    for name in pretrained.available():
        folder = pretrained.CHECKPOINT_DIR / name
        assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == {"model.safetensors", "config.json"}


def test_every_shipped_checkpoint_verifies():
    for name in pretrained.available():
        tensors, config = pretrained.load_files(name)
        assert tensors and isinstance(config, dict)
