"""Datasets: the MedMNIST catalogue, finding/downloading files, in-memory splits, batch loading."""

from .datasets import ArraySplit, ImageDataset, load_dataset, load_npz
from .download import candidate_dirs, fetch_medmnist
from .medmnist import MEDMNIST, DatasetInfo, get_info, list_datasets

__all__ = ["ArraySplit", "ImageDataset", "load_dataset", "load_npz", "candidate_dirs", "fetch_medmnist",
           "MEDMNIST", "DatasetInfo", "get_info", "list_datasets"]
