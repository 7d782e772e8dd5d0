"""The shipped checkpoints: list, verify and load them.

Layout, under ``aigc_course/checkpoints/``::

    registry.json                          name -> builder, description, script, sha256 of both files
    <name>/<version>/model.safetensors     the weights (never pickled)
    <name>/<version>/config.json           the fields that build the object, and the training record

``<version>`` is derived from the two hashes (:func:`version_of`), so a re-published
checkpoint lands in a new folder beside the old one and the registry switches to it in one
rename. Publishing is repository tooling (``scripts/publishing.py``); the package only reads.

Every file is untrusted input until checked, and every failure is a :class:`CheckpointError`
naming the checkpoint, the file and the field:

* a name matches :data:`NAME_PATTERN`, and the folder and files it gives resolve inside the
  checkpoint folder (no ``..``, no absolute paths, no symbolic links out);
* a builder is one of :data:`BUILDERS`; nothing else is ever imported;
* both files match the registry's sha256 before anything parses them;
* the config agrees with the weights: ``model.safetensors`` carries, in its safetensors
  metadata (:data:`CONFIG_RECORD_KEY`), the config fields it was trained with (architecture,
  noise schedule, timesteps, tokenizer, ...). A ``config.json`` edited and re-hashed into the
  registry still disagrees with the weights and is refused.

Building (:func:`build`) is the same for every class. A **model** class (an ``nn.Module``) is
built from the config section ``"model"``: ``Class.from_config(section)`` when the class has
one (GPT and the LSTM take a config dataclass), else ``Class(**section)``. A **pipeline** class
names its parts, ``checkpoint_parts = {"model": DigitUNet}``, and any other config fields it
reads, ``checkpoint_settings = {"schedule": str, "timesteps": int}``; each part is built from
its section, gets the tensors stored under ``"<part>."`` (the part ``"model"`` gets the rest),
and the pipeline is ``Class(**parts, config=config)``, or ``Class.from_parts(config, **parts)``
when it needs more than that (a schedule, a tokenizer).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from torch import nn

from aigc_course.runtime import resolve_device

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
REGISTRY_FILE = CHECKPOINT_DIR / "registry.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CONFIG_RECORD_KEY = "aigc_course.config"  # safetensors metadata: the config fields the weights were trained with

#: Lowercase letters and digits in groups joined by single hyphens, at most 64 characters.
NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_NAME = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: The only classes a registry entry may name as its builder (``"module:Class"``).
BUILDERS = (
    "aigc_course.alignment.pipelines:ChatPipeline",
    "aigc_course.alignment.reward:RewardModel",
    "aigc_course.autoregressive:PixelGPTPipeline",
    "aigc_course.captioning.pipelines:CaptionPipeline",
    "aigc_course.diffusion.pipelines:Diffusion2DPipeline",
    "aigc_course.diffusion.pipelines:DigitsDDPMPipeline",
    "aigc_course.diffusion.pipelines:PixelTextToImagePipeline",
    "aigc_course.diffusion.pipelines:TextToImagePipeline",
    "aigc_course.diffusion.video_pipelines:TextToVideoPipeline",
    "aigc_course.gan.pipelines:ConditionalGANPipeline",
    "aigc_course.gan.pipelines:GANSampler",
    "aigc_course.gpt:GPTPipeline",
    "aigc_course.metrics.digits:DigitClassifier",
    "aigc_course.metrics.scenes:SceneCLIP",
    "aigc_course.metrics.scenes:SceneJudge",
    "aigc_course.rnn:CharLSTM",
    "aigc_course.speech.pipelines:TextToSpeechPipeline",
    "aigc_course.speech.recognizer:SpeechRecognizer",
    "aigc_course.vae:VAE",
)


class CheckpointError(RuntimeError):
    """A checkpoint or the registry is missing, truncated, tampered with or malformed.

    ``checkpoint``, ``file`` and ``field`` say where (each ``None`` when it does not apply).
    """

    def __init__(self, checkpoint: str | None, file: Path | str | None, field: str | None, problem: str):
        self.checkpoint, self.file, self.field = checkpoint, None if file is None else str(file), field
        where = [f"checkpoint {checkpoint!r}" if checkpoint is not None else "checkpoint registry"]
        if file is not None:
            where.append(f"file {file}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {problem}")


# --------------------------------------------------------------------------- the model and pipeline contract


def capture_config(init):
    """Decorate a model's ``__init__`` so that ``self.config`` records its arguments.

    ``self.config`` is a dict of every constructor argument, defaults filled in and tuples
    stored as lists (as JSON gives them back), so ``type(model)(**model.config)`` rebuilds the
    model: this is what checkpoints store and what :func:`build` calls.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        # set last, so a subclass's arguments replace those its __init__ passed to the parent
        self.config = {name: list(value) if isinstance(value, tuple) else value
                       for name, value in list(bound.arguments.items())[1:]}

    return wrapper


