//! The observability files hold together without Grafana, Prometheus or
//! Docker: dashboards parse and query only provisioned data, every metric they
//! and the alert rules name is one the worker exports, every alert is tested
//! both ways, and the compose stack mounts files that exist.
//! (`scripts/promtool.sh` runs the rules through promtool itself.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use plan_worker::llm::metrics as llm_metrics;
use plan_worker::telemetry::metrics as m;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Yaml {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

/// Every `dashboards/*.json`, parsed, by file name.
fn dashboards() -> Vec<(String, Json)> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("dashboards"))
        .expect("dashboards/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let boards: Vec<(String, Json)> = files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect();
    assert!(
        boards.len() >= 4,
        "expected the four dashboards, found {boards:?}"
    );
    boards
}

/// Every panel of a dashboard, rows and the panels inside collapsed rows
/// included.
fn panels(board: &Json) -> Vec<&Json> {
    fn walk<'a>(list: &'a Json, out: &mut Vec<&'a Json>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&board["panels"], &mut out);
    out
}

/// Every PromQL expression of a dashboard: panel targets, template variable
/// queries and annotation queries.
fn dashboard_exprs(board: &Json) -> Vec<String> {
    let mut out: Vec<String> = panels(board)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for var in board["templating"]["list"].as_array().into_iter().flatten() {
        if var["type"] == "query" {
            let q = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .unwrap_or_default();
            out.push(q.to_owned());
        }
    }
    for a in board["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(e) = a["expr"].as_str() {
            out.push(e.to_owned());
        }
    }
    out
}

/// The alert rules of `prometheus/alerts.yml`.
fn alert_rules() -> Vec<Yaml> {
    let doc = yaml("prometheus/alerts.yml");
    let rules: Vec<Yaml> = doc["groups"]
        .as_sequence()
        .expect("alerts.yml has groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .collect();
    assert!(!rules.is_empty(), "alerts.yml has no rules");
    rules
}

fn str_of<'a>(v: &'a Yaml, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Identifiers `plan_[a-z0-9_]+` that stand as names in a PromQL expression:
/// not inside a quoted label value, not the tail of a longer identifier.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_quote = true;
            i += 1;
            continue;
        }
        let starts_name = (i == 0 || !is_ident(bytes[i - 1])) && expr[i..].starts_with("plan_");
        if starts_name {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            out.push(expr[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The histograms of the catalogue: only their `_bucket`, `_sum` and
/// `_count` series may be queried under a derived name.
const HISTOGRAMS: &[&str] = &[
    m::ATTEMPT_DURATION,
    m::QUEUE_WAIT,
    m::END_TO_END,
    m::PICKUP_LATENCY,
    m::STAGE_DURATION,
    m::SAVE_DURATION,
    llm_metrics::REQUEST_DURATION_SECONDS,
    llm_metrics::TIME_TO_FIRST_TOKEN_SECONDS,
    m::UNSPLASH_REQUEST_DURATION,
];

/// The catalogue name a queried series name belongs to, if any.
fn catalogue_name(name: &str) -> Option<&'static str> {
    if let Some(n) = m::CATALOGUE.iter().find(|n| **n == name) {
        return Some(n);
    }
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))?;
    HISTOGRAMS
        .iter()
        .find(|h| **h == base)
        .and_then(|h| m::CATALOGUE.iter().find(|n| *n == h).copied())
}

/// Names used in `exprs` that the worker does not export (`up` is
/// Prometheus's own and never matches `plan_`).
fn unknown_names<'a>(exprs: impl IntoIterator<Item = &'a str>) -> (usize, BTreeSet<String>) {
    let mut seen = 0;
    let mut unknown = BTreeSet::new();
    for expr in exprs {
        for name in metric_names(expr) {
            seen += 1;
            if catalogue_name(&name).is_none() {
                unknown.insert(name);
            }
        }
    }
    (seen, unknown)
}

// ---------------------------------------------------------------------------
// (a) dashboards
// ---------------------------------------------------------------------------

