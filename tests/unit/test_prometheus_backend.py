"""prometheus.PrometheusBackend: what it does with the metrics it cannot take."""

import pytest

pytest.importorskip("prometheus_client")

from c2cwsgiutils import prometheus


def test_a_refused_metric_costs_one_warning_of_its_own_never_an_exception(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past MAX_METRICS names, or with other labels than the first use, a metric is dropped."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(prometheus, "MAX_METRICS", 2)
    backend = prometheus.PrometheusBackend(prefix="refusal_")
    backend.counter(("first",), 1)
    backend.counter(("second",), 1, tags={"a": "1"})
    for _ in range(3):
        backend.counter(("third",), 1)  # one name too many
        backend.counter(("second",), 1, tags={"b": "1"})  # other labels
    warnings = capsys.readouterr().err.splitlines()
    assert sorted(warnings) == [
        "c2cwsgiutils prometheus: metric refusal_second_total dropped: labels ['b'] instead of ['a']",
        "c2cwsgiutils prometheus: metric refusal_third_total dropped: more than 2 metrics",
    ]