def keyword_options(*formerly_positional: str):
    """Deprecation shim for the calling convention ``pipe(condition, *, options..., seed=None)``.

    The options named here used to be positional too; a call that still passes them by
    position works, with a ``DeprecationWarning``, until the next release removes the shim.
    """
    def decorate(method):
        positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in inspect.signature(method).parameters.values())

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            extra = args[positional:]
            if extra:
                if len(extra) > len(formerly_positional):
                    raise TypeError(f"{method.__qualname__} takes {positional - 1} positional argument(s); "
                                    f"pass the options {list(formerly_positional)} by keyword")
                names = formerly_positional[: len(extra)]
                warnings.warn(f"passing {', '.join(names)} to {method.__qualname__} by position is "
                              "deprecated; pass them by keyword", DeprecationWarning, stacklevel=2)
                for name, value in zip(names, extra, strict=True):
                    if name in kwargs:
                        raise TypeError(f"{method.__qualname__} got multiple values for {name!r}")
                    kwargs[name] = value
            return method(*args[:positional], **kwargs)

        return wrapper

    return decorate


# --------------------------------------------------------------------------- the registry


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > _MAX_NAME or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"name must be a checkpoint name such as 'digits-ddpm' (lowercase letters, digits and "
            f"single hyphens, at most {_MAX_NAME} characters), got {name!r}"
        )
    return name


def _check_entry(name: Any, entry: Any, registry_file: Path) -> None:
    """Refuse a registry entry that is not exactly what :func:`load` expects."""
    def bad(field: str, problem: str) -> CheckpointError:
        return CheckpointError(name if isinstance(name, str) else None, registry_file, field, problem)

    try:
        _check_name(name)
    except ValueError as err:
        raise bad(repr(name), f"not a valid checkpoint name: {err}") from None
    if not isinstance(entry, dict):
        raise bad(name, f"must be a JSON object, got {type(entry).__name__}")
    builder = entry.get("builder")
    if builder not in BUILDERS:
        raise bad(f"{name}.builder", f"{builder!r} is not one of the course's builders: {', '.join(BUILDERS)}")
    hashes = entry.get("sha256")
    if not isinstance(hashes, dict) or set(hashes) != {WEIGHTS_FILE, CONFIG_FILE}:
        raise bad(f"{name}.sha256", f"must map exactly {WEIGHTS_FILE!r} and {CONFIG_FILE!r} to hashes")
    for file, digest in hashes.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise bad(f"{name}.sha256.{file}", f"must be 64 lowercase hex digits, got {digest!r}")
    for field in ("description", "script"):
        if not isinstance(entry.get(field, ""), str):
            raise bad(f"{name}.{field}", f"must be a string, got {entry[field]!r}")


