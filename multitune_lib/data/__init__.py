"""Visual Decathlon data: annotations and subsets (decathlon), image sources (sources), uint8 images and their
cache (images), and device-side normalisation and augmentation (augment)."""
from .augment import Normalise, RandomCropFlip
from .decathlon import annotations, available, select
from .images import CROP, SIZE, TABLE2_STATS, Split, channel_stats, decode, eval_side, load, normalisation
from .sources import HOW_TO_GET_DATA, ImageSource, PackSource, open_source

__all__ = ["CROP", "HOW_TO_GET_DATA", "SIZE", "TABLE2_STATS", "ImageSource", "Normalise", "PackSource",
           "RandomCropFlip", "Split", "annotations", "available", "channel_stats", "decode", "eval_side", "load",
           "normalisation", "open_source", "select"]
