//! The alert and recording rules of deploy/prometheus/, checked without a running
//! Prometheus: promtool checks every rule file and runs every unit test of
//! deploy/prometheus/tests; every alert carries what the person it wakes needs (a
//! severity, a summary, a description, and a runbook_url that lands on a section of
//! docs/OPERATIONS.md); every alert has a test that fires it and one that keeps it quiet;
//! every metric the rules read is one the code exports (a renamed metric would otherwise
//! leave an alert that can never fire); and compose's Prometheus loads exactly these
//! files. The last test feeds the same checks broken copies, so a check that passes
//! everything fails here.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

mod repo;

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::Command,
};

use repo::{read, root};
use serde_yaml_ng::Value;

const RULES: &str = "deploy/prometheus/rules";
const TESTS: &str = "deploy/prometheus/tests";
const RUNBOOK: &str = "docs/OPERATIONS.md";
/// The runbook_url of every alert: this, then the section's anchor. Relative to the
/// repository, so it holds in any fork or mirror.
const RUNBOOK_URL: &str = "docs/OPERATIONS.md#";
const SEVERITIES: &[&str] = &["page", "ticket"];
/// Series Prometheus makes itself rather than scraping them.
const FROM_PROMETHEUS: &[&str] = &["up"];

fn parse(text: &str, what: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what} does not parse: {e}"))
}

/// The `.yml` files of a folder of the repository, sorted.
fn yaml_files(relative: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{relative} holds no .yml file");
    files
}

fn rule_files() -> Vec<(String, Value)> {
    yaml_files(RULES)
        .into_iter()
        .map(|path| {
            let name = path.display().to_string();
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let doc = parse(&text, &name);
            (name, doc)
        })
        .collect()
}

// ---- promtool --------------------------------------------------------------------------

/// Runs promtool (`PROMTOOL`, or `promtool` on the PATH): its stdout and stderr together,
/// `Err` when it exits non-zero.
fn promtool(args: &[OsString]) -> Result<String, String> {
    let program = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let output = match Command::new(&program).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool not found ({}): install Debian's prometheus package for promtool \
             (`apt-get install prometheus`, which scripts/deps.sh does), or set PROMTOOL",
            program.to_string_lossy()
        ),
        Err(e) => panic!("cannot run {}: {e}", program.to_string_lossy()),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn check_rules(files: &[PathBuf]) -> Result<String, String> {
    let mut args: Vec<OsString> = vec!["check".into(), "rules".into()];
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    promtool(&args)
}

fn test_rules(files: &[PathBuf]) -> Result<String, String> {
    let mut args: Vec<OsString> = vec!["test".into(), "rules".into()];
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    promtool(&args)
}

#[test]
fn promtool_accepts_every_rule_file() {
    if let Err(output) = check_rules(&yaml_files(RULES)) {
        panic!("promtool check rules failed:\n{output}");
    }
}

#[test]
fn every_rule_unit_test_passes() {
    if let Err(output) = test_rules(&yaml_files(TESTS)) {
        panic!("promtool test rules failed:\n{output}");
    }
}

// ---- what the rules say ------------------------------------------------------------------

/// Every rule of a rule file (`groups[].rules[]`).
fn rules_of(doc: &Value) -> Vec<&Value> {
    doc["groups"]
        .as_sequence()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|group| group["rules"].as_sequence())
                .flatten()
                .collect()
        })
        .unwrap_or_default()
}

fn alert_names(doc: &Value) -> Vec<String> {
    rules_of(doc)
        .into_iter()
        .filter_map(|rule| rule["alert"].as_str().map(str::to_owned))
        .collect()
}

fn recorded_names(doc: &Value) -> Vec<String> {
    rules_of(doc)
        .into_iter()
        .filter_map(|rule| rule["record"].as_str().map(str::to_owned))
        .collect()
}