#[test]
fn every_dashboard_parses_with_a_unique_uid_and_title() {
    let mut uids = BTreeMap::new();
    let mut titles = BTreeMap::new();
    for (file, board) in dashboards() {
        let uid = board["uid"].as_str().unwrap_or_default();
        let title = board["title"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{file} has no uid");
        assert!(
            uid.len() <= 40,
            "{file}: Grafana uids are at most 40 characters"
        );
        assert!(!title.is_empty(), "{file} has no title");
        assert!(
            board["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{file}: a classic dashboard with schemaVersion"
        );
        if let Some(other) = uids.insert(uid.to_owned(), file.clone()) {
            panic!("uid {uid} is used by both {other} and {file}");
        }
        if let Some(other) = titles.insert(title.to_owned(), file.clone()) {
            panic!("title {title:?} is used by both {other} and {file}");
        }
    }
}

#[test]
fn dashboards_query_only_the_datasource_variable_or_the_provisioned_prometheus() {
    fn check(file: &str, path: &str, v: &Json, seen: &mut usize) {
        match v {
            Json::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}.{k}");
                    if k == "datasource" {
                        *seen += 1;
                        let uid = match child {
                            Json::String(s) => s.as_str(),
                            Json::Object(_) => {
                                assert_eq!(
                                    child["type"], "prometheus",
                                    "{file} {here}: datasource type must be prometheus"
                                );
                                child["uid"].as_str().unwrap_or_default()
                            }
                            other => panic!("{file} {here}: unexpected datasource {other}"),
                        };
                        assert!(
                            uid == "${datasource}" || uid == "prometheus",
                            "{file} {here}: datasource {uid:?} is neither ${{datasource}} nor the provisioned uid prometheus"
                        );
                    } else {
                        check(file, &here, child, seen);
                    }
                }
            }
            Json::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    check(file, &format!("{path}[{i}]"), child, seen);
                }
            }
            _ => {}
        }
    }
    for (file, board) in dashboards() {
        let mut seen = 0;
        check(&file, "", &board, &mut seen);
        assert!(seen > 0, "{file} names no datasource at all");

        let vars = board["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{file} has no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{file}: datasource variable type");
        assert_eq!(
            ds["query"], "prometheus",
            "{file}: datasource variable plugin"
        );
        assert_eq!(
            ds["current"]["value"], "prometheus",
            "{file}: default datasource"
        );
    }
}

#[test]
fn every_dashboard_has_a_multi_value_kind_variable_from_the_claimed_jobs() {
    for (file, board) in dashboards() {
        let vars = board["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let kind = vars
            .iter()
            .find(|v| v["name"] == "kind")
            .unwrap_or_else(|| panic!("{file} has no kind variable"));
        assert_eq!(kind["type"], "query", "{file}");
        assert_eq!(
            kind["definition"], "label_values(plan_jobs_claimed_total, kind)",
            "{file}"
        );
        assert_eq!(kind["multi"], true, "{file}: kind is multi-value");
        assert_eq!(kind["includeAll"], true, "{file}: kind includes All");
        assert_eq!(
            kind["allValue"], ".*",
            "{file}: All must match kinds no worker has claimed yet"
        );
    }
}

#[test]
fn every_panel_including_those_inside_rows_has_a_query() {
    for (file, board) in dashboards() {
        let all = panels(&board);
        let mut queried = 0;
        let mut ids = BTreeSet::new();
        for p in &all {
            let title = p["title"].as_str().unwrap_or("<untitled>");
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{file}: {title} has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} repeats");
            if p["type"] == "row" {
                continue;
            }
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .filter(|e| !e.trim().is_empty())
                .collect();
            assert!(!exprs.is_empty(), "{file}: panel {title:?} has no query");
            queried += 1;
        }
        assert!(
            queried >= 4,
            "{file} has only {queried} panels with queries"
        );
    }
}

#[test]
fn every_range_in_a_dashboard_query_is_the_rate_interval() {
    let mut ranges = 0;
    for (file, board) in dashboards() {
        for expr in dashboard_exprs(&board) {
            let mut rest = expr.as_str();
            while let Some(open) = rest.find('[') {
                let close = rest[open..].find(']').expect("balanced brackets") + open;
                let range = &rest[open..=close];
                assert_eq!(
                    range, "[$__rate_interval]",
                    "{file}: {expr} uses {range}; use $__rate_interval"
                );
                ranges += 1;
                rest = &rest[close + 1..];
            }
            if expr.contains("rate(") || expr.contains("increase(") {
                assert!(expr.contains("[$__rate_interval]"), "{file}: {expr}");
            }
        }
    }
    assert!(ranges > 10, "only {ranges} range selectors found");
}

// ---------------------------------------------------------------------------
// (b) metric names
// ---------------------------------------------------------------------------

#[test]
fn metric_names_are_extracted_outside_label_values_and_histogram_suffixes_resolve() {
    assert_eq!(
        metric_names(
            r#"sum(rate(plan_job_stage_duration_seconds_bucket{kind="meal_plan", x="plan_not_a_name"}[1m])) / up"#
        ),
        ["plan_job_stage_duration_seconds_bucket"]
    );
    assert_eq!(
        metric_names("weekly_base_plan_x + my_plan_y"),
        Vec::<String>::new()
    );
    assert_eq!(
        catalogue_name("plan_job_queue_wait_seconds_count"),
        Some(m::QUEUE_WAIT)
    );
    assert_eq!(catalogue_name("plan_jobs_claimed_total_count"), None);
    assert_eq!(catalogue_name("plan_jobs_claimed"), None);
}

