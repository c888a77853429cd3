"""Records per second of the JSON formatter, next to python-json-logger on the same records.

Both format the same LogRecords (a plain message, one with ``extra`` fields, one with an
exception) to a JSON line, in interleaved rounds after a warm-up; the figure kept for each is the
median over rounds. python-json-logger is configured to write the same information (message,
level, logger, time, process, thread, file, line, function, extras, exception).

A second table gives what the request fields cost a record logged while a request is served
(``request_id``, ``client_addr``, ``method``, ``path``, ``matched_route``): they are read when a
record is formatted, so a request that logs nothing pays nothing for them.
"""

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.threadlocal import manager
from pythonjsonlogger.json import JsonFormatter as PythonJsonFormatter

from c2cwsgiutils import request_tracking
from c2cwsgiutils.pyramid_logging import JsonFormatter

PYTHON_JSON_FORMAT = " ".join(
    f"%({name})s"
    for name in (
        "message",
        "levelname",
        "name",
        "created",
        "process",
        "threadName",
        "pathname",
        "lineno",
        "funcName",
    )
)


def records() -> list[logging.LogRecord]:
    logger = logging.getLogger("bench.json")
    plain = logger.makeRecord("bench.json", logging.INFO, __file__, 10, "user %s logged in", ("alice",), None)
    extra = logger.makeRecord(
        "bench.json",
        logging.WARNING,
        __file__,
        20,
        "slow query",
        (),
        None,
        extra={"duration_ms": 1234.5, "table": "orders", "rows": 42},
    )
    try:
        raise ValueError("bad input")
    except ValueError:
        failure = logger.makeRecord(
            "bench.json", logging.ERROR, __file__, 30, "it failed", (), sys.exc_info()
        )
    return [plain, extra, failure]


def per_second(
    format_record: Callable[[logging.LogRecord], str], batch: list[logging.LogRecord], loops: int
) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        for record in batch:
            record.exc_text = None  # both formatters cache the traceback text: format it every time
            format_record(record)
    return loops * len(batch) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loops", type=int, default=3000)
    args = parser.parse_args()
    ours, theirs = JsonFormatter(host="bench"), PythonJsonFormatter(PYTHON_JSON_FORMAT)
    batch = records()
    results: dict[str, list[float]] = {"c2cwsgiutils": [], "python-json-logger": []}
    per_second(ours.format, batch, 500)
    per_second(theirs.format, batch, 500)
    for _ in range(args.rounds):
        results["c2cwsgiutils"].append(per_second(ours.format, batch, args.loops))
        results["python-json-logger"].append(per_second(theirs.format, batch, args.loops))
    ours_rate = statistics.median(results["c2cwsgiutils"])
    theirs_rate = statistics.median(results["python-json-logger"])
    print(f"{'formatter':<22}{'records/s':>12}")
    print(f"{'python-json-logger':<22}{theirs_rate:>12,.0f}")
    print(f"{'c2cwsgiutils':<22}{ours_rate:>12,.0f}")
    print(f"ratio (c2cwsgiutils / python-json-logger): {ours_rate / theirs_rate:.2f}")

    # The request fields: the same record, formatted outside and inside a request.
    config = Configurator(settings={})
    config.add_route("orders", "/orders/{id}")
    request = Request.blank("/orders/7?secret=x", environ={"REMOTE_ADDR": "192.0.2.1"})
    request.registry = config.registry
    request.matched_route = config.get_routes_mapper().get_route("orders")
    outside, inside = [], []
    for _ in range(args.rounds):
        outside.append(1e6 / per_second(ours.format, batch[:1], args.loops))
        manager.push({"request": request, "registry": config.registry})
        token = request_tracking.current_request_id.set("bench-request-id")
        inside.append(1e6 / per_second(ours.format, batch[:1], args.loops))
        request_tracking.current_request_id.reset(token)
        manager.pop()
    print(f"\n{'one record':<22}{'µs':>8}")
    print(f"{'outside a request':<22}{statistics.median(outside):>8.2f}")
    print(f"{'inside a request':<22}{statistics.median(inside):>8.2f}")
    added = statistics.median(inside) - statistics.median(outside)
    print(f"request fields cost {added:.2f} µs per record logged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