/// The anchors GitHub gives the headings of a Markdown text: lower case, spaces to
/// hyphens, other punctuation dropped, `-1`, `-2`… on repeats. Code blocks hold no
/// headings.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if in_code || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let slug: String = line[hashes..]
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let repeats = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
        *repeats += 1;
    }
    anchors
}

/// What an alert of `doc` lacks for the person it reaches: a severity the routing knows,
/// a summary, a description, a runbook_url naming an existing section of the runbook.
fn alert_problems(doc: &Value, runbook_anchors: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for rule in rules_of(doc) {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        if !SEVERITIES.contains(&severity) {
            problems.push(format!(
                "{alert}: labels.severity is {severity:?}, not one of {SEVERITIES:?}"
            ));
        }
        for annotation in ["summary", "description", "runbook_url"] {
            if rule["annotations"][annotation]
                .as_str()
                .is_none_or(|text| text.trim().is_empty())
            {
                problems.push(format!("{alert}: no annotations.{annotation}"));
            }
        }
        if let Some(url) = rule["annotations"]["runbook_url"].as_str() {
            match url.strip_prefix(RUNBOOK_URL) {
                Some(anchor) if runbook_anchors.contains(anchor) => {}
                Some(anchor) => problems.push(format!(
                    "{alert}: runbook_url {url}: {RUNBOOK} has no heading whose anchor is #{anchor}"
                )),
                None => problems.push(format!(
                    "{alert}: runbook_url {url} does not start with {RUNBOOK_URL}"
                )),
            }
        }
    }
    problems
}

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section() {
    let runbook_anchors = anchors(&read(RUNBOOK));
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, doc) in rule_files() {
        for alert in alert_names(&doc) {
            if !seen.insert(alert.clone()) {
                problems.push(format!("{name}: the alert {alert} is defined twice"));
            }
        }
        problems.extend(
            alert_problems(&doc, &runbook_anchors)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    assert!(!seen.is_empty(), "no alert found in {RULES}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- metric names --------------------------------------------------------------------------

/// PromQL words that are not metric names when they stand alone (aggregations, binary
/// operators and modifiers).
const PROMQL_KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "atan2",
    "offset",
    "bool",
    "inf",
    "nan",
    "start",
    "end",
];

/// Keywords whose following parenthesis lists label names, not an expression.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The index just past the closing `close` of the bracket opened at `open`, skipping
/// quoted strings (a label value may hold any bracket).
fn skip_bracket(chars: &[char], open: usize, close: char) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != close {
        if matches!(chars[i], '"' | '\'' | '`') {
            i = skip_string(chars, i);
        } else {
            i += 1;
        }
    }
    i + 1
}

/// The index just past the string whose quote is at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The metric names a PromQL expression reads: the identifiers that are not functions
/// (followed by `(`), keywords, label names (in `{…}` or the list after `by`, `on`…),
/// strings, numbers or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut label_list_next = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_bracket(&chars, i, '}');
        } else if c == '[' {
            i = skip_bracket(&chars, i, ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '(' && label_list_next {
            label_list_next = false;
            i = skip_bracket(&chars, i, ')');
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration (14.4, 1e-3, 15m, 1h30m).
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if LABEL_LISTS.contains(&word.as_str()) {
                label_list_next = next == Some(&'(');
            } else if !PROMQL_KEYWORDS.contains(&word.as_str()) && next != Some(&'(') {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every `.rs` file under `dir` that is part of a crate's sources (`src/`), skipping
/// build output.
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "node_modules") && !name.starts_with('.') {
                source_files(&path, out);
            }
        } else if name.ends_with(".rs") && path.components().any(|c| c.as_os_str() == "src") {
            out.push(path);
        }
    }
}

