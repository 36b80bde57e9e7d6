"""Run documents: what every run writes (`--format json`, `.opsrun/results/`, the state store, the reports'
`.json`) and reads back (the reports, `opsrun history show`), as pydantic models, one per kind:

    apply     ApplyDocument     every host at once, or a dry run       (opsrun.model.documents.apply)
    rollout   RolloutDocument   batches behind a balancer; a rollback  (opsrun.model.documents.apply)
    verify    VerifyDocument    a suite's tests on each host           (opsrun.model.documents.checks)
    drift     DriftDocument     what differs, since when               (opsrun.model.documents.checks)
    dr-test   DRDocument        the monthly DR test                    (opsrun.model.documents.dr)

Statuses and outcomes are `StrEnum`s (opsrun.model.documents.status): the JSON holds the same strings. `load`
reads any of them, as written today or by an older opsrun: a document without a `kind`, or with the
`deploy` some older readers expected, is an apply's; keys a model does not know are kept. `schema` is the
JSON Schema of what is written, published as docs/reference/run-document.schema.json.

This package holds data only: it imports nothing of opsrun's but itself. Secrets are masked on a document's
values (opsrun.model.secrets.redact_values) by whoever writes it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter

from opsrun.model.documents.apply import ApplyDocument, AutomaticRollback, ManualRollback, Rollback, RolloutDocument
from opsrun.model.documents.checks import DriftDocument, VerifyDocument
from opsrun.model.documents.dr import DRDocument

SCHEMA_PAGE = "docs/reference/run-document.schema.json"
SCHEMA_ID = "https://opsrun.invalid/reference/run-document.schema.json"


def kind_of(value: Any) -> str:
    """The kind of a document (a mapping or a model): as written, an apply's when it has none or "deploy"."""
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return "apply" if kind in (None, "deploy") else str(kind)


RunDocument = Annotated[
    Annotated[ApplyDocument, Tag("apply")]
    | Annotated[RolloutDocument, Tag("rollout")]
    | Annotated[VerifyDocument, Tag("verify")]
    | Annotated[DriftDocument, Tag("drift")]
    | Annotated[DRDocument, Tag("dr-test")],
    Discriminator(kind_of),
]
Document = ApplyDocument | RolloutDocument | VerifyDocument | DriftDocument | DRDocument
ADAPTER: TypeAdapter[Document] = TypeAdapter(RunDocument)


def load(doc: Mapping[str, Any] | Document) -> Document:
    """The model of a run's document, read from its JSON's dict (a model is returned as it is); pydantic's
    ValidationError names the key that does not read."""
    if isinstance(doc, Document):
        return doc
    return ADAPTER.validate_python(doc)


def dump(doc: Document) -> dict[str, Any]:
    """The document as JSON's dict, in the shape it has always had."""
    return doc.model_dump(mode="json")


def run_keys(run: Any, *names: str) -> dict[str, Any]:
    """The keys a run's document takes from the run: its run_id, status, inventory and seconds (to the
    millisecond) that every run has, and the attributes `names` that it has under the document's own names."""
    keys = {"run_id": run.run_id, "status": run.status, "inventory": run.inventory, "seconds": round(run.seconds, 3)}
    return keys | {name: getattr(run, name) for name in names}


def load_rollback(value: Mapping[str, Any] | ManualRollback | None) -> ManualRollback | None:
    """A rollout's `rollback` (None: none), from its dict or its model."""
    if value is None or isinstance(value, ManualRollback):
        return value
    rollback: ManualRollback = TypeAdapter(Rollback).validate_python(value)
    return rollback


def schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a run document as opsrun writes it: every key it always writes required."""
    found = ADAPTER.json_schema(mode="serialization")
    for model in found["$defs"].values():  # the models read keys they do not know; opsrun writes none
        if "properties" in model:
            model["additionalProperties"] = False
    kinds = {ref["$ref"].rpartition("/")[2]: ref for ref in found.pop("oneOf")}
    by_kind = {found["$defs"][name]["properties"]["kind"]["const"]: ref for name, ref in kinds.items()}
    return {  # each kind checked against its own model: an error names the key, not "none of five"
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "opsrun run document",
        "description": "What `--format json`, `.opsrun/results/` and `opsrun history show` hold for one run.",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": list(by_kind)}},
        "allOf": [{"if": {"properties": {"kind": {"const": k}}}, "then": ref} for k, ref in by_kind.items()],
        **found,
    }


__all__ = [
    "ADAPTER",
    "SCHEMA_PAGE",
    "ApplyDocument",
    "AutomaticRollback",
    "DRDocument",
    "Document",
    "DriftDocument",
    "ManualRollback",
    "RolloutDocument",
    "RunDocument",
    "VerifyDocument",
    "dump",
    "kind_of",
    "load",
    "load_rollback",
    "run_keys",
    "schema",
]
