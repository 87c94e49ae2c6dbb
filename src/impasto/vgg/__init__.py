"""The frozen network: weights (formats, cache, the bundled VGG19), preprocessing, named feature maps."""

from impasto.vgg.features import VGGFeatures, canonical_layer, layer_names
from impasto.vgg.preprocess import CAFFE, TORCHVISION, Preprocess
from impasto.vgg.weights import (
    VGG_BLOCKS,
    VGG_WIDTHS,
    VGGWeights,
    bundled_weights_path,
    cache_dir,
    load_weights,
    structure_of,
)

__all__ = [
    "CAFFE", "TORCHVISION", "VGG_BLOCKS", "VGG_WIDTHS", "Preprocess", "VGGFeatures", "VGGWeights",
    "bundled_weights_path", "cache_dir", "canonical_layer", "layer_names", "load_weights", "structure_of",
]
