"""Reading files as the user wrote them: delimiters, encodings, Excel, Parquet, and broken files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmmlib.data.reader import read_raw
from mmmlib.errors import InputError, UsageError

ROWS = [["week", "revenue", "tv spend"], ["2024-01-01", "100", "5"], ["2024-01-08", "120", "0"]]


def _write(path: Path, delim: str, encoding: str, bom: bool = False) -> Path:
    text = "\n".join(delim.join(r) for r in ROWS) + "\n"
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_any_delimiter(tmp_path: Path, delim: str) -> None:
    raw = read_raw(_write(tmp_path / "d.csv", delim, "utf-8"))
    assert raw.columns == ["week", "revenue", "tv spend"]
    assert raw.delimiter == delim
    assert raw.frame.iloc[1].tolist() == ["2024-01-08", "120", "0"]


def test_utf8_bom_is_not_part_of_the_header(tmp_path: Path) -> None:
    raw = read_raw(_write(tmp_path / "bom.csv", ",", "utf-8", bom=True))
    assert raw.columns[0] == "week"


def test_latin1(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv"
    path.write_bytes("semaine;chiffre d'affaires;télé\n2024-01-01;100;5\n2024-01-08;120;0\n".encode("latin-1"))
    raw = read_raw(path)
    assert raw.columns == ["semaine", "chiffre d'affaires", "télé"]
    assert raw.encoding in {"cp1252", "latin-1"}


def test_xlsx_and_parquet_match_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"week": pd.to_datetime(["2024-01-01", "2024-01-08"]), "revenue": [100.0, 120.5], "tv": [5, 0]}
    )
    frame.to_excel(tmp_path / "d.xlsx", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.xlsx", "d.parquet"):
        raw = read_raw(tmp_path / name)
        assert raw.frame["week"].tolist() == ["2024-01-01", "2024-01-08"]
        assert raw.frame["revenue"].tolist() == ["100", "120.5"]
        assert raw.frame["tv"].tolist() == ["5", "0"]


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"week,revenue,tv\n", "no data rows"),
        (b"PK\x03\x04\x00\x00binary", "binary"),
    ],
)
def test_broken_files_are_refused_with_a_sentence(tmp_path: Path, content: bytes, phrase: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=phrase):
        read_raw(path)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_raw(tmp_path / "nope.csv")


def test_row_with_too_many_fields_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("week,revenue\n2024-01-01,1\n2024-01-08,2,3\n")
    with pytest.raises(InputError, match="Row 3 has 3 fields"):
        read_raw(path)


def test_broken_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match=r"not a readable \.xlsx"):
        read_raw(path)
