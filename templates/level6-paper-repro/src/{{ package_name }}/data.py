"""The datasets, their checksums, and the train/test split.

Every dataset has a sha256 in data/MANIFEST.sha256 (`<sha256>  <name>`, one a line),
checked before any run starts: a changed or missing dataset stops the sweep with one
line instead of producing numbers nobody can compare. `digits` is the 8x8 handwritten
digits that scikit-learn ships (1,797 images, no download), read from scikit-learn's own
file; its checksum covers the numbers as loaded, whatever the file's compression.
`optdigits` is the full
UCI set it comes from (5,620 images), fetched only by the explicit `fetch-full`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic, write_text_atomic
from .errors import ConfigError, ServiceError

MANIFEST = Path("data") / "MANIFEST.sha256"
FULL_DIR = Path("data") / "full"
# The UCI Machine Learning Repository's Optical Recognition of Handwritten Digits
# (CC BY 4.0); scikit-learn's digits are its test part.
FULL_URLS = {
    "optdigits.tra": "https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/optdigits.tra",
    "optdigits.tes": "https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/optdigits.tes",
}


@dataclass
class Dataset:
    x: np.ndarray  # float32 features, one row per sample
    y: np.ndarray  # int64 labels from 0
    num_classes: int


def _digits() -> Dataset:
    # Read from scikit-learn's own copy, without importing scikit-learn (seconds).
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "dataset digits: scikit-learn, which ships it, is not installed"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "datasets"
        / "data"
        / "digits.csv.gz"
    )
    try:
        with gzip.open(path, "rt", encoding="ascii") as file:
            table = np.loadtxt(file, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as error:
        raise ConfigError(f"dataset digits: cannot read {path} ({error})") from None
    return Dataset(table[:, :-1], table[:, -1], 10)


def _optdigits() -> Dataset:
    parts = []
    for name in FULL_URLS:
        path = FULL_DIR / name
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing; `fetch-full` downloads the full data set"
            )
        try:
            parts.append(np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2))
        except ValueError as error:
            raise ConfigError(
                f"{path}: not 65 comma-separated numbers a line ({error})"
            ) from None
    table = np.concatenate(parts)
    return Dataset(table[:, :-1], table[:, -1], 10)


DATASETS: dict[str, Callable[[], Dataset]] = {
    "digits": _digits,
    "optdigits": _optdigits,
}


def checksum(dataset: Dataset) -> str:
    """sha256 over the shape and the values as bytes (features and labels as uint8)."""
    digest = hashlib.sha256(f"{dataset.x.shape[0]}x{dataset.x.shape[1]}\n".encode())
    digest.update(np.ascontiguousarray(dataset.x, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(dataset.y, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; it lists each dataset's sha256") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name.strip():
            raise ConfigError(f"{path}:{number}: expected '<sha256>  <name>'")
        entries[name.strip()] = digest
    return entries


def load(name: str, manifest: Path = MANIFEST) -> Dataset:
    """The dataset `name`, after checking it against the manifest."""
    if name not in DATASETS:
        raise ConfigError(f"data.name={name}: expected one of {', '.join(DATASETS)}")
    expected = read_manifest(manifest).get(name)
    if expected is None:
        raise ConfigError(f"{manifest}: no sha256 for the dataset {name}")
    dataset = DATASETS[name]()
    actual = checksum(dataset)
    if actual != expected:
        raise ConfigError(
            f"dataset {name}: sha256 {actual[:12]}... does not match {manifest} "
            f"({expected[:12]}...); the data changed"
        )
    return dataset


def split(
    dataset: Dataset, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/test split, scaled to [0, 1]: x_train, x_test, y_train, y_test.

    Each class puts round(test_fraction * its size) samples, drawn with `seed`, into
    the test split, so both splits keep the class proportions.
    """
    generator = np.random.default_rng(seed)
    test = np.zeros(len(dataset.y), dtype=bool)
    for label in np.unique(dataset.y):
        members = np.flatnonzero(dataset.y == label)
        chosen = generator.permutation(members)[: round(test_fraction * len(members))]
        test[chosen] = True
    # An empty split failed the run later with a ZeroDivisionError or a DataLoader's
    # message that named neither the setting nor the split.
    for name, members in (("test", test), ("training", ~test)):
        if not members.any():
            raise ConfigError(
                f"data.test_fraction={test_fraction}: leaves the {name} split of "
                f"{len(test)} samples empty"
            )
    x = dataset.x.astype(np.float32) / 16.0
    y = dataset.y.astype(np.int64)
    return x[~test], x[test], y[~test], y[test]


def fetch_full(urls: dict[str, str] = FULL_URLS, manifest: Path = MANIFEST) -> str:
    """Download the full data set, then check it against the manifest.

    UCI publishes no checksum: the first fetch records one in the manifest (commit it),
    and every later fetch and run must match it.
    """
    for name, url in urls.items():
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                write_bytes_atomic(FULL_DIR / name, response.read())
        except (urllib.error.URLError, OSError) as error:
            raise ServiceError(f"cannot download {url}: {error}") from None
    actual = checksum(_optdigits())
    entries = read_manifest(manifest)
    expected = entries.get("optdigits")
    if expected is None:
        text = manifest.read_text(encoding="utf-8")
        write_text_atomic(manifest, f"{text.rstrip()}\n{actual}  optdigits\n")
        return f"optdigits: recorded sha256 {actual} in {manifest}; commit it"
    if actual != expected:
        raise ConfigError(
            f"optdigits: sha256 {actual[:12]}... does not match {manifest}"
        )
    return f"optdigits: sha256 matches {manifest}"
