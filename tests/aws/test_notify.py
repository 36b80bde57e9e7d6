"""Notifications: SNS against moto's server (the message read back through an SQS subscription, as a
real subscriber would), a webhook against a local HTTP receiver, and targets checked before any run."""

from __future__ import annotations

import json

import boto3
import pytest

from opsrun import notify
from opsrun.errors import ConfigError
from tests.aws.conftest import REGION

DOC = {
    "kind": "drift",
    "inventory": "lab",
    "status": "drift",
    "run_id": 12,
    "summary": {"hosts": 3, "drift": 1},
    "findings": [
        {
            "host": "web2",
            "deploy": "nginx",
            "operation": "nginx configuration",
            "verdict": "will_change",
            "status": "new",
        }
    ],
    "unreachable": {},
}


def test_webhook_gets_slack_text_and_the_summary(webhook_receiver):
    url, got, _ = webhook_receiver
    assert notify.send(notify.parse([f"webhook:{url}"]), DOC, "clean") == []
    [body] = got
    assert body["text"].startswith("opsrun drift lab: drift (was clean)\nhosts 3, drift 1\n")
    assert "- web2 nginx: nginx configuration (will_change, new)" in body["text"]
    assert body["opsrun"]["summary"] == {"hosts": 3, "drift": 1} and body["opsrun"]["previous_status"] == "clean"


def test_a_failing_target_is_reported_and_the_others_still_sent(webhook_receiver):
    url, got, answer = webhook_receiver
    answer["status"] = 500
    errors = notify.send(notify.parse([f"webhook:{url}", "webhook:http://127.0.0.1:9/closed"]), DOC, None)
    assert len(errors) == 2 and "HTTP Error 500" in errors[0] and "closed" in errors[1]
    assert len(got) == 1


def test_sns_message_reaches_a_subscriber(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="opsrun-drift")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    assert notify.send(notify.parse([f"sns:{topic}"]), DOC, "clean") == []
    [msg] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    body = json.loads(msg["Body"])
    assert body["Subject"] == "opsrun drift lab: drift (was clean)"
    assert "web2 nginx: nginx configuration" in body["Message"]


def test_an_unknown_sns_topic_is_an_error(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    [error] = notify.send(notify.parse([f"sns:arn:aws:sns:{REGION}:123456789012:nosuch"]), DOC, None)
    assert "NotFound" in error


@pytest.mark.parametrize("bad", ["slack:#ops", "sns:opsrun-drift", "webhook:ftp://x/y", "webhook:"])
def test_bad_targets_are_refused_before_anything_runs(bad):
    with pytest.raises(ConfigError) as err:
        notify.parse([bad])
    assert err.value.field == "--notify" and "webhook:https://" in (err.value.fix or "")


def test_sent_on_a_change_of_status_or_always():
    assert notify.should_send("drift", "clean", always=False)
    assert not notify.should_send("clean", "clean", always=False)
    assert notify.should_send("clean", "clean", always=True)
    assert notify.should_send("clean", None, always=False)  # the first run says where things stand
