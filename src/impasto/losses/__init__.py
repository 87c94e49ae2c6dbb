"""Pure, typed loss functions of neural style transfer; none of them reads a Config.

Notation follows Gatys et al. (2016): a layer's response F has N = C channels ("filters") of M = H·W
positions; P is the content target at that layer; G and A are the Gram matrices of the generated and
the style image. Everything works on batches ``[B, C, H, W]`` (impasto always uses B = 1).

- :mod:`~impasto.losses.content`: content distance forms.
- :mod:`~impasto.losses.gram`: Gram matrices and the one normalisation table.
- :mod:`~impasto.losses.style`: per-layer style distances, W2 moments, histogram term, gradient normalisation.
- :mod:`~impasto.losses.tv`: total variation.
- :mod:`~impasto.losses.color`: colour transfer and luminance-only transfer (Gatys et al. 2017).
"""

from impasto.losses.content import content_loss
from impasto.losses.gram import GRAM_NORMS, gram_divisor, gram_matrix, gram_raw, masked_gram
from impasto.losses.style import style_layer_loss
from impasto.losses.tv import tv_loss

__all__ = [
    "GRAM_NORMS", "content_loss", "gram_divisor", "gram_matrix", "gram_raw", "masked_gram", "style_layer_loss",
    "tv_loss",
]
