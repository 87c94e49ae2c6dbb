"""The tiled objective's Gram of a cropped NHWC map: band by band, equal to the plain Gram, and its pass-2
surrogate ⟨K, F Fᵀ⟩ keeps no copy of the map for the backward (issue 21: 2.3 GiB at a 3600 px tile)."""

from __future__ import annotations

import pytest
import torch

from impasto.losses import gram
from impasto.losses.gram import gram_banded, gram_inner, gram_raw


def _cropped(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A channels_last map [1, 6, 23, 19] with requires_grad and its crop [1, 6, 17, 12] (a tile's core
    inside its halo): a view of neither [B, C, HW] nor [B, HW, C]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 6, 23, 19, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    base.requires_grad_(True)
    crop = base[:, :, 3:20, 4:16]
    assert not crop.is_contiguous() and not crop.is_contiguous(memory_format=torch.channels_last)
    return base, crop


@pytest.fixture(autouse=True)
def _small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    # 6 channels x 12 columns x 8 bytes = 576 bytes a row: bands of 2 rows, so 9 bands over 17 rows.
    monkeypatch.setattr(gram, "BAND_BYTES", 2 * 6 * 12 * 8)


def test_banded_gram_of_a_crop_equals_the_plain_gram() -> None:
    _, crop = _cropped()
    assert gram._band_height(crop) == 2
    want = gram_raw(crop.detach().contiguous())
    torch.testing.assert_close(gram_banded(crop.detach()), want, rtol=1e-12, atol=1e-12)


def test_surrogate_value_and_gradient_match_autograd_through_the_plain_gram() -> None:
    base, crop = _cropped(1)
    k = torch.randn(1, 6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    value = gram_inner(crop, k)
    (got,) = torch.autograd.grad(value, base)
    base2, crop2 = _cropped(1)
    ref = (k * gram_raw(crop2)).sum()
    (want,) = torch.autograd.grad(ref, base2)
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-10)
    assert float(got[:, :, :3].abs().sum()) == 0.0  # the halo gets nothing from the core's Gram


def _saved_bytes_outside(fn: object, storage_of: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for the backward whose storage is not ``storage_of``'s."""
    own = storage_of.untyped_storage().data_ptr()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if t.untyped_storage().data_ptr() != own:
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()  # type: ignore[operator]
    return total


def test_surrogate_keeps_no_copy_of_the_map_for_the_backward() -> None:
    base, crop = _cropped()
    k = torch.randn(1, 6, 6, dtype=torch.float64)
    crop_bytes = crop.numel() * crop.element_size()
    through_plain = _saved_bytes_outside(lambda: (k * gram_raw(crop)).sum(), base)
    assert through_plain >= crop_bytes  # what the plain Gram keeps: a [B, HW, C] copy of the crop
    assert _saved_bytes_outside(lambda: gram_inner(crop, k), base) <= k.numel() * k.element_size()