/// The names the macros `counter!`, `gauge!` and `histogram!` are given in `source`;
/// a histogram is exported as its `_bucket`, `_sum` and `_count` series.
fn names_in_source(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (kind, suffixes) in [
        ("counter!(", &[""][..]),
        ("gauge!(", &[""][..]),
        ("histogram!(", &["_bucket", "_sum", "_count"][..]),
    ] {
        for (at, _) in source.match_indices(kind) {
            let rest = source[at + kind.len()..].trim_start();
            let Some(quoted) = rest.strip_prefix('"') else {
                continue;
            };
            let Some(end) = quoted.find('"') else {
                continue;
            };
            for suffix in suffixes {
                names.insert(format!("{}{suffix}", &quoted[..end]));
            }
        }
    }
    names
}

/// Every series name the workspace's code exports.
fn exported() -> BTreeSet<String> {
    let mut files = Vec::new();
    source_files(&root(), &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .flat_map(|file| names_in_source(&fs::read_to_string(file).unwrap()))
        .collect();
    // Sanity: the scan finds what platform/src/metrics.rs certainly exports.
    assert!(
        names.contains("rpc_server_requests_total")
            && names.contains("rpc_server_duration_seconds_bucket"),
        "the scan of the sources found no RPC metrics: {names:?}"
    );
    names
}

/// The metrics the expressions of `doc` read that are neither exported by the code,
/// made by Prometheus, nor recorded by a rule of `recorded`.
fn unknown_metrics(
    doc: &Value,
    exported: &BTreeSet<String>,
    recorded: &BTreeSet<String>,
) -> Vec<String> {
    let mut unknown = Vec::new();
    for rule in rules_of(doc) {
        let name = rule["alert"]
            .as_str()
            .or_else(|| rule["record"].as_str())
            .unwrap_or("a rule without a name");
        let expr = rule["expr"].as_str().unwrap_or("");
        for metric in metric_names(expr) {
            if !exported.contains(&metric)
                && !recorded.contains(&metric)
                && !FROM_PROMETHEUS.contains(&metric.as_str())
            {
                unknown.push(format!("{name} reads {metric}, which no code exports"));
            }
        }
    }
    unknown
}

#[test]
fn every_metric_the_rules_read_is_exported_by_the_code() {
    let exported = exported();
    let files = rule_files();
    let recorded: BTreeSet<String> = files
        .iter()
        .flat_map(|(_, doc)| recorded_names(doc))
        .collect();
    let mut read = BTreeSet::new();
    let mut problems = Vec::new();
    for (name, doc) in &files {
        for rule in rules_of(doc) {
            read.extend(metric_names(rule["expr"].as_str().unwrap_or("")));
        }
        problems.extend(
            unknown_metrics(doc, &exported, &recorded)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The parser finds names at all (an empty set would pass the check above).
    assert!(
        read.contains("saga_parked_total") && read.contains("up"),
        "the rules' expressions yielded {read:?}"
    );
}

#[test]
fn metric_names_are_read_from_promql_and_from_the_macros() {
    assert_eq!(
        metric_names(
            "sum by (job, step) (increase(saga_parked_total{step=~\"a|b{\"}[15m])) > 0 \
             or sum without (le) (x unless x offset 15m) / on (job) group_left (mode) \
             y_bucket{le=\"0.5\"} * 1e-3 + 14.4 * up"
        ),
        ["saga_parked_total", "up", "x", "y_bucket"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        names_in_source(
            "metrics::histogram!(\n    \"a_seconds\",\n    \"k\" => v,\n);\n\
             metrics::counter!(\"b_total\", \"k\" => v); gauge!(name); gauge!(\"c\")"
        ),
        [
            "a_seconds_bucket",
            "a_seconds_sum",
            "a_seconds_count",
            "b_total",
            "c"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        anchors(
            "# Operations\n## How to look: `grpcurl`, PromQL\n```\n# not a heading\n```\n## Operations"
        ),
        ["operations", "how-to-look-grpcurl-promql", "operations-1"]
            .map(String::from)
            .into()
    );
}

// ---- the tests of the rules ------------------------------------------------------------------

/// For each alert the unit tests name, whether some test expects it to fire and whether
/// some test expects it quiet; and the expressions of every promql_expr_test.
struct Coverage {
    fires: BTreeSet<String>,
    quiet: BTreeSet<String>,
    exprs: Vec<String>,
}

fn coverage(test_docs: &[Value]) -> Coverage {
    let mut coverage = Coverage {
        fires: BTreeSet::new(),
        quiet: BTreeSet::new(),
        exprs: Vec::new(),
    };
    for doc in test_docs {
        for test in doc["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap_or("").to_owned();
                match case["exp_alerts"].as_sequence() {
                    Some(expected) if !expected.is_empty() => coverage.fires.insert(name),
                    _ => coverage.quiet.insert(name),
                };
            }
            for case in test["promql_expr_test"].as_sequence().into_iter().flatten() {
                coverage
                    .exprs
                    .push(case["expr"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    coverage
}

#[test]
fn every_rule_is_tested_and_every_test_file_loads_rules() {
    let mut test_docs = Vec::new();
    let mut loaded = BTreeSet::new();
    for path in yaml_files(TESTS) {
        let name = path.display().to_string();
        let doc = parse(&fs::read_to_string(&path).unwrap(), &name);
        let first_key = doc
            .as_mapping()
            .and_then(|map| map.keys().next())
            .and_then(Value::as_str);
        assert_eq!(
            first_key,
            Some("rule_files"),
            "{name}: rule_files comes first"
        );
        for file in doc["rule_files"].as_sequence().into_iter().flatten() {
            let file = path.parent().unwrap().join(file.as_str().unwrap());
            loaded.insert(
                fs::canonicalize(&file)
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", file.display())),
            );
        }
        test_docs.push(doc);
    }
    for rule_file in yaml_files(RULES) {
        assert!(
            loaded.contains(&fs::canonicalize(&rule_file).unwrap()),
            "no test file of {TESTS} loads {}",
            rule_file.display()
        );
    }
    let coverage = coverage(&test_docs);
    let mut problems = Vec::new();
    for (name, doc) in rule_files() {
        for alert in alert_names(&doc) {
            if !coverage.fires.contains(&alert) {
                problems.push(format!("{name}: no test expects {alert} to fire"));
            }
            if !coverage.quiet.contains(&alert) {
                problems.push(format!(
                    "{name}: no test expects {alert} to stay quiet (exp_alerts: [])"
                ));
            }
        }
        for record in recorded_names(&doc) {
            if !coverage
                .exprs
                .iter()
                .any(|expr| metric_names(expr).contains(&record))
            {
                problems.push(format!("{name}: no promql_expr_test reads {record}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- compose loads these files ------------------------------------------------------------------

#[test]
fn compose_prometheus_loads_the_rule_files() {
    let config = parse(
        &read("deploy/prometheus/prometheus.yml"),
        "deploy/prometheus/prometheus.yml",
    );
    let globs: Vec<&str> = config["rule_files"]
        .as_sequence()
        .expect("deploy/prometheus/prometheus.yml has rule_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let compose = parse(&read("compose.yaml"), "compose.yaml");
    let volumes: Vec<&str> = compose["services"]["prometheus"]["volumes"]
        .as_sequence()
        .expect("compose.yaml's prometheus service has volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // `./deploy/prometheus/rules:/etc/prometheus/rules:ro` → the folder Prometheus sees.
    let mounted = volumes
        .iter()
        .find_map(|volume| {
            let mut parts = volume.split(':');
            (parts.next() == Some("./deploy/prometheus/rules")).then(|| parts.next())
        })
        .flatten()
        .unwrap_or_else(|| {
            panic!("compose.yaml does not mount ./deploy/prometheus/rules: {volumes:?}")
        });
    assert!(
        globs.contains(&format!("{mounted}/*.yml").as_str()),
        "deploy/prometheus/prometheus.yml's rule_files {globs:?} do not load {mounted}/*.yml, \
         where compose mounts deploy/prometheus/rules"
    );
}

// ---- the checks catch what they are for ----------------------------------------------------------

/// A folder of its own under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("shop-alerts-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("rules")).unwrap();
        fs::create_dir_all(dir.join("tests")).unwrap();
        Self(dir)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_checks_catch_broken_copies() {
    let good = read("deploy/prometheus/rules/alerts.yml");
    let runbook_anchors = anchors(&read(RUNBOOK));
    let exported = exported();
    let none = BTreeSet::new();
    assert!(alert_problems(&parse(&good, "alerts.yml"), &runbook_anchors).is_empty());
    assert!(unknown_metrics(&parse(&good, "alerts.yml"), &exported, &none).is_empty());

    // A metric nobody exports (a typo, or a metric renamed in the code).
    let misspelt = good.replace(
        "max by (consumer) (consumer_lag) > 100",
        "max by (consumer) (consumer_lagg) > 100",
    );
    assert_ne!(misspelt, good);
    assert_eq!(
        unknown_metrics(&parse(&misspelt, "misspelt"), &exported, &none),
        ["ConsumerFallingBehind reads consumer_lagg, which no code exports"]
    );

    // An alert without its runbook_url, and one whose section does not exist.
    let without: String = good
        .lines()
        .filter(|line| !line.contains("runbook_url: docs/OPERATIONS.md#servicedown"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        alert_problems(&parse(&without, "without"), &runbook_anchors),
        ["ServiceDown: no annotations.runbook_url"]
    );
    let dangling = good.replace("OPERATIONS.md#servicedown", "OPERATIONS.md#service-is-down");
    assert_eq!(
        alert_problems(&parse(&dangling, "dangling"), &runbook_anchors),
        [
            "ServiceDown: runbook_url docs/OPERATIONS.md#service-is-down: docs/OPERATIONS.md has no heading whose anchor is #service-is-down"
        ]
    );
    let no_severity = good.replace("severity: page", "severity: urgent");
    assert!(
        alert_problems(&parse(&no_severity, "no severity"), &runbook_anchors)
            .iter()
            .any(|p| p.starts_with("ServiceDown: labels.severity is \"urgent\"")),
    );

    // promtool's failures reach the test: an expression that does not parse, and a unit
    // test whose expectation does not hold.
    let scratch = Scratch::new("broken");
    let unparsable = scratch.write(
        "rules/bad.yml",
        "groups:\n  - name: bad\n    rules:\n      - alert: Bad\n        expr: sum(rate(up[5m])\n",
    );
    let output = check_rules(&[unparsable]).expect_err("promtool accepts an unparsable rule");
    assert!(output.contains("bad.yml"), "promtool said: {output}");

    scratch.write("rules/alerts.yml", &good);
    let wrong = scratch.write(
        "tests/wrong.yml",
        "rule_files:\n  - ../rules/alerts.yml\ntests:\n  - interval: 1m\n    input_series:\n      \
         - series: 'up{job=\"payment-svc\", instance=\"payment-svc:9100\"}'\n        values: '1x10'\n    \
         alert_rule_test:\n      - eval_time: 5m\n        alertname: ServiceDown\n        exp_alerts:\n          \
         - exp_labels:\n              severity: page\n              job: payment-svc\n              \
         instance: payment-svc:9100\n",
    );
    let output = test_rules(&[wrong]).expect_err("promtool passes a test that must fail");
    assert!(output.contains("ServiceDown"), "promtool said: {output}");

    // A rule left untested.
    let untested = parse(
        "tests:\n  - alert_rule_test:\n      - alertname: ServiceDown\n        exp_alerts: []\n",
        "untested",
    );
    let coverage = coverage(&[untested]);
    assert!(coverage.quiet.contains("ServiceDown") && !coverage.fires.contains("ServiceDown"));
}
