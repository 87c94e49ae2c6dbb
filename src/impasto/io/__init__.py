"""Files in and out: images as tensors, the metadata they carry, and the one atomic writer."""

from impasto.io.atomic import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    check_derived_names,
    check_writable,
    file_sha256,
)
from impasto.io.images import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    OUTPUT_EXTENSIONS,
    LoadedImage,
    SavedResult,
    bound_metadata,
    check_output_path,
    default_content_path,
    default_style_path,
    load_image,
    read_metadata,
    resize_long_side,
    resize_to,
    save_image,
    save_result,
    scaled_size,
    to_pil,
    to_uint8,
)

__all__ = [
    "IMAGE_SUFFIXES", "MAX_PIXELS", "OUTPUT_EXTENSIONS", "LoadedImage", "SavedResult", "atomic_write",
    "atomic_write_bytes", "atomic_write_json", "bound_metadata", "check_derived_names", "check_output_path",
    "check_writable", "default_content_path", "default_style_path", "file_sha256", "load_image", "read_metadata",
    "resize_long_side", "resize_to", "save_image", "save_result", "scaled_size", "to_pil", "to_uint8",
]