#[test]
fn every_metric_the_dashboards_query_is_in_the_catalogue() {
    let boards = dashboards();
    let exprs: Vec<String> = boards
        .iter()
        .flat_map(|(_, b)| dashboard_exprs(b))
        .collect();
    let (seen, unknown) = unknown_names(exprs.iter().map(String::as_str));
    assert!(
        seen > 30,
        "only {seen} metric names found in the dashboards"
    );
    assert!(
        unknown.is_empty(),
        "dashboards query metrics the worker does not export: {unknown:?}"
    );
}

#[test]
fn every_metric_the_alert_rules_use_is_in_the_catalogue() {
    let rules = alert_rules();
    let exprs: Vec<&str> = rules.iter().map(|r| str_of(r, "expr")).collect();
    let (seen, unknown) = unknown_names(exprs.iter().copied());
    assert!(seen >= rules.len(), "only {seen} metric names in the rules");
    assert!(
        unknown.is_empty(),
        "alert rules use metrics the worker does not export: {unknown:?}"
    );

    let tests = yaml("prometheus/tests/alerts_test.yml");
    let series: Vec<&str> = tests["tests"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|t| t["input_series"].as_sequence().into_iter().flatten())
        .map(|s| str_of(s, "series"))
        .collect();
    let (seen, unknown) = unknown_names(series.iter().copied());
    assert!(seen > 20, "only {seen} metric names in the rule tests");
    assert!(
        unknown.is_empty(),
        "rule tests feed series the worker does not export: {unknown:?}"
    );
}

// ---------------------------------------------------------------------------
// alert rules and their tests
// ---------------------------------------------------------------------------

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook_naming_a_command() {
    for rule in alert_rules() {
        let name = str_of(&rule, "alert");
        assert!(!name.is_empty(), "a rule without a name: {rule:?}");
        let severity = str_of(&rule["labels"], "severity");
        assert!(
            severity == "page" || severity == "ticket",
            "{name}: severity {severity:?} is neither page nor ticket"
        );
        let summary = str_of(&rule["annotations"], "summary");
        let runbook = str_of(&rule["annotations"], "runbook");
        assert!(!summary.is_empty(), "{name} has no summary");
        assert!(
            runbook.starts_with("First run `") && runbook.matches('`').count() >= 2,
            "{name}: the runbook must start with the first command, in backticks: {runbook:?}"
        );
        for text in [summary, runbook] {
            assert!(
                !text.contains("{{"),
                "{name}: annotations are static so the promtool tests can match them: {text:?}"
            );
        }
    }
}

#[test]
fn every_alert_is_tested_both_firing_and_not_firing() {
    let tests = yaml("prometheus/tests/alerts_test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_sequence().expect("tests") {
        for case in group["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = str_of(case, "alertname").to_owned();
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected == 0 {
                quiet.insert(name);
            } else {
                firing.insert(name);
            }
        }
    }
    let names: BTreeSet<String> = alert_rules()
        .iter()
        .map(|r| str_of(r, "alert").to_owned())
        .collect();
    assert!(
        names.len() >= 9,
        "expected the nine alerts, found {names:?}"
    );
    for name in &names {
        assert!(firing.contains(name), "{name} is never tested firing");
        assert!(quiet.contains(name), "{name} is never tested not firing");
    }
    let strangers: Vec<_> = firing
        .union(&quiet)
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(
        strangers.is_empty(),
        "tests of unknown alerts: {strangers:?}"
    );
}

#[test]
fn the_readme_lists_every_alert() {
    let readme = read("README.md");
    let section = readme
        .split("## Dashboards, alerts and the compose stack")
        .nth(1)
        .expect("README has the section on dashboards, alerts and the compose stack");
    for rule in alert_rules() {
        let name = str_of(&rule, "alert");
        assert!(
            section.contains(&format!("`{name}`")),
            "the README's alert table does not name {name}"
        );
    }
}

// ---------------------------------------------------------------------------
// (c) docker-compose and Dockerfile, (d) provisioning
// ---------------------------------------------------------------------------

/// The short-syntax volumes of a service: (source, target).
fn mounts(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .map(|v| {
            let mut parts = v.split(':');
            let source = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            (source, target)
        })
        .collect()
}

