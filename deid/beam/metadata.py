"""WriteMetadata: every written instance's attributes as one Parquet table, for SQL.

`metadata.parquet` (beside the manifest) has one row per written instance and one column per
attribute keyword of the PS3.6 data dictionary (deid.standard, this project's edition), so its
schema is the same whatever the run held, the way IDC tabulates DICOM metadata for BigQuery:

- text, dates, times, UIDs, names (PN as encoded: `Family^Given=...`), AT (`GGGGEEEE`): string;
  IS, SS, US, SL, UL, SV, UV: int64; DS, FL, FD: float64; an attribute the dictionary allows
  more than one value (VM other than 1) is a list of them. Present but empty: '' (text) or an
  empty list; absent: null.
- a sequence: its items in the DICOM JSON model (PS3.18 F.2) as a JSON string;
- bulk data (OB, OW, OF, OD, OL, OV, UN: Pixel Data among them) is left out;
- `OtherAttributes`: a JSON object, tag -> JSON model element, of what has no column (private
  elements, repeating groups such as (60xx,0010), tags outside the dictionary) or does not fit
  its column (several values in a VM 1 attribute, an integer past int64).

A row is read back from the de-identified bytes that were written (or from the staged file of
a streamed instance), never from the original: the table holds nothing the outputs do not.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from functools import cache

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from pydicom import dcmread
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from deid.beam import paths
from deid.engine.quiet import silence_pydicom
from deid.engine.stream import without_pixel_data
from deid.standard import element_by_keyword, keywords, repeating_mask

NAME = "metadata.parquet"
OTHER = "OtherAttributes"
ROW_GROUP_ROWS = 20_000  # rows buffered per Parquet row group (sparse dicts: a few kB each)
_LOG = logging.getLogger("deid.beam")
silence_pydicom()  # its warnings quote values

_BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_INT_VRS = frozenset({"IS", "SS", "US", "SL", "UL", "SV", "UV", "US/SS"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})
_NO_COLUMN_GROUPS = frozenset({0x0000, 0x0002, 0x0004, 0xFFFE})  # command, file meta, DICOMDIR
_INT64 = (-(1 << 63), (1 << 63) - 1)


@cache
def _is_bulk(vr: str) -> bool:
    """Whether a VR holds bulk data: the dictionary's 'OB/OW', pydicom's 'US or SS or OW'."""
    return not vr or any(part in _BULK_VRS for part in vr.replace(" or ", "/").split("/"))


@cache
def columns() -> dict[int, tuple[str, str, bool]]:
    """tag -> (keyword, kind, multi) for every attribute with a column, in tag order; kind is
    'str', 'int', 'float' or 'json' (a sequence)."""
    infos = (element_by_keyword(keyword) for keyword in keywords()
             if repeating_mask(keyword) is None)  # repeating groups go to OtherAttributes
    out = {}
    for info in sorted((i for i in infos if i is not None), key=lambda i: i.tag):
        if info.tag >> 16 in _NO_COLUMN_GROUPS or _is_bulk(info.vr):
            continue
        if info.vr == "SQ":
            kind = "json"
        elif info.vr in _INT_VRS:
            kind = "int"
        elif info.vr in _FLOAT_VRS:
            kind = "float"
        else:
            kind = "str"
        out[info.tag] = (info.keyword, kind, info.vr != "SQ" and info.vm != "1")
    return out


@cache
def schema() -> pa.Schema:
    """The table's schema: one column per keyword (columns()), then OtherAttributes."""
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "json": pa.string()}
    fields = [pa.field(keyword, pa.list_(types[kind]) if multi else types[kind])
              for keyword, kind, multi in columns().values()]
    return pa.schema([*fields, pa.field(OTHER, pa.string())])


# --- one instance ---------------------------------------------------------------------------

def _json_model(ds) -> dict:
    """A data set in the DICOM JSON model (PS3.18 F.2), bulk data left out."""
    out = {}
    for elem in ds:
        if _is_bulk(elem.VR):
            continue
        key = f"{elem.tag:08X}"
        try:
            if elem.VR == "SQ":
                out[key] = {"vr": "SQ", "Value": [_json_model(item) for item in elem.value]}
            else:
                out[key] = elem.to_json_dict(None, 0)
        except Exception as exc:  # a value the JSON model cannot hold: left out, named
            _LOG.warning("metadata: %s left out (%s)", elem.tag, type(exc).__name__)
    return out


