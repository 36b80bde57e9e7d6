"""Notifications: SNS against moto's server (the message read back through an SQS subscription, as a
real subscriber would; a blip in front of it answered by a loopback proxy), a webhook against a local HTTP
receiver (Slack blocks, retried on a 5xx, not on a 4xx), and targets checked before any run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest

from opsrun import notify
from opsrun.errors import ConfigError
from tests.aws.conftest import REGION
from tests.conftest import QuietHandler, serve_in_thread

FAST = notify.Retry(attempts=3, base=0.05)  # the waits the default policy makes, made short

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


def test_webhook_gets_slack_blocks_the_plain_text_and_the_summary(webhook_receiver):
    url, got, _ = webhook_receiver
    links = notify.Links(12, None, "/var/lib/opsrun/reports/lab/drift-lab.html")
    sent = notify.send(notify.parse([f"webhook:{url}"]), DOC, "clean", links=links)
    assert sent.failed == [] and len(sent.sent) == 1
    [body] = got
    assert body["text"].startswith("opsrun drift lab: drift (was clean)\nhosts 3, drift 1\n")
    assert "- web2 nginx: nginx configuration (will_change, new)" in body["text"]
    assert body["opsrun"]["summary"] == {"hosts": 3, "drift": 1} and body["opsrun"]["previous_status"] == "clean"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert body["blocks"][2]["text"]["text"] == "*Top findings*\n• web2 nginx: nginx configuration (will_change, new)"
    assert body["blocks"][3]["elements"][0]["text"] == "report: /var/lib/opsrun/reports/lab/drift-lab.html"


def test_a_failing_target_is_reported_and_the_others_still_sent(webhook_receiver):
    url, got, answer = webhook_receiver
    answer["status"] = 500
    targets = notify.parse([f"webhook:{url}", "webhook:http://127.0.0.1:9/closed", f"webhook:{url}?second"])
    answer["script"] = [500, 500, 500, 200]  # the first target gives up after 3; the third is taken
    sent = notify.send(targets, DOC, None, retry=FAST)
    assert len(sent.failed) == 2 and len(sent.sent) == 1
    assert "HTTP 500" in sent.errors[0] and "gave up after 3 attempts" in sent.errors[0]
    assert "cannot connect" in sent.errors[1] and sent.failed[1].attempts == 3
    assert sent.failed[0].message["text"].startswith("opsrun drift lab: drift")  # kept, to be sent by hand
    assert len(got) == 4


def test_a_webhook_blip_is_retried_and_lands_once(webhook_receiver):
    url, got, answer = webhook_receiver
    answer["script"] = [502]
    sent = notify.send(notify.parse([f"webhook:{url}"]), DOC, "clean", retry=FAST)
    assert sent.failed == [] and sent.sent[0].endswith("after 2 attempts")
    assert len(got) == 2 and got[0] == got[1]  # the same message again, taken once


def test_a_webhook_refusal_is_reported_at_once(webhook_receiver):
    url, got, answer = webhook_receiver
    answer["status"] = 404
    sent = notify.send(notify.parse([f"webhook:{url}"]), DOC, "clean", retry=FAST)
    assert len(got) == 1 and sent.errors[0].endswith("HTTP 404 (refused: not retried)")


def test_sns_message_reaches_a_subscriber(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="opsrun-drift")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    assert notify.send(notify.parse([f"sns:{topic}"]), DOC, "clean").failed == []
    [msg] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    body = json.loads(msg["Body"])
    assert body["Subject"] == "opsrun drift lab: drift (was clean)"
    assert "web2 nginx: nginx configuration" in body["Message"]


def test_an_unknown_sns_topic_is_an_error_reported_at_once(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    [error] = notify.send(notify.parse([f"sns:arn:aws:sns:{REGION}:123456789012:nosuch"]), DOC, None).errors
    assert "NotFound" in error and error.endswith("(refused: not retried)")


@pytest.fixture
def blip(moto_url):
    """A proxy on loopback in front of moto: answers the requests in `script` itself ((status, body): a
    503, a throttling, a gateway's HTML page), then passes each request on to moto. Yields (its URL, the
    script, the requests it saw)."""
    script: list[tuple[int, bytes]] = []
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body.decode())
            if script:
                self.reply(*script.pop(0))
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(moto_url + self.path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    status, data, kept = answer.status, answer.read(), answer.headers.items()
            except urllib.error.HTTPError as exc:
                status, data, kept = exc.code, exc.read(), exc.headers.items()
            dropped = ("content-length", "transfer-encoding", "connection", "server", "date")
            self.reply(status, data, [(k, v) for k, v in kept if k.lower() not in dropped])

    with serve_in_thread(Handler) as url:
        yield url, script, seen


def aws_error(code: str) -> bytes:
    return (
        f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>blip</Message></Error>"
        "<RequestId>r1</RequestId></ErrorResponse>"
    ).encode()


def test_an_sns_blip_is_retried_and_the_message_lands_once(moto_url, blip, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="opsrun-blip")["TopicArn"]
    queue = sqs.create_queue(QueueName="blip")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    proxy, script, seen = blip
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
    script += [(503, aws_error("ServiceUnavailable")), (400, aws_error("Throttling")), (502, b"<html>502</html>")]
    sent = notify.send(notify.parse([f"sns:{topic}"]), DOC, "clean", retry=notify.Retry(attempts=4, base=0.05))
    assert sent.failed == [] and sent.sent == [f"sns:{topic} after 4 attempts"]
    assert len(seen) == 4 and all("Action=Publish" in body for body in seen)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["Subject"] for m in got] == ["opsrun drift lab: drift (was clean)"]


@pytest.mark.parametrize("bad", ["slack:#ops", "sns:opsrun-drift", "webhook:ftp://x/y", "webhook:"])
def test_bad_targets_are_refused_before_anything_runs(bad):
    with pytest.raises(ConfigError) as err:
        notify.parse([bad])
    assert err.value.field == "--notify" and "webhook:https://" in (err.value.fix or "")
    assert "pagerduty[:ENV_NAME]" in (err.value.fix or "")


def test_sent_on_a_change_of_status_or_always():
    assert notify.should_send("drift", "clean", always=False)
    assert not notify.should_send("clean", "clean", always=False)
    assert notify.should_send("clean", "clean", always=True)
    assert notify.should_send("clean", None, always=False)  # the first run says where things stand
