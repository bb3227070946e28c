"""The monitoring assets in deploy/ and docs/OPERATIONS.md, checked without a running stack.

``promtool`` (Debian's prometheus package, installed by ``make setup``) validates the
Prometheus configuration and the alert rules and runs the rule unit tests. The PromQL of
the Grafana dashboard and of the alerts is checked against what a worker really exports:
a fresh ``stream.metrics.Metrics`` is rendered and parsed with prometheus_client's own
parser, so a misspelt metric or label in a panel or an alert fails here, not on a night
when someone needs the panel. Small mutation tests show that these checks can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from stream.metrics import Metrics
from stream.settings import ENV_PREFIX, SETTINGS_DOC
from stream.topics import TOPICS

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "xsell.json"
DASHBOARD_PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "xsell.yml"
DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
COMPOSE = REPO / "docker-compose.yml"

DATASOURCE_UID = "xsell-prometheus"
SCRAPE_JOB = "xsell-workers"
# Series Prometheus itself adds to every scrape, and the labels it attaches.
PROMETHEUS_SERIES = frozenset({"up"})
PROMETHEUS_LABELS = frozenset({"job", "instance", "le"})
SEVERITIES = frozenset({"warning", "critical"})
# Grafana's interval variables become a duration in PromQL, every other variable a regex.
GRAFANA_DURATION_VARIABLES = ("$__rate_interval", "$__interval", "$__range")

# --- a small PromQL reader: enough to pull out metric and label names ------------------------

PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "bool", "offset", "inf", "nan"}
)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GRAFANA_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
MATCHER_BLOCK = re.compile(r"\{([^{}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
RANGE = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
OFFSET = re.compile(r"\boffset\s+-?\w+")
# An identifier not glued to a number or another name, and not a function call.
IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.([a-zA-Z_]\w*)")
LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*,\s*)?([a-zA-Z_]\w*)\s*\)\s*$"
)


def _without_strings(expr: str) -> str:
    return STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out)."""
    text = GRAFANA_VARIABLE.sub("", _without_strings(expr))
    text = MATCHER_BLOCK.sub(" ", text)
    text = RANGE.sub(" ", text)
    text = GROUPING.sub(" ", text)
    text = OFFSET.sub(" ", text)
    return {name for name in IDENTIFIER.findall(text) if name.lower() not in PROMQL_KEYWORDS}


def label_names(expr: str) -> set[str]:
    """The label names an expression matches on or groups by."""
    text = _without_strings(expr)
    names = {label for block in MATCHER_BLOCK.findall(text) for label in MATCHER_LABEL.findall(block)}
    for grouping in GROUPING.findall(text):
        names.update(part.strip() for part in grouping.split(",") if part.strip())
    return names


def as_plain_promql(expr: str) -> str:
    """A Grafana expression with its variables replaced, so promtool can parse it."""
    for variable in GRAFANA_DURATION_VARIABLES:
        expr = expr.replace(variable, "5m")
    return GRAFANA_VARIABLE.sub(".*", expr)


# --- what a worker exports --------------------------------------------------------------------


def exported_families() -> dict[str, str]:
    """Metric family name -> type, as Prometheus' parser reads a fresh worker's /metrics."""
    text = Metrics(CollectorRegistry()).exposition().decode()
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    # prometheus_client adds a `<name>_created` gauge beside counters and histograms.
    return {
        name: kind for name, kind in families.items()
        if not (name.endswith("_created") and families.get(name.removesuffix("_created")) in
                {"counter", "histogram"})
    }


def exported_series() -> set[str]:
    """Every series name a query may use: counters as `_total`, histograms as `_bucket/_sum/_count`."""
    text = Metrics(CollectorRegistry()).exposition().decode()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples if not sample.name.endswith("_created"))
    for name, kind in exported_families().items():
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return names


def documented_name(name: str, kind: str) -> str:
    """The name an operator types: counters carry their `_total`."""
    return f"{name}_total" if kind == "counter" else name


def exported_labels() -> set[str]:
    metrics = Metrics(CollectorRegistry())
    labels = set(PROMETHEUS_LABELS)
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            labels.update(value._labelnames)
    return labels


