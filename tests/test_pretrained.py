"""The checkpoint registry treats every file as untrusted input; publishing is one transaction."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors_bytes

from aigc_course import pretrained
from aigc_course.diffusion.models import MLPDenoiser
from aigc_course.diffusion.pipelines import Diffusion2DPipeline
from aigc_course.pretrained import CheckpointError, capture_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import publishing  # noqa: E402  (repository tooling lives in scripts/)

BUILDER = "aigc_course.diffusion.pipelines:Diffusion2DPipeline"


def tiny_checkpoint(seed: int = 0, timesteps: int = 50):
    """A small grid-ddpm-like pipeline: weights and the config that builds it."""
    torch.manual_seed(seed)
    model = MLPDenoiser(dim=2, hidden=8, num_blocks=1, time_dim=8)
    config = {"model": model.config, "schedule": "linear", "timesteps": timesteps,
              "training": {"steps": 3, "seed": seed}, "metrics": {"loss": 0.5}}
    return model.state_dict(), config


def publish_tiny(folder, seed: int = 0, name: str = "tiny", **kwargs):
    tensors, config = tiny_checkpoint(seed, **kwargs)
    publishing.publish(name, tensors, config, BUILDER, description="test", script="tests",
                       checkpoint_dir=folder)
    return tensors


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """Point the registry at a temporary folder holding one checkpoint, 'tiny'."""
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(pretrained, "CHECKPOINT_DIR", folder)
    monkeypatch.setattr(pretrained, "REGISTRY_FILE", folder / "registry.json")
    tensors = publish_tiny(folder)
    return folder, tensors


def files_of(name: str) -> tuple[Path, Path]:
    folder = pretrained.checkpoint_folder(name, pretrained.info(name)["sha256"])
    return folder / pretrained.WEIGHTS_FILE, folder / pretrained.CONFIG_FILE


def rewrite(path: Path, data: bytes, rehash: bool = True) -> None:
    """Replace a checkpoint file, and (as a careful attacker would) its hash in the registry."""
    path.write_bytes(data)
    if rehash:
        registry = json.loads(pretrained.REGISTRY_FILE.read_text())
        registry["tiny"]["sha256"][path.name] = hashlib.sha256(data).hexdigest()
        pretrained.REGISTRY_FILE.write_text(json.dumps(registry))
        # the version folder is derived from the hashes: move the files along
        new = pretrained.checkpoint_folder("tiny", registry["tiny"]["sha256"])
        shutil.move(path.parent, new)


def write_registry(registry: dict) -> None:
    pretrained.REGISTRY_FILE.write_text(json.dumps(registry))


def same_weights(pipe, tensors) -> bool:
    return all(torch.equal(pipe.model.state_dict()[k], v) for k, v in tensors.items())


# --------------------------------------------------------------------------- loading


def test_round_trip(registry):
    _, tensors = registry
    assert pretrained.available() == ["tiny"]
    pipe = pretrained.load("tiny", device="cpu")
    assert isinstance(pipe, Diffusion2DPipeline) and not pipe.model.training
    assert same_weights(pipe, tensors)
    assert pipe.config["training"] == {"steps": 3, "seed": 0}  # a pipeline's .config is the checkpoint's config
    assert pipe.schedule.timesteps == 50


def test_unknown_name_lists_available(registry):
    with pytest.raises(ValueError, match=r"unknown checkpoint 'nope'; available checkpoints: tiny"):
        pretrained.load("nope")


@pytest.mark.parametrize("name", ["../tiny", "/etc/passwd", "tiny/../../x", "Tiny", "", "a" * 65, "-x", 3, None])
def test_names_outside_the_pattern_are_refused(registry, name):
    with pytest.raises(ValueError, match="name must be a checkpoint name"):
        pretrained.load(name)


@pytest.mark.parametrize("key", ["../outside", "/tmp/outside", "a/b", "..", "UPPER"])
def test_registry_keys_that_escape_are_refused_before_any_read(registry, tmp_path, key):
    folder, _ = registry
    # a complete, valid checkpoint outside the checkpoint folder, which must never be read
    publish_tiny(tmp_path / "elsewhere", name="outside")
    registry_data = json.loads(pretrained.REGISTRY_FILE.read_text())
    registry_data[key] = json.loads((tmp_path / "elsewhere" / "registry.json").read_text())["outside"]
    write_registry(registry_data)
    with pytest.raises(CheckpointError, match="not a valid checkpoint name") as err:
        pretrained.available()
    assert err.value.file == str(pretrained.REGISTRY_FILE) and err.value.field == repr(key)


def test_a_linked_folder_out_of_the_checkpoints_is_refused(registry, tmp_path):
    folder, _ = registry
    publish_tiny(tmp_path / "elsewhere", seed=1, name="tiny")
    outside = json.loads((tmp_path / "elsewhere" / "registry.json").read_text())["tiny"]
    write_registry({"tiny": outside})
    version = pretrained.version_of(outside["sha256"])
    shutil.rmtree(folder / "tiny")
    (folder / "tiny").symlink_to(tmp_path / "elsewhere" / "tiny", target_is_directory=True)
    assert (folder / "tiny" / version / "model.safetensors").is_file()
    with pytest.raises(CheckpointError, match="outside"):
        pretrained.load("tiny", device="cpu")


def test_a_linked_file_is_refused(registry, tmp_path):
    weights, _ = files_of("tiny")
    target = tmp_path / "weights.safetensors"
    shutil.copy(weights, target)
    weights.unlink()
    weights.symlink_to(target)
    with pytest.raises(CheckpointError, match="link"):
        pretrained.load("tiny", device="cpu")


@pytest.mark.parametrize("builder", ["os:system", "subprocess:Popen", "aigc_course.gan:GANSampler",
                                     "aigc_course.training:fit", "evil_builder_module:Thing", "", None, 7])
def test_builders_outside_the_allow_list_are_never_imported(registry, tmp_path, monkeypatch, builder):
    (tmp_path / "evil_builder_module.py").write_text("import os\nos.environ['EVIL_IMPORTED'] = '1'\nThing = object\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("EVIL_IMPORTED", raising=False)
    registry_data = json.loads(pretrained.REGISTRY_FILE.read_text())
    registry_data["tiny"]["builder"] = builder
    write_registry(registry_data)
    with pytest.raises(CheckpointError, match="not one of the course's builders") as err:
        pretrained.load("tiny", device="cpu")
    assert err.value.field == "tiny.builder"
    assert "EVIL_IMPORTED" not in os.environ and "evil_builder_module" not in sys.modules


def test_every_allowed_builder_imports_and_says_how_it_is_built():
    for spec in pretrained.BUILDERS:
        builder = pretrained.builder_class(spec)
        fields = pretrained.build_fields(builder)
        assert fields and all(isinstance(f, str) for f in fields), spec


def test_missing_file_names_file_and_hash(registry):
    weights, _ = files_of("tiny")
    weights.unlink()
    expected = pretrained.info("tiny")["sha256"]["model.safetensors"]
    with pytest.raises(CheckpointError, match=rf"model.safetensors: is missing \(expected sha256 {expected}\)"):
        pretrained.load("tiny")


def test_truncated_file_is_refused(registry):
    weights, _ = files_of("tiny")
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="registry expects .* truncated, corrupted"):
        pretrained.load("tiny")


def test_edited_config_is_refused_by_its_hash(registry):
    _, config = files_of("tiny")
    config.write_text(json.dumps({"model": {}}))
    with pytest.raises(CheckpointError, match=str(config)):
        pretrained.load("tiny")


def test_tampered_weights_same_size_are_refused(registry):
    weights, _ = files_of("tiny")
    tensors = {k: torch.zeros_like(v) for k, v in pretrained.load_files("tiny")[0].items()}
    weights.write_bytes(save_safetensors_bytes(tensors))
    with pytest.raises(CheckpointError, match="sha256"):
        pretrained.load("tiny")


@pytest.mark.parametrize("field, value, where, trained_with", [
    ("timesteps", 1000, "timesteps", "50"),
    ("schedule", "cosine", "schedule", '"linear"'),
    ("model", {"dim": 2, "hidden": 8, "num_blocks": 1, "time_dim": 16}, "model.time_dim", "8"),
    ("model", {"dim": 2, "hidden": 8, "num_blocks": 1}, "model.time_dim", "8"),
    ("model", None, "model", '{"dim": 2, "hidden": 8'),
])
def test_a_config_edited_and_rehashed_still_disagrees_with_the_weights(registry, field, value, where, trained_with):
    """The weights carry the config they were trained with; an edit re-hashed into the registry is caught."""
    _, config_path = files_of("tiny")
    config = json.loads(config_path.read_text())
    config[field] = value
    rewrite(config_path, json.dumps(config).encode())
    with pytest.raises(CheckpointError, match="the weights were trained with " + trained_with) as err:
        pretrained.load("tiny", device="cpu")
    assert err.value.field == where and err.value.file.endswith("config.json")
    with pytest.raises(CheckpointError):
        pretrained.load_files("tiny")


def test_another_checkpoints_files_rehashed_are_refused(registry):
    folder, _ = registry
    publish_tiny(folder, seed=3, name="other")
    weights, _ = files_of("tiny")
    other_weights, _ = files_of("other")
    rewrite(weights, other_weights.read_bytes())
    with pytest.raises(CheckpointError, match="published as 'other', not 'tiny'"):
        pretrained.load("tiny", device="cpu")


def test_the_training_record_may_differ_from_the_weights(registry):
    """Only the fields the pipeline is built from are bound to the weights, not metrics or notes."""
    _, config_path = files_of("tiny")
    config = json.loads(config_path.read_text())
    config["metrics"] = {"loss": 0.25}
    rewrite(config_path, json.dumps(config).encode())
    assert pretrained.load("tiny", device="cpu").config["metrics"] == {"loss": 0.25}


def test_weights_without_a_config_record_are_refused(registry):
    weights, _ = files_of("tiny")
    tensors = pretrained.load_files("tiny")[0]
    rewrite(weights, save_safetensors_bytes(tensors, metadata={"name": "tiny"}))
    with pytest.raises(CheckpointError, match="carry no record of the config") as err:
        pretrained.load("tiny", device="cpu")
    assert err.value.field == "__metadata__.aigc_course.config"


@pytest.mark.parametrize("text, match", [
    ("{not json", "registry.json: is not valid JSON"),
    ("[1, 2]", "must hold a JSON object, got list"),
    ('{"tiny": 3}', "must be a JSON object, got int"),
    ('{"tiny": {"builder": "aigc_course.vae:VAE"}}', r"field 'tiny.sha256': must map exactly"),
    ('{"tiny": {"builder": "aigc_course.vae:VAE", "sha256": {"model.safetensors": "ab", "config.json": "cd"}}}',
     "must be 64 lowercase hex digits"),
])
def test_malformed_registry_is_a_checkpoint_error(registry, text, match):
    pretrained.REGISTRY_FILE.write_text(text)
    with pytest.raises(CheckpointError, match=match):
        pretrained.load("tiny")


@pytest.mark.parametrize("data, match", [
    (b"{not json", "config.json: is not valid JSON"),
    (b"[1, 2, 3]", "must hold a JSON object, got list"),
    (b"\xff\xfe", "is not valid JSON"),
])
def test_malformed_config_file_is_a_checkpoint_error(registry, data, match):
    _, config_path = files_of("tiny")
    rewrite(config_path, data)
    with pytest.raises(CheckpointError, match=match):
        pretrained.load("tiny", device="cpu")


def test_weights_that_are_not_safetensors_are_a_checkpoint_error(registry):
    weights, _ = files_of("tiny")
    rewrite(weights, b"\x80\x04 this is a pickle, not safetensors")
    with pytest.raises(CheckpointError, match="is not valid safetensors"):
        pretrained.load("tiny", device="cpu")


def commit_raw(folder, tensors, config, builder=BUILDER):
    """Write a checkpoint whose config record matches a bad config (what publish() refuses to do)."""
    record = {field: config[field] for field in pretrained.build_fields(pretrained.builder_class(builder))
              if field in config}
    weights = save_safetensors_bytes(publishing.tensors_for_saving(tensors), metadata={
        pretrained.CONFIG_RECORD_KEY: json.dumps(record)})
    publishing.commit("tiny", weights, publishing.json_bytes(config),
                      {"builder": builder, "description": "", "script": ""}, folder)


def _config(**changes):
    tensors, config = tiny_checkpoint()
    config = {**config, **changes}
    return tensors, {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize("config_changes, field, match", [
    ({"model": None}, "model", "is missing; Diffusion2DPipeline is built from it"),
    ({"model": [2, 8]}, "model", "must be a JSON object of MLPDenoiser's arguments"),
    ({"model": {"dim": 2, "hidden": 8, "num_blocks": 1, "time_dim": 8, "width": 3}}, "model", "unexpected keyword"),
    ({"model": {"dim": 2, "hidden": 16, "num_blocks": 1, "time_dim": 8}}, "tensor in_proj.weight",
     r"has shape \(8, 2\), but MLPDenoiser \(the model built from config field 'model'\) expects \(16, 2\)"),
    ({"model": {"dim": 2, "hidden": 8, "num_blocks": 2, "time_dim": 8}}, "tensor blocks.1.0.bias", "is missing"),
    ({"timesteps": "1000"}, "timesteps", "needs it as int"),
    ({"timesteps": True}, "timesteps", "needs it as int"),
    ({"timesteps": None}, "timesteps", "is missing"),
    ({"schedule": "quadratic"}, "schedule, timesteps", "cannot be built from it"),
    ({"timesteps": 0}, "schedule, timesteps", "cannot be built from it"),
])
def test_config_fields_that_do_not_build_are_checkpoint_errors(registry, config_changes, field, match):
    folder, _ = registry
    tensors, config = _config(**config_changes)
    commit_raw(folder, tensors, config)
    with pytest.raises(CheckpointError, match=match) as err:
        pretrained.load("tiny", device="cpu")
    assert err.value.field == field and err.value.checkpoint == "tiny"


def test_extra_tensors_are_a_checkpoint_error(registry):
    folder, _ = registry
    tensors, config = tiny_checkpoint()
    commit_raw(folder, {**tensors, "extra.weight": torch.zeros(2)}, config)
    with pytest.raises(CheckpointError, match="unexpected keys: \\['extra.weight'\\]"):
        pretrained.load("tiny", device="cpu")


def test_publish_refuses_a_config_that_does_not_build_before_writing(tmp_path):
    tensors, config = tiny_checkpoint()
    config["model"]["hidden"] = 16
    with pytest.raises(CheckpointError, match="expects"):
        publishing.publish("x", tensors, config, BUILDER, "d", "s", checkpoint_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_publish_refuses_unknown_builder_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="not one of the course's builders"):
        publishing.publish("x", {"a": torch.ones(1)}, {}, "no_such_module:Thing", "d", "s", checkpoint_dir=tmp_path)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("device, error, match", [
    ("meta", ValueError, "runs on 'cpu', 'cuda', 'cuda:N' or 'mps', not 'meta'"),
    ("xla", ValueError, "not 'xla'"),
    ("gpu-please", ValueError, "is not a device name"),
    (3, ValueError, "expected a device name"),
])
def test_undocumented_devices_are_refused(registry, device, error, match):
    with pytest.raises(error, match=match):
        pretrained.load("tiny", device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(registry):
    with pytest.raises(RuntimeError, match="device='cuda' asks for CUDA, but torch .* sees no CUDA device"):
        pretrained.load("tiny", device="cuda")


# --------------------------------------------------------------------------- publishing is one transaction


class Crash(BaseException):
    """A simulated power cut: this write and every later one fail, clean-up included."""


def crash_at(monkeypatch, step: int) -> dict:
    """Make the ``step``-th file-system write of the code under test crash (0-based)."""
    state = {"count": 0, "crashed": False}

    def wrap(fn, name):
        def inner(*args, **kwargs):
            if state["crashed"]:
                raise Crash(f"{name} after the crash")
            if state["count"] == step:
                state["crashed"] = True
                if name == "write":  # half the bytes reach the file, then the power goes
                    fd, data = args
                    fn(fd, bytes(data)[: len(data) // 2])
                raise Crash(f"crash at {name}")
            state["count"] += 1
            return fn(*args, **kwargs)
        return inner

    for module, name in [(os, "write"), (os, "fsync"), (os, "replace"), (os, "unlink"), (os, "mkdir"),
                         (shutil, "rmtree")]:
        monkeypatch.setattr(module, name, wrap(getattr(module, name), name))
    return state


def test_an_interrupted_publish_leaves_a_checkpoint_that_loads(registry, monkeypatch):
    folder, old = registry
    new, new_config = tiny_checkpoint(seed=1, timesteps=80)
    outcomes = []
    for step in range(100):
        shutil.rmtree(folder)
        publish_tiny(folder)  # the old checkpoint, fresh each time
        with monkeypatch.context() as patch:
            state = crash_at(patch, step)
            try:
                publishing.publish("tiny", new, new_config, BUILDER, "test", "tests", checkpoint_dir=folder)
            except Crash:
                pass
        pipe = pretrained.load("tiny", device="cpu")  # whatever happened, a complete checkpoint loads
        if same_weights(pipe, old):
            assert pipe.schedule.timesteps == 50
            outcomes.append("old")
        else:
            assert same_weights(pipe, new) and pipe.schedule.timesteps == 80
            outcomes.append("new")
        # the next publish recovers and leaves no debris behind
        publishing.publish("tiny", new, new_config, BUILDER, "test", "tests", checkpoint_dir=folder)
        assert same_weights(pretrained.load("tiny", device="cpu"), new)
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        version = pretrained.info("tiny")["version"]
        assert left == [".registry.lock", "registry.json", f"tiny/{version}/config.json",
                        f"tiny/{version}/model.safetensors"]
        if not state["crashed"]:
            break
    else:
        pytest.fail("publish did not finish within 100 file-system steps")
    # every crash before the registry's rename keeps the old checkpoint; after it, the new one
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    switch = outcomes.index("new")
    assert set(outcomes[:switch]) == {"old"} and set(outcomes[switch:]) == {"new"}
    assert switch >= 8  # weights and config written and synced, then the registry


def test_publish_keeps_other_checkpoints(registry):
    folder, old = registry
    publish_tiny(folder, seed=2, name="other")
    assert pretrained.available() == ["other", "tiny"]
    assert same_weights(pretrained.load("tiny", device="cpu"), old)


def test_tied_weights_are_stored_once_and_reloaded():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            self.head.weight = self.embed.weight

    model = Tied()
    saved = publishing.tensors_for_saving(model.state_dict())
    assert list(saved) == ["embed.weight"]
    fresh = Tied()
    pretrained.load_module_state(fresh, saved)
    assert torch.equal(fresh.head.weight, model.embed.weight)


def test_missing_untied_key_is_an_error():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="lacks keys"):
        pretrained.load_module_state(model, {"weight": torch.zeros(2, 2)})


def test_header_rewrite_keeps_every_tensor_byte():
    tensors = {"a": torch.randn(3, 5), "b": torch.arange(7), "c": torch.ones(2, dtype=torch.float16)}
    before = save_safetensors_bytes(tensors, metadata={"name": "x"})
    after = publishing.with_metadata(before, {"aigc_course.config": json.dumps({"model": {"k": [1, 2]}})})
    assert pretrained.safetensors_metadata(after) == {"name": "x", "aigc_course.config": '{"model": {"k": [1, 2]}}'}
    size_before = int.from_bytes(before[:8], "little")
    size_after = int.from_bytes(after[:8], "little")
    assert before[8 + size_before :] == after[8 + size_after :] and (8 + size_after) % 8 == 0
    from safetensors.torch import load
    assert all(torch.equal(load(after)[k], v) for k, v in tensors.items())


# --------------------------------------------------------------------------- the contract


def test_capture_config_records_every_argument():
    class Parent(torch.nn.Module):
        @capture_config
        def __init__(self, width: int, sizes=(1, 2), scale: float = 1.0):
            super().__init__()
            self.lin = torch.nn.Linear(width, width)

    class Child(Parent):
        @capture_config
        def __init__(self, depth: int = 3):
            super().__init__(4, sizes=(5,))

    assert Parent(2).config == {"width": 2, "sizes": [1, 2], "scale": 1.0}
    assert Child().config == {"depth": 3}  # a subclass records its own arguments
    rebuilt = Parent(**Parent(7, scale=2.0).config)
    assert rebuilt.config == {"width": 7, "sizes": [1, 2], "scale": 2.0}


def test_every_checkpointed_model_rebuilds_from_its_config():
    from aigc_course.diffusion.models import DigitUNet
    from aigc_course.gan.models import Discriminator, Generator, ImageDiscriminator, ImageGenerator
    from aigc_course.metrics.digits import DigitClassifier
    from aigc_course.vae import VAE

    for cls, kwargs in [(MLPDenoiser, {"hidden": 16}), (DigitUNet, {"channels": (8, 16)}), (Generator, {}),
                        (Discriminator, {"pack": 2}), (ImageGenerator, {}), (ImageDiscriminator, {}),
                        (DigitClassifier, {"width": 8}), (VAE, {"data": "2d", "latent_dim": 2})]:
        model = cls(**kwargs)
        json.dumps(model.config)  # checkpoints store it as JSON
        assert cls(**model.config).config == model.config, cls.__name__


def test_moved_names_still_work_with_a_warning(monkeypatch):
    with pytest.warns(DeprecationWarning, match="scripts/publishing.py"):
        assert pretrained.publish.__name__ == "publish"
    monkeypatch.delitem(sys.modules, "aigc_course.diffusion.pipeline", raising=False)
    with pytest.warns(DeprecationWarning, match="import from aigc_course.diffusion.pipelines"):
        from aigc_course.diffusion.pipeline import DigitsDDPMPipeline
    assert DigitsDDPMPipeline is pretrained.builder_class("aigc_course.diffusion.pipelines:DigitsDDPMPipeline")


def test_the_package_imports_without_posix_only_modules():
    """Publishing (and its fcntl lock) lives in scripts/: students on Windows import everything."""
    code = ("import sys; sys.modules['fcntl'] = None; sys.modules['msvcrt'] = None\n"
            "import aigc_course.pretrained, aigc_course.vae, aigc_course.gan, aigc_course.diffusion, "
            "aigc_course.alignment, aigc_course.metrics, aigc_course.autoregressive, aigc_course.rnn")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


# --------------------------------------------------------------------------- the shipped checkpoints


def test_shipped_folder_holds_only_live_checkpoint_files():
    expected = {"registry.json"}
    for name in pretrained.available():
        version = pretrained.info(name)["version"]
        expected |= {f"{name}/{version}/model.safetensors", f"{name}/{version}/config.json"}
    found = {str(p.relative_to(pretrained.CHECKPOINT_DIR)) for p in pretrained.CHECKPOINT_DIR.rglob("*")
             if p.is_file() and p.name != publishing.LOCK_FILE}
    assert found == expected  # no pickles, no stale versions, no debris


@pytest.mark.parametrize("name", pretrained.available())
def test_every_shipped_checkpoint_verifies_and_builds(name):
    entry = pretrained.info(name)
    assert entry["builder"] in pretrained.BUILDERS
    tensors, config = pretrained.load_files(name)
    assert tensors and isinstance(config, dict)
    obj = pretrained.load(name, device="cpu")
    assert not isinstance(obj, torch.nn.Module) or not obj.training


# --------------------------------------------------------------------------- one seed convention

SEEDED_CALLS = {
    "ring-gan": lambda pipe, seed: pipe.sample(20, seed=seed),
    "digits-cgan": lambda pipe, seed: pipe([1, 7], seed=seed),
    "digits-ddpm": lambda pipe, seed: pipe([3], num_inference_steps=2, sampler="ddim", eta=1.0, seed=seed),
    "digits-ddpm unconditional": lambda pipe, seed: pipe.sample(2, num_inference_steps=2, seed=seed),
    "grid-ddpm": lambda pipe, seed: pipe.sample(10, num_inference_steps=3, seed=seed),
    "digits-pixel-gpt": lambda pipe, seed: pipe.sample(1, seed=seed),
    "digits-vae": lambda pipe, seed: pipe.sample(3, seed=seed, mean=False),
    "code-gpt": lambda pipe, seed: pipe("def", max_new_tokens=6, seed=seed),
    "tiny-chat-sft": lambda pipe, seed: pipe.respond(["add 12 and 30"], temperature=1.0, seed=seed),
}


def _equal(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("key", SEEDED_CALLS)
def test_every_shipped_pipeline_follows_the_seed_convention(key):
    """An int seed is its own stream; None follows torch's global RNG; anything else names `seed`."""
    pipe = pretrained.load(key.split()[0], device="cpu")
    call = SEEDED_CALLS[key]
    first = call(pipe, 5)
    torch.rand(10)  # disturb the global RNG
    assert _equal(call(pipe, 5), first)
    torch.manual_seed(11)
    from_global = call(pipe, None)
    torch.manual_seed(11)
    assert _equal(call(pipe, None), from_global)  # seed_everything(s) makes seed=None repeatable
    for bad in (True, -1, 1.5, "0"):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            call(pipe, bad)


