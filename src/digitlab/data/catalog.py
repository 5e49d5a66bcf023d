"""The datasets digitlab knows: their files, checksums and mirrors, where the files are
looked for, and how a file is verified.

MNIST and Fashion-MNIST share one format and four file names, so every feature
works for both. A file is accepted when its bytes match the published SHA-256 of
the distributed .gz, or, for a raw or re-compressed copy (Debian recompresses
Fashion-MNIST), when its uncompressed content matches the content SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from digitlab.config import Settings
from digitlab.data.idx import DataError, decompress

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FileSpec:
    name: str  # the distributed .gz name
    content_sha256: str  # of the uncompressed IDX bytes
    gz_sha256: str | None = None  # of the original .gz, where one is published

    @property
    def raw_name(self) -> str:
        return self.name.removesuffix(".gz")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, FileSpec]  # "train-images", "train-labels", "test-images", ...
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]


MNIST = DatasetSpec(
    name="mnist",
    files={
        "train-images": FileSpec(
            "train-images-idx3-ubyte.gz",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train-labels": FileSpec(
            "train-labels-idx1-ubyte.gz",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "test-images": FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "test-labels": FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    class_names=tuple(str(d) for d in range(10)),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files={
        "train-images": FileSpec(
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels": FileSpec(
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "test-images": FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "test-labels": FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_dirs(spec: DatasetSpec, settings: Settings) -> list[Path]:
    """Folders searched for the files, first the one downloads go to."""
    if spec.name == "mnist":
        return [settings.data_dir]
    return [settings.fashion_download_dir, settings.fashion_data_dir]


def find_file(spec: DatasetSpec, kind: str, settings: Settings) -> Path | None:
    f = spec.files[kind]
    for folder in dataset_dirs(spec, settings):
        for name in (f.name, f.raw_name):
            if (folder / name).is_file():
                return folder / name
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_content(path: Path, f: FileSpec) -> bytes:
    """The uncompressed IDX bytes of `path`, refused unless they match the checksums."""
    raw = path.read_bytes()
    if f.gz_sha256 and sha256_hex(raw) == f.gz_sha256:
        return gzip.decompress(raw)
    content = decompress(raw, path.name)
    digest = sha256_hex(content)
    if digest != f.content_sha256:
        raise DataError(
            f"{path}: checksum mismatch (content SHA-256 {digest[:16]}..., "
            f"expected {f.content_sha256[:16]}...): the file is corrupt or incomplete; "
            "delete it and run `digitlab data download`"
        )
    return content