def family_of(series: str, families: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        base = series.removesuffix(suffix)
        if base != series and base in families:
            return base
    return series


# --- the assets -------------------------------------------------------------------------------


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def load_alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def graph_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel that draws something (rows are headings), nested rows included."""
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from (inner for inner in panel.get("panels", []) if inner.get("type") != "row")
        else:
            yield panel


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    return [
        (f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in graph_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_metrics(dashboard: dict) -> list[tuple[str, str]]:
    """(where, metric) for every templating variable that reads label values of a metric."""
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = LABEL_VALUES.match(text)
        assert match, f"variable {variable['name']}: unsupported query {text!r}"
        if match.group(1):
            found.append((f"variable {variable['name']}", match.group(1)))
    return found


def unknown_metric_references(expressions: Iterable[tuple[str, str]], known: set[str]) -> list[str]:
    return [
        f"{where}: {name}"
        for where, expr in expressions
        for name in sorted(metric_names(expr))
        if name not in known
    ]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run `make setup` (Debian package prometheus)"
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60)


# --- promtool ---------------------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"xsell_dashboard:check_{index}", "expr": as_plain_promql(expr)}
        for index, (_, expr) in enumerate(dashboard_expressions(load_dashboard()))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", [rule["alert"] for rule in load_alert_rules()])
def test_rule_tests_notice_a_slower_alert(promtool: str, tmp_path: Path, alert: str) -> None:
    """Mutation: an alert that waits an hour must make its firing case fail."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["for"] = "1h"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(ALERT_TESTS, tmp_path / "alerts.test.yml")
    result = run_promtool(promtool, "test", "rules", tmp_path / "alerts.test.yml")
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr


# --- metric and label names -------------------------------------------------------------------


def test_the_promql_reader_finds_metrics_and_not_the_rest() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, agent) (rate(xsell_batch_processing_seconds_bucket'
        '{instance=~"$instance", topic="a{b}"}[$__rate_interval] offset 1h))) > 1e3 '
        'and on (instance) xsell_worker_ready unless up{job="x"} == bool 0'
    )
    assert metric_names(expr) == {"xsell_batch_processing_seconds_bucket", "xsell_worker_ready", "up"}
    assert label_names(expr) == {"le", "agent", "instance", "topic", "job"}


def test_series_names_follow_the_metric_types() -> None:
    series = exported_series()
    assert "xsell_events_consumed_total" in series
    assert "xsell_end_to_end_latency_seconds_bucket" in series
    assert "xsell_batch_size_events_count" in series  # a labelled histogram with no samples yet
    assert "xsell_index_items" in series
    assert "xsell_events_consumed" not in series
    assert "xsell_rebalances_created" not in series


def test_dashboard_queries_use_only_exported_metrics() -> None:
    dashboard = load_dashboard()
    references = dashboard_expressions(dashboard) + [
        (where, metric) for where, metric in variable_metrics(dashboard)
    ]
    known = exported_series() | PROMETHEUS_SERIES
    assert references
    assert unknown_metric_references(references, known) == []


def test_alert_rules_use_only_exported_metrics() -> None:
    expressions = [(rule["alert"], rule["expr"]) for rule in load_alert_rules()]
    assert unknown_metric_references(expressions, exported_series() | PROMETHEUS_SERIES) == []


def test_a_misspelt_panel_metric_is_reported() -> None:
    """Mutation: one wrong letter in one panel must be caught by the check above."""
    dashboard = load_dashboard()
    panel = next(p for p in graph_panels(dashboard) if "xsell_dead_letters_total" in json.dumps(p))
    panel["targets"][0]["expr"] = panel["targets"][0]["expr"].replace(
        "xsell_dead_letters_total", "xsell_dead_letter_total"
    )
    known = exported_series() | PROMETHEUS_SERIES
    problems = unknown_metric_references(dashboard_expressions(dashboard), known)
    assert problems == [f"panel {panel['title']!r} target A: xsell_dead_letter_total"]


def test_labels_in_queries_legends_and_annotations_exist() -> None:
    known = exported_labels()
    used: list[tuple[str, str]] = []
    for panel in graph_panels(load_dashboard()):
        for target in panel.get("targets", []):
            used += [(panel["title"], label) for label in label_names(target["expr"])]
            legend = target.get("legendFormat", "")
            used += [(panel["title"], label) for label in LEGEND_LABEL.findall(legend)]
    for rule in load_alert_rules():
        used += [(rule["alert"], label) for label in label_names(rule["expr"])]
        for text in rule.get("annotations", {}).values():
            used += [(rule["alert"], label) for label in ANNOTATION_LABEL.findall(text)]
    assert used
    assert [f"{where}: {label}" for where, label in used if label not in known] == []


def test_dashboard_shows_every_exported_metric() -> None:
    families = exported_families()
    shown = {
        family_of(name, families)
        for _, expr in dashboard_expressions(load_dashboard())
        for name in metric_names(expr)
    }
    assert sorted(set(families) - shown) == []


# --- dashboard and provisioning ---------------------------------------------------------------


def test_dashboard_panels_are_described_and_use_the_provisioned_datasource() -> None:
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["id"] is None
    panels = list(graph_panels(dashboard))
    assert len(panels) >= 12
    for panel in panels:
        assert len(panel.get("description", "")) >= 80, f"{panel['title']}: describe it"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    assert [source["uid"] for source in provisioned] == [DATASOURCE_UID]


def test_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_issue_panels_are_present() -> None:
    """Each panel the monitoring issue asks for, found by the metric (and function) it draws."""
    expressions = [expr for _, expr in dashboard_expressions(load_dashboard())]

    def drawn(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in expressions)

    for quantile in ("0.5", "0.95", "0.99"):
        assert drawn(rf"histogram_quantile\({quantile},.*xsell_end_to_end_latency_seconds_bucket")
    assert drawn(r"by \(kind, outcome\).*xsell_events_consumed_total")
    assert drawn(r"by \(topic, partition\).*xsell_consumer_lag_messages")
    assert drawn(r"by \(topic, reason\).*xsell_dead_letters_total")
    assert drawn(r"by \(source\).*xsell_candidates_total")
    assert drawn(r'up\{job="xsell-workers"')


def test_grafana_and_prometheus_are_wired_in_compose() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"][0]
    assert provider["type"] == "file"
    grafana_mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in compose["grafana"]["volumes"])
    assert grafana_mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert grafana_mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    prometheus_mounts = dict(
        volume.rsplit(":", 1)[0].split(":", 1) for volume in compose["prometheus"]["volumes"]
    )
    config_in_container = Path(prometheus_mounts["./deploy/prometheus/prometheus.yml"])
    for rule_file in config["rule_files"]:
        in_container = config_in_container.parent / rule_file
        assert prometheus_mounts[f"./deploy/prometheus/{rule_file}"] == str(in_container)
    assert compose["prometheus"]["image"].startswith("prom/prometheus:v2.")
    assert [job["job_name"] for job in config["scrape_configs"]] == [SCRAPE_JOB]


