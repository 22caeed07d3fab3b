"""Visual Decathlon data: annotations and subsets (decathlon), image sources (sources), uint8 images and their
cache (images), and device-side normalisation and augmentation (augment)."""
from .augment import Normalise, RandomCropFlip, augmentation
from .decathlon import annotations, available, select
from .images import (CROP, SIZE, TABLE2_STATS, Split, channel_stats, decode, eval_side, hold_out, load, normalisation,
                     subset)
from .sources import HOW_TO_GET_DATA, ImageSource, PackSource, open_source
from .stats import whole_image_stats

__all__ = ["CROP", "HOW_TO_GET_DATA", "SIZE", "TABLE2_STATS", "ImageSource", "Normalise", "PackSource",
           "RandomCropFlip", "Split", "annotations", "augmentation", "available", "channel_stats", "decode",
           "eval_side", "hold_out", "load", "normalisation", "open_source", "select", "subset", "whole_image_stats"]