def _values(elem) -> list:
    value = elem.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _cell(kind: str, value):
    """A value in its column's type; ValueError where it does not fit."""
    if kind == "int":
        number = int(value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise ValueError("past int64")
        return number
    if kind == "float":
        return float(value)
    if isinstance(value, BaseTag):  # AT, as the JSON model writes it
        return f"{int(value):08X}"
    return str(value)


def row_of(ds) -> dict:
    """The sparse metadata row of a parsed data set: column -> value, absent columns left out."""
    known = columns()
    row: dict = {}
    other: dict = {}
    for elem in ds:
        if _is_bulk(elem.VR):
            continue
        column = known.get(elem.tag)
        if column is None:
            other.update(_json_model([elem]))
            continue
        keyword, kind, multi = column
        try:
            if kind == "json":
                row[keyword] = json.dumps([_json_model(item) for item in elem.value or []],
                                          ensure_ascii=False)
                continue
            values = [_cell(kind, value) for value in _values(elem)]
            if multi:
                row[keyword] = values
            elif len(values) > 1:
                raise ValueError("several values")
            elif values:
                row[keyword] = values[0]
            else:
                row[keyword] = "" if kind == "str" else None
        except (ValueError, TypeError):  # does not fit its column
            other.update(_json_model([elem]))
        except Exception as exc:
            _LOG.warning("metadata: %s left out (%s)", elem.tag, type(exc).__name__)
    if other:
        row[OTHER] = json.dumps(other, ensure_ascii=False)
    return row


def row_from(source: bytes | str) -> dict:
    """The metadata row of a written instance: its bytes, or the path of its file (local or
    in a bucket: a streamed instance, read without its pixel data)."""
    if isinstance(source, str):
        with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            source = without_pixel_data(f)
    return row_of(dcmread(io.BytesIO(source)))


def table_of(rows: Iterable[dict]) -> pa.Table:
    """Sparse rows as a table of the full schema. The columns no row has share one array of
    nulls per type: 5,000 arrays of their own would take 20 kB per 1,000 rows each."""
    rows = list(rows)
    present = set().union(*rows) if rows else set()
    nulls = {t: pa.nulls(len(rows), type=t) for t in set(schema().types)}
    arrays = [pa.array([row.get(f.name) for row in rows], type=f.type) if f.name in present
              else nulls[f.type] for f in schema()]
    return pa.Table.from_arrays(arrays, schema=schema())


# --- the sink ---------------------------------------------------------------------------------

class _MetadataSink(filebasedsink.FileBasedSink):
    """Sparse rows in, one Parquet file out, in row groups of ROW_GROUP_ROWS (a row group per
    bundle would repeat the 5,000 columns' metadata in the footer for every bundle)."""

    def __init__(self, prefix: str):
        super().__init__(prefix, coder=None, file_name_suffix=".parquet", num_shards=1,
                         shard_name_template="", mime_type="application/x-parquet",
                         compression_type=CompressionTypes.UNCOMPRESSED)

    def open(self, temp_path):
        handle = super().open(temp_path)
        return handle, pq.ParquetWriter(handle, schema()), []

    def write_record(self, writer, row: dict):
        _, parquet, buffer = writer
        buffer.append(row)
        if len(buffer) >= ROW_GROUP_ROWS:
            parquet.write_table(table_of(buffer))
            buffer.clear()

    def close(self, writer):
        handle, parquet, buffer = writer
        if buffer:
            parquet.write_table(table_of(buffer))
        parquet.close()
        handle.close()


def merge(previous: str, new: str) -> None:
    """Add a run's table (``new``) to a collection's (``previous``, rewritten in place):
    column by column, without turning rows into objects; a row of an instance the run wrote
    again replaces the previous one."""
    import pyarrow.compute as pc

    def read(path: str) -> pa.Table:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return pq.read_table(pa.BufferReader(f.read()))

    added = read(new)
    kept = read(previous)
    kept = kept.filter(pc.invert(pc.is_in(kept["SOPInstanceUID"],
                                          value_set=added["SOPInstanceUID"])))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.concat_tables([kept, added]), sink, row_group_size=ROW_GROUP_ROWS)
    with FileSystems.create(previous, mime_type="application/x-parquet",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(sink.getvalue().to_pybytes())


class WriteMetadata(beam.PTransform):
    """Staged records of written instances in; `<folder>/metadata.parquet` out (a single
    file, written even when empty). A run adding to a collection writes its own rows apart,
    and the launcher merges them (`merge`), only when the run wrote something."""

    def __init__(self, folder: str):
        super().__init__()
        self._folder = folder

    def expand(self, written):
        return (written
                | "MetadataRow" >> beam.Map(lambda staged: staged.metadata)
                | "WriteParquet" >> beam.io.Write(
                    _MetadataSink(paths.join(self._folder, "metadata"))))
