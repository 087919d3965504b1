"""Datasets: the SCPR LastFM benchmark, MovieLens, and catalogs in the generic format."""

from crs.data.dataset import Dataset
from crs.data.errors import DataError, DataNotFoundError
from crs.data.loaders import load_dataset
from crs.data.location import DATA_DIR_ENV, resolve_data_dir

__all__ = ["DATA_DIR_ENV", "DataError", "DataNotFoundError", "Dataset", "load_dataset", "resolve_data_dir"]
