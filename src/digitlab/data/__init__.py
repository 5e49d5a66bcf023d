"""Datasets: reading, verifying and downloading the MNIST-format IDX files."""

from digitlab.data.datasets import DATASETS, SPLITS, Split, get_dataset, load_split
from digitlab.data.idx import DataError

__all__ = ["DATASETS", "SPLITS", "DataError", "Split", "get_dataset", "load_split"]