#[test]
fn the_compose_stack_has_its_services_and_the_worker_waits_for_a_healthy_postgres() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    for name in ["postgres", "plan-worker", "prometheus", "grafana", "jaeger"] {
        assert!(
            services.contains_key(Yaml::from(name)),
            "docker-compose.yml has no {name} service"
        );
    }
    let worker = &compose["services"]["plan-worker"];
    assert_eq!(
        worker["depends_on"]["postgres"]["condition"], "service_healthy",
        "plan-worker must wait for a healthy postgres"
    );
    assert!(
        compose["services"]["postgres"]["healthcheck"]["test"].is_sequence(),
        "postgres needs a health check for service_healthy"
    );
    let env = &worker["environment"];
    assert_eq!(
        env["LLM_API_KEY"], "${LLM_API_KEY:-}",
        "the key comes from .env"
    );
    assert!(
        str_of(env, "DATABASE_URL").contains("@postgres:5432/"),
        "the worker's DATABASE_URL points at the postgres service"
    );
    assert!(
        str_of(env, "OTEL_EXPORTER_OTLP_ENDPOINT").starts_with("http://jaeger:"),
        "traces go to the jaeger service"
    );
    let grafana = &compose["services"]["grafana"]["environment"];
    assert_eq!(grafana["GF_AUTH_ANONYMOUS_ENABLED"], "true");
    assert_eq!(grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"], "Viewer");
}

#[test]
fn every_file_the_compose_stack_mounts_from_the_repository_exists() {
    let compose = yaml("docker-compose.yml");
    let mut checked = 0;
    for (name, service) in compose["services"].as_mapping().expect("services") {
        for (source, _) in mounts(service) {
            if source.starts_with("./") || source.starts_with("../") {
                let path = repo().join(&source);
                assert!(
                    path.exists(),
                    "{name:?} mounts {source}, which does not exist"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} repository mounts found");
}

#[test]
fn prometheus_and_grafana_find_their_files_where_the_compose_stack_mounts_them() {
    let compose = yaml("docker-compose.yml");
    let prom_mounts = mounts(&compose["services"]["prometheus"]);
    let mounted_at = |mounts: &[(String, String)], target: &str| {
        mounts
            .iter()
            .find(|(_, t)| t == target)
            .map(|(s, _)| s.clone())
    };
    assert_eq!(
        mounted_at(&prom_mounts, "/etc/prometheus/prometheus.yml").as_deref(),
        Some("./prometheus/prometheus.yml")
    );
    let prom = yaml("prometheus/prometheus.yml");
    for rule_file in prom["rule_files"].as_sequence().expect("rule_files") {
        let target = rule_file.as_str().unwrap();
        let source = mounted_at(&prom_mounts, target)
            .unwrap_or_else(|| panic!("rule file {target} is not mounted into prometheus"));
        assert_eq!(source, "./prometheus/alerts.yml");
    }
    let scrape = &prom["scrape_configs"][0];
    assert_eq!(scrape["job_name"], "plan-worker");
    assert_eq!(
        scrape["static_configs"][0]["targets"][0],
        "plan-worker:9464"
    );

    let graf_mounts = mounts(&compose["services"]["grafana"]);
    let provider = yaml("dashboards/provisioning/dashboards/plan-worker.yaml");
    let path = str_of(&provider["providers"][0]["options"], "path");
    assert_eq!(path, "/var/lib/grafana/dashboards");
    assert_eq!(
        mounted_at(&graf_mounts, path).as_deref(),
        Some("./dashboards")
    );
    for kind in ["datasources", "dashboards"] {
        assert_eq!(
            mounted_at(&graf_mounts, &format!("/etc/grafana/provisioning/{kind}")),
            Some(format!("./dashboards/provisioning/{kind}")),
            "grafana's {kind} provisioning"
        );
    }
}

#[test]
fn the_provisioned_datasource_is_prometheus_with_the_uid_the_dashboards_use() {
    let ds = yaml("dashboards/provisioning/datasources/prometheus.yaml");
    assert_eq!(ds["apiVersion"], 1);
    let list = ds["datasources"].as_sequence().expect("datasources");
    assert_eq!(list.len(), 1, "one datasource");
    let prom = &list[0];
    assert_eq!(prom["uid"], "prometheus");
    assert_eq!(prom["name"], "Prometheus");
    assert_eq!(prom["type"], "prometheus");
    assert_eq!(prom["url"], "http://prometheus:9090");

    let provider = yaml("dashboards/provisioning/dashboards/plan-worker.yaml");
    assert_eq!(provider["apiVersion"], 1);
    assert_eq!(provider["providers"][0]["type"], "file");
}

#[test]
fn every_path_the_dockerfile_copies_exists_and_is_in_the_build_context() {
    let dockerfile = read("Dockerfile");
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    let mut copied = 0;
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                repo().join(source).exists(),
                "the Dockerfile copies {source}, which does not exist"
            );
            let top = source.trim_start_matches("./").split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == top),
                ".dockerignore excludes {source}, which the Dockerfile copies"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "only {copied} COPY sources found");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.contains("USER "),
        "the image runs as a non-root user"
    );
}
