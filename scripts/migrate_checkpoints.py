"""Move checkpoints published in the old layout to the current one, without touching a weight.

    .venv/bin/python scripts/migrate_checkpoints.py          # migrate and verify
    .venv/bin/python scripts/migrate_checkpoints.py --check  # only report what would change

Old layout: ``<name>/model.safetensors`` and ``<name>/config.json``, builders named by any
import path, no config record in the weights. Current layout (see :mod:`aigc_course.pretrained`):
``<name>/<version>/...``, builders from the allow-list, and the weights' safetensors metadata
carrying the config fields they were trained with. Per checkpoint it

1. verifies both old files against the registry's sha256;
2. renames the builder to its canonical module and moves config fields the builders now read
   elsewhere (``digits-classifier``: ``width``/``dropout`` into ``model``; ``tiny-chat-reward``:
   ``reward_pool`` into ``model.pool``);
3. adds the config record to the weights' header only: the tensor bytes after the header are
   compared byte for byte, and every tensor is compared after loading both files;
4. builds the object from the new files, then publishes them with the same transaction as
   ``publishing.publish`` and removes the old files.

Checkpoints already in the current layout are left alone, so the script can be re-run, for
instance after merging a checkpoint retrained on another branch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from pathlib import Path

import torch
from publishing import commit, config_record, json_bytes, with_metadata
from safetensors.torch import load as load_safetensors_bytes

from aigc_course import pretrained
from aigc_course.pretrained import CONFIG_FILE, CONFIG_RECORD_KEY, WEIGHTS_FILE

BUILDER_NAMES = {  # old import path -> the allow-listed one
    "aigc_course.gan:GANSampler": "aigc_course.gan.pipelines:GANSampler",
    "aigc_course.gan:ConditionalGANPipeline": "aigc_course.gan.pipelines:ConditionalGANPipeline",
    "aigc_course.diffusion.pipeline:DigitsDDPMPipeline": "aigc_course.diffusion.pipelines:DigitsDDPMPipeline",
    "aigc_course.diffusion.pipeline:Diffusion2DPipeline": "aigc_course.diffusion.pipelines:Diffusion2DPipeline",
}


def migrate_config(name: str, config: dict) -> dict:
    """The old config with the fields its builder reads where it now reads them."""
    config = json.loads(json.dumps(config))
    if "model" not in config and {"width", "dropout"} <= set(config):  # digits-classifier
        config["model"] = {"width": config.pop("width"), "dropout": config.pop("dropout")}
    if "reward_pool" in config:  # tiny-chat-reward
        config["model"]["pool"] = config.pop("reward_pool")
    return config


def tensor_bytes(weights: bytes) -> tuple[dict, bytes]:
    """A safetensors file's tensor table (its header without metadata) and its tensor bytes."""
    (size,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + size])
    header.pop("__metadata__", None)
    return header, weights[8 + size :]


def migrate(name: str, entry: dict, root: Path, check: bool) -> str:
    old = root / name
    if not (old / WEIGHTS_FILE).is_file():
        pretrained.load_files(name)  # already migrated: it must verify as it is
        return "current layout, verified"
    weights = (old / WEIGHTS_FILE).read_bytes()
    config_bytes = (old / CONFIG_FILE).read_bytes()
    for data, file in ((weights, WEIGHTS_FILE), (config_bytes, CONFIG_FILE)):
        if hashlib.sha256(data).hexdigest() != entry["sha256"][file]:
            raise SystemExit(f"{name}: {old / file} does not match the registry's sha256; not migrated")
    builder = BUILDER_NAMES.get(entry["builder"], entry["builder"])
    config = migrate_config(name, json.loads(config_bytes))
    new_config_bytes = json_bytes(config)
    new_weights = with_metadata(weights, {"name": name, CONFIG_RECORD_KEY: config_record(builder, config)})

    before, after = tensor_bytes(weights), tensor_bytes(new_weights)
    if before != after:
        raise SystemExit(f"{name}: the tensors moved while rewriting the header; not migrated")
    old_tensors, new_tensors = load_safetensors_bytes(weights), load_safetensors_bytes(new_weights)
    if old_tensors.keys() != new_tensors.keys() or not all(
            old_tensors[k].dtype == new_tensors[k].dtype and torch.equal(old_tensors[k], new_tensors[k])
            for k in old_tensors):
        raise SystemExit(f"{name}: a tensor differs after rewriting the header; not migrated")
    pretrained.build(pretrained.builder_class(builder, name), new_tensors, config, name=name)

    changes = [f"tensor bytes identical ({len(before[1])} bytes, sha256 {hashlib.sha256(before[1]).hexdigest()[:12]})"]
    if builder != entry["builder"]:
        changes.append(f"builder -> {builder}")
    changes.append("config.json unchanged" if new_config_bytes == config_bytes else "config.json fields moved")
    if check:
        return "would migrate: " + "; ".join(changes)
    commit(name, new_weights, new_config_bytes,
           {"builder": builder, "description": entry.get("description", ""), "script": entry.get("script", "")},
           root)
    for file in (WEIGHTS_FILE, CONFIG_FILE):
        (old / file).unlink()
    pretrained.load_files(name)
    return "migrated: " + "; ".join(changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report what would change; write nothing")
    args = parser.parse_args()
    root = pretrained.CHECKPOINT_DIR
    raw = json.loads(pretrained.REGISTRY_FILE.read_text(encoding="utf-8"))
    renamed = {name: {**entry, "builder": BUILDER_NAMES.get(entry["builder"], entry["builder"])}
               for name, entry in raw.items()}
    if renamed != raw and not args.check:  # builder names first: the registry must validate to be updated
        from publishing import atomic_write_bytes

        atomic_write_bytes(pretrained.REGISTRY_FILE, json_bytes(renamed))
    for name, entry in sorted(raw.items()):
        print(f"{name:18s} {migrate(name, entry, root, args.check)}")


if __name__ == "__main__":
    main()
