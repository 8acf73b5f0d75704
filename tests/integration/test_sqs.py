"""faasbox's queues through boto3's sqs client and the AWS CLI: send, receive (long
polling), delete, visibility, redrive to a dead-letter queue, attributes, errors; queues
declared in serverless.yml, an `sqs` event source with batch item failures, and async
failures delivered to queues."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.async_support import Collector
from tests.support import SERVICES, RunningServer, aws_cli_path, lambda_client, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "sqs"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def sqs_client(server: RunningServer, secret: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    assert server.credentials is not None
    return boto3.client(
        "sqs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.credentials.access_key_id,
        aws_secret_access_key=secret or server.credentials.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )


@pytest.fixture(scope="module")
def sqs(server: RunningServer) -> Any:
    return sqs_client(server)


def test_send_receive_delete(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    assert url.endswith("/000000000000/orders")
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="ord")["QueueUrls"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    batch = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(3)]
    )
    assert [e["Id"] for e in batch["Successful"]] == ["m0", "m1", "m2"]
    assert not batch.get("Failed")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "4"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:orders"

    got = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    assert [m["Body"] for m in got] == ["hello", "body 0", "body 1", "body 2"]
    assert got[0]["MessageId"] == sent["MessageId"]
    assert got[0]["MessageAttributes"]["kind"]["StringValue"] == "greeting"
    assert got[0]["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert got[0]["Attributes"] == {"ApproximateReceiveCount": "1"}
    in_flight = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert in_flight == {"ApproximateNumberOfMessagesNotVisible": "4"}
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "received ones are invisible"

    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got[1:])
        ],
    )
    assert len(deleted["Successful"]) == 3
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_visibility_timeout_and_change_message_visibility(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="visible", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="again")
    (first,) = sqs.receive_message(QueueUrl=url)["Messages"]
    # Not deleted: it comes back once its visibility timeout ran out (long polling waits).
    (second,) = sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0
    )
    (third,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    assert third["MessageId"] == first["MessageId"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.MessageNotInflight):
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5
        )


def test_long_polling_returns_when_a_message_arrives(server: RunningServer, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="waiting")["QueueUrl"]
    other = sqs_client(server)
    result: dict[str, Any] = {}

    def receive() -> None:
        started = time.monotonic()
        result["response"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=receive)
    thread.start()
    other.send_message(QueueUrl=url, MessageBody="arrived")
    thread.join(timeout=30)
    assert [m["Body"] for m in result["response"]["Messages"]] == ["arrived"]
    assert result["waited"] < 15, "the poll ended with the message, not at its 20 s"


def test_redrive_to_a_dead_letter_queue_after_max_receive_count(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="orders-redriven",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["poison"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "moved after 2 receives"
    (dead,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert dead["Body"] == "poison"


def test_errors_are_sqs_shaped(server: RunningServer, sqs: Any) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="nope")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"{server.url}/000000000000/nope", MessageBody="x")
    url = sqs.create_queue(QueueName="strict")["QueueUrl"]
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="forged")
    with pytest.raises(sqs.exceptions.ClientError, match="FIFO"):
        sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})
    with pytest.raises(sqs.exceptions.ClientError, match="VisibilityTimeout"):
        sqs.create_queue(QueueName="bad", Attributes={"VisibilityTimeout": "50000"})
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="strict", Attributes={"DelaySeconds": "5"})
    unsigned = sqs_client(server, secret="wrong")
    with pytest.raises(unsigned.exceptions.ClientError) as failed:
        unsigned.list_queues()
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert failed.value.response["Error"]["Code"] == "InvalidSignature"
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="strict")


def test_aws_cli_send_message(server: RunningServer, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="from-cli")["QueueUrl"]
    assert server.credentials is not None
    env = server.client_env(
        AWS_ACCESS_KEY_ID=server.credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = subprocess.run(
        [aws_cli_path(), "sqs", "send-message", "--endpoint-url", server.url,
         "--queue-url", url, "--message-body", "from the CLI", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["MessageId"]
    got = wait_until(
        lambda: sqs.receive_message(QueueUrl=url).get("Messages"), 10, "the CLI's message"
    )
    assert got[0]["Body"] == "from the CLI"


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


def test_declared_queues_exist_after_deploy(sqs: Any) -> None:
    urls = sqs.list_queues(QueueNamePrefix="sqstest-")["QueueUrls"]
    names = sorted(u.rsplit("/", 1)[1] for u in urls)
    assert names == ["sqstest-async-dlq", "sqstest-failures", "sqstest-jobs", "sqstest-jobs-dlq"]
    jobs = sqs.get_queue_url(QueueName="sqstest-jobs")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "5"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:sqstest-jobs-dlq",
        "maxReceiveCount": 2,
    }


def test_sqs_event_source_with_batch_item_failures(sqs: Any, collector: Collector) -> None:
    jobs = sqs.get_queue_url(QueueName="sqstest-jobs")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="sqstest-jobs-dlq")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=jobs,
        Entries=[
            {
                "Id": str(n),
                "MessageBody": json.dumps({"collector": collector.url, "n": n, "fail": n == 2}),
                "MessageAttributes": {"tag": {"DataType": "String", "StringValue": f"t{n}"}},
            }
            for n in range(4)
        ],
    )
    # The failed item is received again once more (maxReceiveCount 2), then redriven.
    wait_until(lambda: collector.runs_of("n").get(2) == 2, 60, "the failed item to run twice")
    (dead,) = wait_until(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"),
        60,
        "the failed item in the dead-letter queue",
    )
    assert json.loads(dead["Body"])["n"] == 2
    runs = collector.runs_of("n")
    assert runs == {0: 1, 1: 1, 2: 2, 3: 1}, "what succeeded was deleted, not received again"
    record = next(r["record"] for r in collector.snapshot() if r["n"] == 0)
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:sqstest-jobs"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["tag"] == {
        "stringValue": "t0",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert max(r["batch"] for r in collector.snapshot()) > 1, "messages came in batches"
    attributes = sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_async_failures_reach_their_queues(server: RunningServer, sqs: Any) -> None:
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(
        FunctionName="sqstest-dev-failing", InvocationType="Event", Payload=b'{"job": "x"}'
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    failures = sqs.get_queue_url(QueueName="sqstest-failures")["QueueUrl"]
    (message,) = wait_until(
        lambda: sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=1).get("Messages"),
        60,
        "the failure record on the onFailure queue",
    )
    record = json.loads(message["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == {"job": "x"}
    assert record["responsePayload"]["errorMessage"] == "cannot do x"
    dlq = sqs.get_queue_url(QueueName="sqstest-async-dlq")["QueueUrl"]
    (dead,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(dead["Body"]) == {"job": "x"}, "the DLQ gets the event itself"
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes == {
        "RequestID": request_id,
        "ErrorCode": "200",
        "ErrorMessage": "cannot do x",
    }
