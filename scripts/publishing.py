"""Publish a checkpoint into ``aigc_course/checkpoints`` (repository tooling, not part of the package).

The training scripts import it (``scripts/`` is on ``sys.path`` when a script in it runs)::

    from publishing import publish
    publish("digits-ddpm", model.state_dict(), config, builder="aigc_course.diffusion.pipelines:DigitsDDPMPipeline",
            description="...", script="scripts/train_diffusion.py")

Publishing is one transaction; at every moment the registry names a complete checkpoint:

1. build the object from ``(tensors, config)`` in memory with :func:`aigc_course.pretrained.build`:
   a config that does not build, or weights that do not fit it, fail here, before any write;
2. serialise the weights with a record of the config fields they were trained with in their
   safetensors metadata (what :func:`aigc_course.pretrained.load` checks ``config.json`` against);
3. write both files into a new version folder ``<name>/<version>/`` beside the live one (each
   file: temporary file, fsync, rename), then fsync the folder;
4. switch: write the new registry to a temporary file, fsync, rename it over ``registry.json``;
5. remove the checkpoint's other version folders. A crash here leaves an unused folder,
   never a broken checkpoint; the next publish removes it.

A crash before step 4's rename leaves the registry, and so the old checkpoint, as it was.
Concurrent publishers take turns on a lock file next to the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors_bytes

from aigc_course import pretrained
from aigc_course.pretrained import CONFIG_FILE, CONFIG_RECORD_KEY, WEIGHTS_FILE

LOCK_FILE = ".registry.lock"


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


def json_bytes(obj: Any) -> bytes:
    """The repository's JSON style: sorted keys, two-space indent, UTF-8, final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def config_record(builder: str, config: Mapping[str, Any]) -> str:
    """The config fields ``builder`` is built from, as the JSON the weights' metadata carries."""
    fields = pretrained.build_fields(pretrained.builder_class(builder))
    missing = [field for field in fields if field not in config]
    if missing:
        raise ValueError(f"config lacks {missing}, which {builder} is built from")
    return json.dumps({field: config[field] for field in fields}, sort_keys=True, separators=(",", ":"))


def with_metadata(weights: bytes, metadata: Mapping[str, str]) -> bytes:
    """``weights`` (a safetensors file) with ``metadata`` added to its header; tensor bytes unchanged.

    The header is JSON whose tensor offsets count from the end of the header, so rewriting it
    (padded with spaces to 8 bytes, as safetensors does) leaves every tensor's bytes in place.
    """
    (size,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + size])
    header["__metadata__"] = {**(header.get("__metadata__") or {}), **metadata}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + weights[8 + size :]


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX; Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    temporary file is renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # shipped files are world-readable
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """One publisher at a time (an OS lock, released even if the process dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def commit(name: str, weights: bytes, config_bytes: bytes, entry: Mapping[str, Any],
           checkpoint_dir: Path | str | None = None) -> dict[str, Any]:
    """Steps 3-5 of the module docstring for already serialised files; returns the registry entry.

    ``entry`` holds ``builder``, ``description`` and ``script``; the hashes and size are added here.
    """
    pretrained._check_name(name)
    checkpoint_dir = pretrained.CHECKPOINT_DIR if checkpoint_dir is None else Path(checkpoint_dir)
    entry = {**entry, "bytes": len(weights), "sha256": {
        WEIGHTS_FILE: hashlib.sha256(weights).hexdigest(),
        CONFIG_FILE: hashlib.sha256(config_bytes).hexdigest(),
    }}
    registry_file = checkpoint_dir / pretrained.REGISTRY_FILE.name
    pretrained._check_entry(name, entry, registry_file)
    folder = pretrained.checkpoint_folder(name, entry["sha256"], checkpoint_dir)
    with _locked(checkpoint_dir / LOCK_FILE):
        registry = pretrained._read_registry(registry_file)  # refuses a malformed registry
        atomic_write_bytes(folder / WEIGHTS_FILE, weights)
        atomic_write_bytes(folder / CONFIG_FILE, config_bytes)
        registry[name] = entry
        atomic_write_bytes(registry_file, json_bytes(registry))  # the switch
        for other in sorted(folder.parent.iterdir()):
            if other.is_dir() and other.name != folder.name:
                shutil.rmtree(other)
    return entry


def publish(
    name: str,
    tensors: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    builder: str,
    description: str,
    script: str,
    checkpoint_dir: Path | str | None = None,
) -> dict[str, Any]:
    """Publish a checkpoint in one transaction (see the module docstring); returns its registry entry.

    ``tensors`` is usually ``model.state_dict()`` (a pipeline's parts other than ``"model"`` go
    under ``"<part>."``); ``config`` must be JSON-serialisable and hold every field ``builder``
    is built from (:func:`aigc_course.pretrained.build_fields`), next to any training record.
    """
    pretrained._check_name(name)
    builder_cls = pretrained.builder_class(builder, name)
    saved = tensors_for_saving(tensors)
    config_bytes = json_bytes(dict(config))
    config = json.loads(config_bytes)  # exactly what load() will read back
    pretrained.build(builder_cls, saved, config, device="cpu", name=name)  # fails before any write
    metadata = {"name": name, CONFIG_RECORD_KEY: config_record(builder, config)}
    weights = save_safetensors_bytes(saved, metadata=metadata)
    entry = {"builder": builder, "description": description, "script": script}
    return commit(name, weights, config_bytes, entry, checkpoint_dir)
