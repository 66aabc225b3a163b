"""Tabular data sets (modality ``tabular``, rows of float features with ``feature_names``).

* ``fair`` — Fair (1978) extramarital-affairs survey, 6,366 rows, shipped inside the
  ``statsmodels`` wheel, so it runs offline. Task: did the respondent have an affair
  (``affairs > 0``, 32% yes). Eight features, each z-scored over all rows (no label
  involved), among them ``religious`` (1 = not ... 4 = strongly), the sensitive-feature
  candidate. No train/test split: the harness splits it (``test_fraction``).
* ``adult`` — UCI Adult census income (48,842 rows): ``>50K`` or not. Read from
  ``<data root>/adult/adult.data`` and ``adult.test``, downloaded when the network
  allows. Numeric columns are z-scored, categorical ones one-hot encoded as
  ``column=value`` (so ``columns: [marital-status]`` selects its whole group); rows
  with a missing value (``?``) are dropped.
"""

from __future__ import annotations

import contextlib
import urllib.request
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from fubench_builtins.datasets import DOWNLOAD_TIMEOUT_S

import fubench
from fubench import Dataset, DatasetLoader, DataUnavailable, Param

ADULT_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
ADULT_FILES = ("adult.data", "adult.test")
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def zscore(x: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0, std 1 (constant columns left at 0)."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


class Fair(DatasetLoader):
    """Fair's affairs survey (statsmodels), binary task, 8 z-scored features."""

    name = "fair"
    modality = "tabular"
    n_classes: ClassVar[int] = 2
    parameters = {}

    def load(self, root: Path) -> Dataset:
        try:
            import statsmodels
            from statsmodels.datasets import fair
        except ImportError:
            raise DataUnavailable(
                "the fair data set ships with statsmodels (pip install statsmodels)"
            ) from None
        frame = fair.load_pandas().data
        names = [c for c in frame.columns if c != "affairs"]
        x = torch.from_numpy(zscore(frame[names].to_numpy(np.float64))).float()
        y = torch.from_numpy((frame["affairs"].to_numpy() > 0).astype(np.int64))
        source = (
            f"statsmodels {statsmodels.__version__} datasets.fair "
            f"(Fair 1978, {len(y)} rows, no split)"
        )
        return Dataset(
            "fair",
            source,
            x,
            y,
            None,
            None,
            n_classes=2,
            modality="tabular",
            feature_names=names,
            class_names=["no affair", "affair"],
        )


class Adult(DatasetLoader):
    """UCI Adult census income (needs a one-time download of two files, ~5 MB)."""

    name = "adult"
    modality = "tabular"
    n_classes: ClassVar[int] = 2
    parameters = {"download": Param(True, bool, help="download from UCI when missing")}

    def load(self, root: Path) -> Dataset:
        folder = Path(root) / "adult"
        missing = [f for f in ADULT_FILES if not (folder / f).exists()]
        if missing and self.download:
            self._download(folder, missing)
        missing = [f for f in ADULT_FILES if not (folder / f).exists()]
        if missing:
            raise DataUnavailable(
                f"UCI Adult is not under {folder} and could not be downloaded; on a machine "
                f"with network fetch {', '.join(ADULT_URL + f for f in ADULT_FILES)} and "
                f"put them in {folder} (or set FUBENCH_DATA to a folder holding adult/)"
            )
        return self._read(folder)

    @staticmethod
    def _download(folder: Path, files: list[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            tmp = folder / f"{name}.part"
            # a missing network must not hang the run: the error path explains what to do
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(ADULT_URL + name, timeout=DOWNLOAD_TIMEOUT_S) as r:
                    tmp.write_bytes(r.read())
                tmp.replace(folder / name)

    @staticmethod
    def _read(folder: Path) -> Dataset:
        import pandas as pd

        frames = []
        for name in ADULT_FILES:
            frame = pd.read_csv(
                folder / name,
                header=None,
                names=ADULT_COLUMNS,
                skipinitialspace=True,
                na_values="?",
                comment="|",
            )
            frames.append(frame.dropna())
        n_train = len(frames[0])
        frame = pd.concat(frames, ignore_index=True)
        y = frame.pop("income").str.rstrip(".").eq(">50K").to_numpy(np.int64)
        numeric = zscore(frame[ADULT_NUMERIC].to_numpy(np.float64))
        onehot = pd.get_dummies(frame.drop(columns=ADULT_NUMERIC), prefix_sep="=")
        x = np.concatenate([numeric, onehot.to_numpy(np.float64)], axis=1)
        names = ADULT_NUMERIC + list(onehot.columns)
        x_t, y_t = torch.from_numpy(x).float(), torch.from_numpy(y)
        source = f"UCI Adult ({folder}; {n_train} train / {len(y) - n_train} test rows)"
        return Dataset(
            "adult",
            source,
            x_t[:n_train],
            y_t[:n_train],
            x_t[n_train:],
            y_t[n_train:],
            n_classes=2,
            modality="tabular",
            feature_names=names,
            class_names=["<=50K", ">50K"],
        )


@fubench.hookimpl
def fubench_datasets() -> list[type[DatasetLoader]]:
    return [Fair, Adult]