# --- alerts -----------------------------------------------------------------------------------


def test_every_alert_has_a_delay_a_severity_and_words() -> None:
    rules = load_alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "XsellConsumerLagGrowing", "XsellDeadLetterRatioHigh", "XsellNoRecommendationsPublished",
        "XsellWorkerNotReady", "XsellWorkerDown",
    }
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{rule['alert']}: no for:"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) >= 80, rule["alert"]


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in load_alert_rules()}
    assert sorted(alerts - firing) == []
    assert sorted(alerts - silent) == []


# --- docs/OPERATIONS.md -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def operations() -> str:
    return OPERATIONS.read_text()


def test_every_exported_metric_is_documented(operations: str) -> None:
    documented = set(re.findall(r"^\|\s*`(xsell_\w+)`", operations, flags=re.MULTILINE))
    exported = {documented_name(name, kind) for name, kind in exported_families().items()}
    assert sorted(exported - documented) == []
    assert sorted(documented - exported) == []


def test_every_setting_is_documented_with_its_variable(operations: str) -> None:
    documented = set(re.findall(r"`(XSELL_[A-Z0-9_]+)`", operations))
    expected = {ENV_PREFIX + name.upper() for name in SETTINGS_DOC}
    assert sorted(expected - documented) == []


def test_every_topic_alert_and_panel_is_documented(operations: str) -> None:
    for spec in TOPICS:
        assert f"`{spec.name}`" in operations, spec.name
    for rule in load_alert_rules():
        assert re.search(rf"^#+ .*{rule['alert']}", operations, flags=re.MULTILINE), rule["alert"]
        row = rf"^\| {rule['alert']} \| {rule['labels']['severity']} \| .+ \| {rule['for']} \|$"
        assert re.search(row, operations, flags=re.MULTILINE), f"{rule['alert']} has no row in the alerts table"
    for panel in graph_panels(load_dashboard()):
        assert panel["title"] in operations, panel["title"]
