"""Run documents (opsrun.model.documents): the models every run writes and the reports and `history show` read.

tests/data/documents/ holds documents written by opsrun before the models (DeployRun.to_dict and its kin by
hand, and what the state store writes itself): they must still read, into the same models, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from opsrun.model import documents, secrets
from opsrun.model.documents.apply import ApplyDocument, AutomaticRollback, ManualRollback, RolloutDocument
from opsrun.model.documents.checks import DriftDocument, VerifyDocument
from opsrun.model.documents.dr import DRDocument
from opsrun.model.documents.status import ApplyStatus, Outcome, Recorded
from opsrun.model.results import DeployRun, HostRun, OperationResult
from opsrun.reports import as_json, render_report, report_name
from opsrun.reports.model import from_document

REPO = Path(__file__).resolve().parents[2]
OLD = REPO / "tests" / "data" / "documents"
MODEL_OF = {
    "apply": ApplyDocument,
    "apply-dry-run": ApplyDocument,
    "apply-kind-deploy": ApplyDocument,
    "apply-no-kind": ApplyDocument,
    "rollout-rolled-back": RolloutDocument,
    "rollout-not-rolled-back": RolloutDocument,
    "rollback": RolloutDocument,
    "verify": VerifyDocument,
    "drift": DriftDocument,
    "dr-test": DRDocument,
    "store-error": ApplyDocument,
    "store-dead-apply": ApplyDocument,
}
WRITTEN_BY_RUNS = [name for name in MODEL_OF if not name.startswith(("store-", "apply-kind", "apply-no"))]


def old(name: str) -> dict:
    return json.loads((OLD / f"{name}.json").read_text())


def schema() -> dict:
    return json.loads((REPO / documents.SCHEMA_PAGE).read_text())


def test_every_old_document_is_in_the_data_and_named_here():
    assert sorted(p.stem for p in OLD.glob("*.json")) == sorted(MODEL_OF)


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_an_old_document_reads_into_its_model(name):
    doc = documents.load(old(name))
    assert type(doc) is MODEL_OF[name]


@pytest.mark.parametrize("name", WRITTEN_BY_RUNS)
def test_an_old_document_is_written_back_as_it_was(name):
    assert documents.dump(documents.load(old(name))) == old(name)


def test_an_apply_is_written_apply_and_read_back_so_whatever_older_readers_called_it():
    for name in ("apply", "apply-kind-deploy", "apply-no-kind"):
        doc = documents.load(old(name))
        assert doc.kind == "apply" and report_name(doc) == "apply-lab-nginx"
        assert from_document(doc).title == "apply nginx on lab"
    assert documents.dump(documents.load(old("apply-kind-deploy")))["kind"] == "apply"


def test_statuses_are_enums_that_are_the_strings_they_always_were():
    doc = documents.load(old("rollout-rolled-back"))
    assert isinstance(doc, RolloutDocument)
    assert doc.status is ApplyStatus.FAILED and doc.status == "failed"
    assert doc.hosts["web3"].outcome is Outcome.NOT_REACHED
    assert json.loads(as_json.render(doc))["hosts"]["web3"]["outcome"] == "not_reached"
    assert isinstance(doc.rollback, AutomaticRollback) and doc.rollback.status == "failed"
    assert type(documents.load(old("rollback")).rollback) is ManualRollback


def test_what_the_store_wrote_itself_reads():
    dead = documents.load(old("store-dead-apply"))
    assert isinstance(dead, ApplyDocument) and dead.status is ApplyStatus.INTERRUPTED
    assert (dead.hosts["web2"].stage, dead.hosts["web2"].in_balancer) == ("apply", False)
    assert dead.plan is not None and dead.plan.rollback_to == "1a2b3c4d"
    errored = documents.load(old("store-error"))
    assert errored.status is Recorded.ERROR and getattr(errored, "error", None) == "KeyboardInterrupt: "


def test_a_key_the_model_does_not_know_is_kept():
    doc = {**old("verify"), "from_a_later_opsrun": {"x": 1}}
    assert documents.dump(documents.load(doc))["from_a_later_opsrun"] == {"x": 1}


def test_a_document_that_does_not_read_names_the_key():
    with pytest.raises(ValueError, match=r"hosts\.web1\.outcome"):
        documents.load({**old("rollback"), "hosts": {"web1": {"outcome": "half done"}}})


# ---------------------------------------------------------------------------------------------- the schema


def test_the_published_schema_is_the_models():
    assert schema() == documents.schema(), f"run `make reference` and commit {documents.SCHEMA_PAGE}"


@pytest.mark.parametrize("name", WRITTEN_BY_RUNS)
def test_every_kind_of_document_a_run_writes_validates_against_the_published_schema(name):
    jsonschema.Draft202012Validator(schema()).validate(old(name))


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_history_shows_every_old_document_in_the_shape_of_the_schema(name):
    jsonschema.Draft202012Validator(schema()).validate(documents.dump(documents.load(old(name))))


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        (lambda d: d["hosts"]["web1"].pop("outcome"), "'outcome' is a required property"),
        (lambda d: d.update(status="fine"), "'fine' is not valid"),
        (lambda d: d.update(left_out_of_balancer="web2"), "'web2' is not of type 'array'"),
        (lambda d: d.update(typo_key=1), "Additional properties are not allowed"),
    ],
)
def test_the_schema_refuses_a_document_that_is_not_one(broken, where):
    doc = old("rollout-rolled-back")
    broken(doc)
    found = best_match(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    assert found is not None and where in found.message


# ---------------------------------------------------------------------------------------------- redaction


def run_with(error: str) -> DeployRun:
    return DeployRun("lab", "nginx", False, [HostRun("web1", [OperationResult("Start app", False, False, error)])])


@pytest.mark.parametrize(
    "secret", ['pa"ss-word-1', "back\\slash-2", "pässwörd-3"], ids=["quote", "backslash", "umlaut"]
)
def test_a_secret_that_json_escapes_is_masked_all_the_same(secret):
    secrets.register(secret)
    run = run_with(f"login failed for {secret}")
    for fmt in ("json", "md", "html", "junit"):
        assert secret not in render_report(run, fmt).replace("\\u00e4", "ä").replace("\\u00f6", "ö")
    assert json.loads(as_json.render(run))["hosts"]["web1"]["operations"][0]["error"] == "login failed for ***"


def test_a_secret_that_reads_like_a_json_word_leaves_the_document_whole(monkeypatch):
    monkeypatch.setenv("OPSRUN_USE_SSH_KEY", "false")  # a variable whose name looks secret: its value is masked
    doc = json.loads(as_json.render(run_with("use false")))
    assert doc["dry_run"] is False and doc["allow_unreachable"] is False
    assert doc["hosts"]["web1"]["operations"][0]["error"] == "use ***"


def test_a_number_that_is_a_secret_is_masked(monkeypatch):
    monkeypatch.setenv("OPSRUN_PIN_SECRET", "482913")
    run = DeployRun("lab", "nginx", False, [], data={"pin": 482913})
    assert json.loads(as_json.render(run))["data"] == {"pin": "***"}