def test_greedy_decoding_leaves_the_global_rng_alone():
    chat, code = pretrained.load("tiny-chat-sft", device="cpu"), pretrained.load("code-gpt", device="cpu")
    state = torch.get_rng_state()
    chat("reverse the word cat")
    code("def", max_new_tokens=3, temperature=0.0)
    assert torch.equal(torch.get_rng_state(), state)


def test_vae_sample_generator_argument_is_deprecated():
    vae = pretrained.load("digits-vae-2d", device="cpu")
    with pytest.warns(DeprecationWarning, match="pass seed= instead"):
        old_style = vae.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(old_style, vae.sample(4, seed=3))
    with pytest.raises(ValueError, match="not both"), pytest.warns(DeprecationWarning):
        vae.sample(4, torch.Generator(), seed=3)


def test_options_passed_by_position_still_work_with_a_warning():
    gan = pretrained.load("ring-gan", device="cpu")
    with pytest.warns(DeprecationWarning, match="passing seed, rejection to GANSampler.sample by position"):
        old_style = gan.sample(30, 4, False)
    assert torch.equal(old_style, gan.sample(30, seed=4, rejection=False))
    with pytest.raises(TypeError, match="pass the options"):
        gan.sample(30, 4, False, "extra")
    with pytest.raises(TypeError, match="multiple values for 'seed'"), pytest.warns(DeprecationWarning):
        gan.sample(30, 4, seed=4)


def test_one_builder_and_one_way_to_record_a_config():
    """No class writes its own from_checkpoint or copies its arguments into a hand-written config."""
    import ast

    offenders = []
    for path in (ROOT / "aigc_course").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "from_checkpoint":
                offenders.append(f"{path.name}: def from_checkpoint")
            to_config = isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "config" and getattr(t.value, "id", "") == "self"
                for t in node.targets)
            # {"a": a, ...} or dict(a=a, ...); a pipeline's dict(config) copy is fine
            if to_config and (isinstance(node.value, ast.Dict) or isinstance(node.value, ast.Call)
                              and getattr(node.value.func, "id", "") == "dict" and node.value.keywords):
                offenders.append(f"{path.name}:{node.lineno}: self.config = a hand-written dict")
    assert not offenders
