"""The two CSVs of a results folder (store.py says where they lie, formats.py their columns):
`summary.csv`, one row per finished unit, and `metrics.csv`, one row per measurement, written
from the unit records in a fixed order, compressed as committed (`metrics.csv.gz`), and read
whole and checked, or refused in one line naming the file and what to do.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from pathlib import Path

from .errors import LTHError
from .formats import (CSV_TYPES, METRICS_COLUMNS, SPLITS, SUMMARY_COLUMNS, atomic_write,
                      check_evals, damaged, summarize)
from .strategies import RUN_ORDER


class Tables:
    """The CSVs of the results folder `folder`, whose rows must be of `arch` and `dataset`
    where these are given."""

    def __init__(self, folder, arch: str | None = None, dataset: str | None = None):
        self.dir, self.arch, self.dataset = Path(folder), arch, dataset

    def write(self, hp, records: list) -> None:
        """metrics.csv and summary.csv from every unit record of an experiment on `hp`
        (`records` in the order rows are written: Store.records; a file that already holds
        that text is left alone)."""
        metrics, summary = io.StringIO(), io.StringIO()
        mw, sw = csv.writer(metrics, lineterminator="\n"), csv.writer(summary, lineterminator="\n")
        mw.writerow(METRICS_COLUMNS)
        sw.writerow(SUMMARY_COLUMNS)
        for r in records:
            head = [hp.arch, hp.dataset, r["strategy"], r["trial"], r["round"], r["pm"]]
            mw.writerows(head + list(e) for e in r["evals"])
            sw.writerow(head + summarize(r["evals"]))
        for name, text in (("metrics.csv", metrics), ("summary.csv", summary)):
            path = self.dir / name
            if not path.is_file() or path.read_text() != text.getvalue():
                atomic_write(path, text.getvalue())

    def compress_metrics(self) -> None:
        """metrics.csv.gz from metrics.csv, as committed: gzip level 9 with no name or time
        stamp, so the same CSV always gives the same bytes."""
        data = (self.dir / "metrics.csv").read_bytes()
        buffer = io.BytesIO()
        with gzip.GzipFile("", "wb", 9, buffer, mtime=0) as f:
            f.write(data)
        atomic_write(self.dir / "metrics.csv.gz", buffer.getvalue())

    def csv_path(self, name: str) -> Path:
        """summary.csv or metrics.csv, or its gzip-compressed copy (`NAME.gz`, as committed)."""
        path = self.dir / name
        if not path.exists() and path.with_name(name + ".gz").exists():
            return path.with_name(name + ".gz")
        if not path.exists():
            raise LTHError(f"no {name} in {self.dir}; run the experiment first")
        return path

    def open_csv(self, name: str):
        path = self.csv_path(name)
        return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else \
            open(path, newline="")

    def read_rows(self, name: str, columns: list) -> list:
        """The rows of summary.csv or metrics.csv(.gz), read whole and checked: the header is
        `columns`, every line complete and ends with a line break, every number a number, the
        units of this folder's network (else the file is refused: restore it from git)."""
        path, remedy = self.csv_path(name), "restore it from git (it is committed with a run)"
        try:
            with self.open_csv(name) as f:
                text = f.read()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            raise damaged(path, f"{type(e).__name__}", remedy) from None
        lines = text.replace("\r\n", "\n").split("\n")  # (a checkout may turn \n to \r\n)
        if lines[0].split(",") != columns or lines[-1] != "":
            raise damaged(path, "its header is not " + ",".join(columns) if
                          lines[0].split(",") != columns else "cut short", remedy)
        rows = []
        for n, values in enumerate(csv.reader(lines[1:-1]), start=2):
            try:
                row = {c: CSV_TYPES.get(c, str)(v) for c, v in zip(columns, values, strict=True)}
                ok = row["strategy"] in RUN_ORDER and row.get("split", "val") in SPLITS and \
                    row["arch"] == (self.arch or row["arch"]) and \
                    row["dataset"] == (self.dataset or row["dataset"]) and all(
                        math.isfinite(v) for v in row.values() if isinstance(v, float))
            except ValueError:
                ok = False
            if not ok:
                raise damaged(path, f"line {n} is not a row of {len(columns)} values", remedy)
            rows.append(row)
        return rows

    def read_metrics(self) -> list:
        """The unit records (strategy, trial, round, pm, evals) of metrics.csv(.gz), in file
        order: what units/ is rebuilt from."""
        records = {}
        for row in self.read_rows("metrics.csv", METRICS_COLUMNS):
            key = (row["strategy"], row["trial"], row["round"])
            record = records.setdefault(key, {"strategy": key[0], "trial": key[1],
                                              "round": key[2], "pm": row["pm"], "evals": []})
            record["evals"].append([row[c] for c in METRICS_COLUMNS[6:]])
        for record in records.values():
            if not check_evals(record["evals"]):
                raise damaged(self.csv_path("metrics.csv"), "a unit's measurements are "
                              "incomplete", "restore it from git (it is committed with a run)")
        return list(records.values())
