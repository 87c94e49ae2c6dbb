"""One configuration resolver for every front-end: a base (the defaults, a preset or a saved
configuration file) with a plain mapping of changes on top, so a setting means the same on the command
line, in a batch manifest and in a studio request."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io import IMAGE_SUFFIXES
from impasto.regions import CONTENT_REGION


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields of a JSON configuration file (or of an output's whole metadata, as show-config prints it)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ImpastoError(f"configuration file {path} does not exist") from None
    except IsADirectoryError:
        raise ImpastoError(f"configuration {path} is a folder, not a JSON file") from None
    except OSError as e:
        raise ImpastoError(f"cannot read configuration {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ImpastoError(f"configuration {path} is not UTF-8 text (is it an image?)") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ImpastoError(f"configuration {path} is not valid JSON: {str(e)[:100]}") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # the whole metadata of an output, as show-config prints it
    if not isinstance(data, dict):
        raise ImpastoError(f"configuration {path} must be a JSON object of fields (got {type(data).__name__})")
    return data


def resolve(
    changes: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    base: Config | None = None,
) -> Config:
    """The run's Config: ``base`` (default ``Config()``), or a preset, or a configuration file, then
    ``changes`` (field name -> value, as JSON would give them) on top, validated.

    ``changes`` may be in the stored forms :meth:`Config.from_dict` reads (an impasto 0.1 ``extra``)."""
    if preset is not None and config_file is not None:
        raise ImpastoError("give a configuration file or a preset, not both")
    if preset is not None:
        from impasto.presets import preset_config

        base = preset_config(preset, allow_vgg19=True)
    elif config_file is not None:
        base = Config.from_dict(load_config_file(config_file))
    try:
        return Config.from_dict(dict(changes or {}), base=base)
    except (TypeError, ValueError, AttributeError) as e:  # Config names the field itself; this is a backstop
        raise ImpastoError(f"a configuration value has the wrong type ({' '.join(str(e).split())[:200]})") from None


def for_preset_run(cfg: Config, preset: str | None, *, allow_vgg19: bool) -> Config:
    """A resolved configuration made ready to run: a preset written for VGG16 is refused without VGG16
    weights unless ``allow_vgg19``, and then marked as run on the bundled VGG19."""
    if preset is None:
        return cfg
    from impasto import presets

    presets.check_weights(cfg, allow_vgg19=allow_vgg19)
    return presets.mark_vgg19_substitute(cfg)


def expand_styles(items: Sequence[str]) -> list[str]:
    """Style arguments with folders expanded to the images inside them (sorted by name)."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ImpastoError(f"style folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        else:
            out.append(item)
    return out


def resolve_region_styles(cfg: Config, styles: Sequence[str]) -> tuple[Config, list[str]]:
    """Regions may name a style by path: ``--region red=starry.jpg`` becomes ``red=N`` (its number among
    the styles); a path not among them is added to the style list."""
    out = list(styles)
    if not cfg.regions:
        return cfg, out
    resolved: list[str] = []
    for spec in cfg.regions:
        color, value = spec.rsplit("=", 1)
        value = value.strip()
        if value.lower() == CONTENT_REGION or (value.isascii() and value.isdigit()):
            resolved.append(spec)
            continue
        if not os.path.exists(value):
            raise ImpastoError(f"region {spec!r}: {value} is neither a style number, 'content' nor a file")
        idx = next((i for i, s in enumerate(out) if os.path.exists(s) and os.path.samefile(s, value)), None)
        if idx is None:
            out.append(value)
            idx = len(out) - 1
        resolved.append(f"{color}={idx + 1}")
    return cfg.replace(regions=tuple(resolved)), out


__all__ = ["expand_styles", "for_preset_run", "load_config_file", "resolve", "resolve_region_styles"]
