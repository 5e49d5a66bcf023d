"""Datasets: reading, verifying and downloading the MNIST-format IDX files."""

from digitlab.data.catalog import DATASETS, SPLITS, get_dataset
from digitlab.data.datasets import Split, load_split
from digitlab.data.idx import DataError

__all__ = ["DATASETS", "SPLITS", "DataError", "Split", "get_dataset", "load_split"]