def _read_registry(registry_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """The registry, every entry checked; ``{}`` when there is no registry file."""
    registry_file = REGISTRY_FILE if registry_file is None else Path(registry_file)
    if not registry_file.exists():
        return {}
    try:
        registry = json.loads(registry_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(None, registry_file, None, f"is not valid JSON: {err}") from err
    if not isinstance(registry, dict):
        raise CheckpointError(None, registry_file, None, f"must hold a JSON object, got {type(registry).__name__}")
    for name, entry in registry.items():
        _check_entry(name, entry, registry_file)
    return registry


def available() -> list[str]:
    """Names of the shipped checkpoints, sorted."""
    return sorted(_read_registry())


def info(name: str) -> dict[str, Any]:
    """The registry entry of ``name`` (builder, description, training script, hashes) and its ``version``."""
    _check_name(name)
    registry = _read_registry()
    if name not in registry:
        names = ", ".join(sorted(registry)) or "(none)"
        raise ValueError(f"unknown checkpoint {name!r}; available checkpoints: {names}")
    entry = dict(registry[name])
    entry["version"] = version_of(entry["sha256"])
    return entry


def version_of(hashes: Mapping[str, str]) -> str:
    """The version folder of a checkpoint: 16 hex digits of sha256(weights sha256 + config sha256)."""
    both = (hashes[WEIGHTS_FILE] + hashes[CONFIG_FILE]).encode("ascii")
    return hashlib.sha256(both).hexdigest()[:16]


def checkpoint_folder(name: str, hashes: Mapping[str, str], checkpoint_dir: Path | None = None) -> Path:
    """``<checkpoint_dir>/<name>/<version>``, refused unless it resolves inside ``checkpoint_dir``."""
    root = (CHECKPOINT_DIR if checkpoint_dir is None else Path(checkpoint_dir)).resolve()
    folder = root / _check_name(name) / version_of(hashes)
    if not folder.resolve().is_relative_to(root):
        raise CheckpointError(name, folder, None, f"resolves to {folder.resolve()}, outside {root}; not read")
    return folder


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_bytes(folder: Path, file: str, expected_sha256: str, name: str) -> bytes:
    """Read ``folder / file`` and check its hash before anything parses it."""
    path = folder / file
    if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(name, path, None, "is a link out of the checkpoint folder; not read")
    if not path.is_file():
        raise CheckpointError(
            name, path, None,
            f"is missing (expected sha256 {expected_sha256}). Reinstall the package or re-run the "
            f"script that trains {name!r}.",
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise CheckpointError(
            name, path, None,
            f"{len(data)} bytes with sha256 {actual}, but the registry expects {expected_sha256}. "
            "The file is truncated, corrupted or was changed; it was not loaded.",
        )
    return data


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header (``{}`` if it has none)."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size].decode("utf-8"))
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("__metadata__ is not a JSON object")
    return metadata


def _first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any]:
    """The dotted path of the first place where two JSON values differ, and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, _MISSING) != b.get(key, _MISSING):
                return _first_difference(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}")
    return path, a, b


_MISSING = "(missing)"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_config_record(name: str, config: dict, metadata: Mapping[str, str], weights: Path,
                         config_path: Path) -> dict[str, Any]:
    """Every config field recorded in the weights must equal the same field of ``config``."""
    if metadata.get("name", name) != name:  # a copy of another checkpoint's files, re-hashed
        raise CheckpointError(name, weights, "__metadata__.name",
                              f"these weights were published as {metadata['name']!r}, not {name!r}")
    field = f"__metadata__.{CONFIG_RECORD_KEY}"
    if CONFIG_RECORD_KEY not in metadata:
        raise CheckpointError(name, weights, field,
                              "the weights carry no record of the config they were trained with; "
                              "re-publish the checkpoint with scripts/publishing.py")
    try:
        record = json.loads(metadata[CONFIG_RECORD_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(name, weights, field, f"is not valid JSON: {err}") from err
    if not isinstance(record, dict):
        raise CheckpointError(name, weights, field, "must hold a JSON object")
    for key, trained_with in record.items():
        value = config.get(key, _MISSING)
        if value != trained_with:
            where, edited, original = _first_difference(value, trained_with, key)
            raise CheckpointError(
                name, config_path, where,
                f"config.json has {_short(edited)}, but the weights were trained with {_short(original)}. "
                "Restore config.json or retrain the checkpoint.",
            )
    return record


def _read_checkpoint(name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Entry, tensors (on the CPU), config and the weights' config record, all verified."""
    entry = info(name)
    folder = checkpoint_folder(name, entry["sha256"])
    weights = _verified_bytes(folder, WEIGHTS_FILE, entry["sha256"][WEIGHTS_FILE], name)
    config_bytes = _verified_bytes(folder, CONFIG_FILE, entry["sha256"][CONFIG_FILE], name)
    try:
        tensors = load_safetensors_bytes(weights)
        metadata = safetensors_metadata(weights)
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(name, folder / WEIGHTS_FILE, None, f"is not valid safetensors: {err}") from err
    try:
        config = json.loads(config_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(name, folder / CONFIG_FILE, None, f"is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(name, folder / CONFIG_FILE, None, f"must hold a JSON object, got {type(config).__name__}")
    record = _check_config_record(name, config, metadata, folder / WEIGHTS_FILE, folder / CONFIG_FILE)
    return entry, tensors, config, record


def load_files(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and read a checkpoint's tensors (on the CPU) and config, without building it."""
    _, tensors, config, _ = _read_checkpoint(name)
    return tensors, config


def builder_class(spec: str, checkpoint: str | None = None):
    """The class named by an allowed builder ``"package.module:Class"``; nothing else is imported."""
    if spec not in BUILDERS:
        raise CheckpointError(checkpoint, REGISTRY_FILE, "builder",
                              f"{spec!r} is not one of the course's builders: {', '.join(BUILDERS)}")
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(checkpoint, REGISTRY_FILE, "builder", f"{spec!r} cannot be imported: {err}") from err


def load(name: str, device: torch.device | str | None = None):
    """Load the shipped checkpoint ``name`` after verifying it (see the module docstring).

    Returns what its builder builds: a model in eval mode or a pipeline, on ``device``
    (default :func:`aigc_course.get_device`; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``).
    """
    device = resolve_device(device)  # a missing GPU is reported before anything is read
    entry, tensors, config, record = _read_checkpoint(name)
    builder = builder_class(entry["builder"], name)
    folder = checkpoint_folder(name, entry["sha256"])
    for field in build_fields(builder):
        if field not in config:
            raise CheckpointError(name, folder / CONFIG_FILE, field, f"is missing; {builder.__name__} is built from it")
        if field not in record:
            raise CheckpointError(name, folder / WEIGHTS_FILE, f"__metadata__.{CONFIG_RECORD_KEY}",
                                  f"has no record of {field!r}, which {builder.__name__} is built from; "
                                  "re-publish the checkpoint")
    return build(builder, tensors, config, device, name=name, folder=folder)


# --------------------------------------------------------------------------- the one builder


def _parts(builder) -> dict[str, type]:
    parts = getattr(builder, "checkpoint_parts", None)
    if parts is not None:
        return dict(parts)
    if isinstance(builder, type) and issubclass(builder, nn.Module):
        return {"model": builder}
    raise TypeError(f"{builder!r} is neither an nn.Module nor a pipeline with checkpoint_parts")


def build_fields(builder) -> list[str]:
    """The config fields ``builder`` is built from (recorded in the weights when published)."""
    return [*_parts(builder), *getattr(builder, "checkpoint_settings", {})]


def _split_tensors(tensors: Mapping[str, torch.Tensor], parts: Mapping[str, type], name: str | None,
                   weights_file: Path | str):
    """Tensors per part: ``"<part>.*"`` for each part, everything else for the part ``"model"``."""
    groups: dict[str, dict[str, torch.Tensor]] = {part: {} for part in parts}
    for key, value in tensors.items():
        part, _, rest = key.partition(".")
        if part in groups and part != "model":
            groups[part][rest] = value
        elif "model" in groups:
            groups["model"][key] = value
        else:
            raise CheckpointError(name, weights_file, f"tensor {key}",
                                  f"belongs to none of the parts {sorted(parts)}")
    return groups


def _construct(module_cls: type, section: Any, field: str, name: str | None, config_file: Path | str) -> nn.Module:
    if not isinstance(section, dict):
        raise CheckpointError(name, config_file, field,
                              f"must be a JSON object of {module_cls.__name__}'s arguments, got {_short(section)}")
    try:
        if hasattr(module_cls, "from_config"):
            return module_cls.from_config(dict(section))
        return module_cls(**section)
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(name, config_file, field, f"{module_cls.__name__} cannot be built from it: {err}") from err


def build(builder, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any],
          device: torch.device | str = "cpu", name: str | None = None, folder: Path | None = None):
    """Build ``builder`` (a model or pipeline class) from tensors and a config: the one builder.

    Used by :func:`load` on verified files and by ``scripts/publishing.py`` before it writes
    anything. Models end up on ``device`` in eval mode. A config that does not fit the class
    raises :class:`CheckpointError` naming the field (``name`` and ``folder`` say where the
    files came from, for the message).
    """
    config_file = CONFIG_FILE if folder is None else folder / CONFIG_FILE
    weights_file = WEIGHTS_FILE if folder is None else folder / WEIGHTS_FILE
    if not isinstance(config, Mapping):
        raise CheckpointError(name, config_file, None, f"must hold a JSON object, got {type(config).__name__}")
    config = dict(config)
    settings = dict(getattr(builder, "checkpoint_settings", {}))
    for field, kind in settings.items():
        value = config.get(field, _MISSING)
        if value is _MISSING or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise CheckpointError(name, config_file, field,
                                  f"{builder.__name__} needs it as {getattr(kind, '__name__', kind)}, got {_short(value)}")
    parts_spec = _parts(builder)
    groups = _split_tensors(tensors, parts_spec, name, weights_file)
    parts = {}
    for field, module_cls in parts_spec.items():
        if field not in config:
            raise CheckpointError(name, config_file, field, f"is missing; it holds {module_cls.__name__}'s arguments")
        module = _construct(module_cls, config[field], field, name, config_file)
        load_module_state(module, groups[field], checkpoint=name, field=field, file=weights_file)
        parts[field] = module.to(device).eval()
    try:
        if hasattr(builder, "from_parts"):
            return builder.from_parts(config, **parts)
        if getattr(builder, "checkpoint_parts", None) is None:
            return parts["model"]  # a model class: the model itself
        return builder(**parts, config=config)
    except (KeyError, TypeError, ValueError) as err:
        fields = ", ".join(settings) or None
        raise CheckpointError(name, config_file, fields, f"{builder.__name__} cannot be built from it: {err}") from err


def load_module_state(module: nn.Module, tensors: Mapping[str, torch.Tensor], *, checkpoint: str | None = None,
                      field: str | None = None, file: Path | str = WEIGHTS_FILE) -> nn.Module:
    """Load ``tensors`` into ``module``: every key and shape must match.

    A key missing from ``tensors`` is accepted only when its parameter is the very same
    tensor as one that was loaded (for example GPT's output head tied to the embedding).
    Errors name the tensor, both shapes and the config ``field`` the module was built from.
    """
    state = module.state_dict(keep_vars=True)
    built_from = f" (the model built from config field {field!r})" if field else ""
    unexpected = sorted(set(tensors) - set(state))
    if unexpected:
        raise CheckpointError(checkpoint, file, f"tensor {unexpected[0]}",
                              f"is not in {type(module).__name__}{built_from}; unexpected keys: {unexpected}")
    for key in [k for k in state if k in tensors]:  # in the module's order: the first layer that differs
        value = tensors[key]
        if tuple(value.shape) != tuple(state[key].shape):
            raise CheckpointError(
                checkpoint, file, f"tensor {key}",
                f"has shape {tuple(value.shape)}, but {type(module).__name__}{built_from} expects "
                f"{tuple(state[key].shape)}",
            )
    loaded_ptrs = {state[k].data_ptr() for k in tensors}
    untied = sorted(k for k in state if k not in tensors and state[k].data_ptr() not in loaded_ptrs)
    if untied:
        raise CheckpointError(checkpoint, file, f"tensor {untied[0]}",
                              f"is missing; {type(module).__name__}{built_from} lacks keys: {untied}")
    module.load_state_dict(dict(tensors), strict=False)
    return module


# --------------------------------------------------------------------------- moved out of the package

_MOVED_TO_SCRIPTS = ("publish", "atomic_write_bytes", "tensors_for_saving")


def __getattr__(attr: str):
    """``pretrained.publish`` and its helpers moved to ``scripts/publishing.py`` (repository tooling)."""
    if attr not in _MOVED_TO_SCRIPTS:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    warnings.warn(f"aigc_course.pretrained.{attr} moved to scripts/publishing.py (repository tooling); "
                  "import it from there", DeprecationWarning, stacklevel=2)
    path = Path(__file__).resolve().parents[1] / "scripts" / "publishing.py"
    if not path.is_file():
        raise AttributeError(f"{attr} is repository tooling: it lives in scripts/publishing.py of a source "
                             "checkout of the course, which this installation does not have")
    spec = importlib.util.spec_from_file_location("publishing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)
