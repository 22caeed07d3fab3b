"""What the study keeps on disk: atomic files, source checkpoints and the results store."""
