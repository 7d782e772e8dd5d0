"""The registry of shipped checkpoints.

Each checkpoint is a folder ``aigc_course/checkpoints/<name>/`` holding
``model.safetensors`` (weights, never pickled) and ``config.json``. The registry file
``checkpoints/registry.json`` records, for each name, the sha256 of both files and the
*builder*: an importable ``"module:Class"`` whose ``from_checkpoint(tensors, config,
device)`` returns the ready-to-use object (a model or a pipeline).

Scripts in ``scripts/`` train the checkpoints and call :func:`publish`, which writes
every file atomically (temporary file, fsync, rename), so a run that fails or is
killed half-way never leaves a broken or half-written checkpoint behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from aigc_course.runtime import get_device

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
REGISTRY_FILE = CHECKPOINT_DIR / "registry.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing, truncated, tampered with or malformed."""


# --------------------------------------------------------------------------- registry


def _read_registry(registry_file: Path | None = None) -> dict[str, dict[str, Any]]:
    registry_file = REGISTRY_FILE if registry_file is None else registry_file
    if not registry_file.exists():
        return {}
    return json.loads(registry_file.read_text(encoding="utf-8"))


def available() -> list[str]:
    """Names of the shipped checkpoints, sorted."""
    return sorted(_read_registry())


def info(name: str) -> dict[str, Any]:
    """The registry entry of ``name``: builder, description, training script, hashes."""
    registry = _read_registry()
    if name not in registry:
        names = ", ".join(sorted(registry)) or "(none)"
        raise ValueError(f"unknown checkpoint {name!r}; available checkpoints: {names}")
    return dict(registry[name])


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_bytes(path: Path, expected_sha256: str, name: str) -> bytes:
    """Read ``path`` and check its hash before anything parses it."""
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {name!r}: file {path} is missing (expected sha256 {expected_sha256}). "
            f"Reinstall the package or re-run the script that trains {name!r}."
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise CheckpointError(
            f"checkpoint {name!r}: file {path} ({len(data)} bytes) has sha256 {actual}, "
            f"but the registry expects {expected_sha256}. The file is truncated, corrupted "
            "or was changed; it was not loaded."
        )
    return data


def _import_builder(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CheckpointError(f"builder {spec!r} must look like 'package.module:Class'")
    target = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def load_files(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and read a checkpoint's tensors (on the CPU) and config, without building it."""
    entry = info(name)
    folder = CHECKPOINT_DIR / name  # read at call time so tests can point it elsewhere
    hashes = entry["sha256"]
    weights = _verified_bytes(folder / WEIGHTS_FILE, hashes[WEIGHTS_FILE], name)
    config_bytes = _verified_bytes(folder / CONFIG_FILE, hashes[CONFIG_FILE], name)
    try:
        tensors = load_safetensors_bytes(weights)
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"checkpoint {name!r}: {folder / WEIGHTS_FILE} is not valid safetensors: {err}") from err
    config = json.loads(config_bytes.decode("utf-8"))
    return tensors, config


def load(name: str, device: torch.device | str | None = None):
    """Load the shipped checkpoint ``name`` after verifying its sha256.

    Returns whatever the registered builder's ``from_checkpoint`` builds: a model in
    eval mode or a pipeline object. ``device`` defaults to :func:`aigc_course.get_device`.
    """
    entry = info(name)
    tensors, config = load_files(name)
    device = get_device() if device is None else torch.device(device)
    builder = _import_builder(entry["builder"])
    return builder.from_checkpoint(tensors, config, device=device)


# --------------------------------------------------------------------------- writing


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    temporary file is renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; shipped files must be world-readable
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def tensors_for_saving(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detach, move to CPU and copy each tensor; tensors that share storage (tied weights)
    are kept once, under the first name, as safetensors requires."""
    out: dict[str, torch.Tensor] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"tensors[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
        ident = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        if value.numel() and ident in seen:
            continue
        seen[ident] = key
        out[key] = value.detach().to("cpu").contiguous().clone()
    return out


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(
    name: str,
    tensors: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    builder: str,
    description: str,
    script: str,
    checkpoint_dir: Path | str | None = None,
) -> dict[str, Any]:
    """Write a checkpoint and record its hashes in the registry, each file atomically.

    ``tensors`` is usually ``model.state_dict()``; ``config`` must be JSON-serialisable
    and hold everything ``builder.from_checkpoint`` needs. Returns the registry entry.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain folder name, got {name!r}")
    _import_builder(builder)  # fail before writing anything if the builder is wrong
    checkpoint_dir = CHECKPOINT_DIR if checkpoint_dir is None else Path(checkpoint_dir)
    folder = checkpoint_dir / name
    weights = save_safetensors_bytes(tensors_for_saving(tensors), metadata={"name": name})
    config_bytes = _json_bytes(dict(config))
    entry = {
        "builder": builder,
        "description": description,
        "script": script,
        "bytes": len(weights),
        "sha256": {
            WEIGHTS_FILE: hashlib.sha256(weights).hexdigest(),
            CONFIG_FILE: hashlib.sha256(config_bytes).hexdigest(),
        },
    }
    registry_file = checkpoint_dir / REGISTRY_FILE.name
    with _locked(checkpoint_dir / ".registry.lock"):
        atomic_write_bytes(folder / WEIGHTS_FILE, weights)
        atomic_write_bytes(folder / CONFIG_FILE, config_bytes)
        registry = _read_registry(registry_file)
        registry[name] = entry
        atomic_write_bytes(registry_file, _json_bytes(registry))
    return entry


def load_module_state(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """Load ``tensors`` into ``module`` strictly, allowing only keys dropped as tied copies.

    A key missing from ``tensors`` is accepted only when its parameter is the very same
    tensor as one that was loaded (for example GPT's output head tied to the embedding).
    """
    result = module.load_state_dict(dict(tensors), strict=False)
    if result.unexpected_keys:
        raise CheckpointError(f"unexpected keys in checkpoint: {sorted(result.unexpected_keys)}")
    state = module.state_dict(keep_vars=True)
    loaded_ptrs = {state[k].data_ptr() for k in tensors if k in state}
    untied = [k for k in result.missing_keys if state[k].data_ptr() not in loaded_ptrs]
    if untied:
        raise CheckpointError(f"checkpoint lacks keys: {sorted(untied)}")
    return module
