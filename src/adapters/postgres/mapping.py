"""Row <-> record mapping by field name: records and tables use the same names on purpose."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

Record = TypeVar("Record")


def to_record(row: Any, record_type: type[Record], **overrides: Any) -> Record:
    values = {f.name: getattr(row, f.name) for f in fields(record_type) if f.name not in overrides}
    return record_type(**values, **overrides)


def values_of(record: Any, **overrides: Any) -> dict[str, Any]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    values.update(overrides)
    return values
