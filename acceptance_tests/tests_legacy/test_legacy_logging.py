"""The legacy app's CEE log records, as its ini's ``PyramidCeeSysLogHandler`` sends them.

A real UDP socket receives them (the conftest points ``LOG_HOST``/``LOG_PORT`` at it). Their
fields are the original's: what ``cee_syslog_handler.make_message_dict`` made, without its
leading underscores, plus the request's fields; the JSON follows the ``@cee: `` marker.
"""

import json
import re
import uuid
from typing import Any

from c2cwsgiutils.acceptance.connection import Connection
from c2cwsgiutils.acceptance.udp import UdpReceiver

CEE = re.compile(rb"^<(\d+)>.*?@cee: (\{.*\})\x00?$", re.DOTALL)


def record_of(receiver: UdpReceiver, marker: str) -> dict[str, Any]:
    """Return the first CEE record whose datagram holds ``marker`` (waiting for it)."""
    datagram = receiver.wait_for(lambda data: marker.encode() in data, timeout=10)
    match = CEE.match(datagram)
    assert match, datagram
    record: dict[str, Any] = json.loads(match.group(2))
    return record


def test_cee_record_has_the_original_fields(app_connection: Connection, cee_receiver: UdpReceiver) -> None:
    value = f"legacy-log-{uuid.uuid4().hex}"
    request_id = f"legacy-{uuid.uuid4().hex}"
    app_connection.post_json("api/hello", {"value": value}, headers={"X-Request-ID": request_id})
    record = record_of(cee_receiver, f"Hello {value} added")
    assert {
        name: record.get(name)
        for name in (
            "short_message",
            "level",
            "level_name",
            "facility",
            "source_facility",
            "function",
            "request_id",
            "method",
            "path",
            "matched_route",
            "client_addr",
            "hello_value",
        )
    } == {
        "short_message": f"Hello {value} added",
        "level": 6,  # syslog's INFO
        "level_name": "INFO",
        "facility": "c2cwsgiutils_legacy_app.views",
        "source_facility": "c2cwsgiutils_legacy_app.views",
        "function": "hello_post",
        "request_id": request_id,
        "method": "POST",
        "path": "/api/hello",
        "matched_route": "legacy_hello",
        "client_addr": "127.0.0.1",
        "hello_value": value,
    }
    assert "full_message" not in record  # only when it differs from the short message
    assert record["host"]  # the container's host name in the image
    assert record["file"].endswith("c2cwsgiutils_legacy_app/views.py")
    assert isinstance(record["line"], int)
    assert isinstance(record["timestamp"], float)
    assert isinstance(record["pid"], int)
    assert {"thread_name", "process_name"} <= set(record)
