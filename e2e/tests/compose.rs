//! Static checks of the container path, no Docker needed: compose.yaml (and any override
//! file) against the Compose Specification's JSON schema, the Dockerfile, the settings
//! each binary really reads (taken from its source), deploy/prometheus/prometheus.yml,
//! deploy/postgres/init.sql and the NATS broker's service. A drift between the compose file and the code fails here
//! rather than at `docker compose up`.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

mod repo;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
};

use repo::{
    DatabaseUrl, Dockerfile, compose, compose_services as services, dockerfile, env_names_read_by,
    files_of, read, root,
};
use serde_yaml_ng::Value;

/// Variables a binary may get although its source names them in no clap `env = "..."`
/// nor `env::var("...")`: read by a library, or a setting being added. The test lists
/// the ones it did not find in the source, so they are known, not hidden.
const READ_OUTSIDE_CLAP: &[&str] = &[
    // tracing-subscriber's EnvFilter::try_from_default_env.
    "RUST_LOG",
    // The OpenTelemetry exporter settings (platform's telemetry).
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    // `--metrics-listen` / METRICS_LISTEN_ADDR of docs/CONTRACT.md.
    "METRICS_LISTEN_ADDR",
];

/// Binaries that are clients of the shop rather than part of it: the console (the saga
/// viewer) serves web pages and calls only the orchestrator's public API, so it has no
/// database, broker, metrics or traces of its own.
const SHOP_CLIENTS: &[&str] = &["console"];

/// Dependency conditions that let `docker compose up --wait` mean "ready".
const CONDITIONS: &[&str] = &["service_healthy", "service_completed_successfully"];

// ---- compose.yaml ---------------------------------------------------------------------

/// `environment:` as a map, whether written as a mapping or as `KEY=VALUE` items.
fn env_of(service: &Value) -> BTreeMap<String, String> {
    let scalar = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), scalar(v)))
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let item = item.as_str().unwrap();
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A service that runs once and exits (`restart: "no"`), like the seed job.
fn is_one_shot(service: &Value) -> bool {
    service["restart"].as_str() == Some("no")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The port of `host:port` or `scheme://[user:pass@]host:port[/path]`.
fn host_port(address: &str) -> (String, u16) {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("`{address}` has no port"));
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("`{address}`: bad port"));
    (host.to_owned(), port)
}

/// The gRPC port a service built from this repo listens on (its LISTEN_ADDR).
fn listen_port(name: &str, service: &Value) -> u16 {
    let env = env_of(service);
    let addr = env
        .get("LISTEN_ADDR")
        .unwrap_or_else(|| panic!("{name}: no LISTEN_ADDR"));
    host_port(addr).1
}

// ---- the Compose Specification ----------------------------------------------------------

/// The vendored schema: see tests/compose-spec/README.md for where it comes from.
const COMPOSE_SPEC: &str = "e2e/tests/compose-spec/compose-spec.json";

/// The Compose files at the repository root, which `docker compose` reads by default or
/// with `-f`: compose.yaml, and any compose.override.yaml, compose.*.yaml or
/// docker-compose*.yml that someone adds later. Listed rather than named so that an
/// override file is validated the day it appears.
fn compose_files() -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(root())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            (name.starts_with("compose") || name.starts_with("docker-compose"))
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .collect();
    files.sort();
    files
}

fn compose_spec() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&read(COMPOSE_SPEC))
        .unwrap_or_else(|e| panic!("{COMPOSE_SPEC} is not JSON: {e}"));
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{COMPOSE_SPEC} is not a usable schema: {e}"))
}

/// Every way `yaml` breaks the Compose Specification, one line each (where, then what);
/// empty when it conforms. `<<` merge keys are applied first, as compose does, since the
/// schema describes the merged document.
fn spec_violations(spec: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let mut doc: Value = match serde_yaml_ng::from_str(yaml) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    if let Err(e) = doc.apply_merge() {
        return vec![format!("merge keys: {e}")];
    }
    let json = match serde_json::to_value(&doc) {
        Ok(json) => json,
        Err(e) => return vec![format!("not representable as JSON: {e}")],
    };
    spec.iter_errors(&json)
        .map(|error| format!("at `{}`: {error}", error.instance_path()))
        .collect()
}

/// The services built from this repo: name -> (service, binary its target runs).
fn built_services(df: &Dockerfile) -> BTreeMap<String, (Value, String)> {
    services()
        .into_iter()
        .filter(|(_, service)| !service["build"].is_null())
        .map(|(name, service)| {
            let target = service["build"]["target"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: build without a target"));
            let entrypoint = df.entrypoint(target);
            let binary = entrypoint
                .first()
                .and_then(|path| path.strip_prefix("/usr/local/bin/"))
                .unwrap_or_else(|| panic!("{name}: target {target} runs no /usr/local/bin binary"))
                .to_owned();
            (name, (service, binary))
        })
        .collect()
}

// ---- the checks -----------------------------------------------------------------------

#[test]
fn every_compose_file_follows_the_compose_specification() {
    let spec = compose_spec();
    let files = compose_files();
    assert!(
        files.iter().any(|file| file == "compose.yaml"),
        "compose.yaml is among the files checked: {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        for violation in spec_violations(&spec, &read(file)) {
            failures.push(format!("{file} {violation}"));
        }
    }
    assert!(
        failures.is_empty(),
        "not valid under the Compose Specification ({COMPOSE_SPEC}):\n{}",
        failures.join("\n")
    );
}

/// The validation above is only worth something if it rejects what `docker compose`
/// rejects: each broken copy of the real compose.yaml must fail, and at the right place.
#[test]
fn the_specification_check_rejects_misspelt_keys_and_wrong_types() {
    let spec = compose_spec();
    let original = read("compose.yaml");
    let broken = |from: &str, to: &str| {
        assert_eq!(
            original.matches(from).count(),
            1,
            "the test edits exactly one `{from}` of compose.yaml; update it to the file"
        );
        original.replacen(from, to, 1)
    };
    let orchestrator_ports = "    ports:\n      - \"127.0.0.1:50050:50050\"\n";
    let cases = [
        // A misspelt top-level key (reported at the root, the empty path).
        ("servics", broken("\nservices:\n", "\nservics:\n"), ""),
        // A misspelt service key.
        (
            "healthchek",
            broken(
                "      target: seed\n",
                "      target: seed\n    healthchek:\n      test: [\"CMD\", \"true\"]\n",
            ),
            "/services/seed",
        ),
        // A scalar where a list belongs.
        (
            "ports: 5",
            broken(orchestrator_ports, "    ports: 5\n"),
            "/services/orchestrator/ports",
        ),
        // A value outside an enumeration.
        (
            "service_complete",
            broken(
                "seed:\n        condition: service_completed_successfully",
                "seed:\n        condition: service_complete",
            ),
            "/services/orchestrator/depends_on",
        ),
        // A misspelt key inside a merged `<<` block: only caught after the merge.
        (
            "start_periode",
            broken("  start_period: 30s\n", "  start_periode: 30s\n"),
            "/services/postgres/healthcheck",
        ),
    ];
    assert!(
        spec_violations(&spec, &original).is_empty(),
        "the unbroken compose.yaml must pass for the cases below to mean anything"
    );
    for (what, yaml, path) in cases {
        let violations = spec_violations(&spec, &yaml);
        assert!(
            !violations.is_empty(),
            "`{what}` got through the Compose Specification check"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with(&format!("at `{path}`:"))),
            "`{what}` was rejected, but not at `{path}`: {violations:?}"
        );
    }
}

#[test]
fn every_build_names_a_target_of_the_dockerfile() {
    let df = dockerfile();
    let services = services();
    assert!(!services.is_empty(), "compose.yaml has no services");
    for (name, service) in &services {
        let build = &service["build"];
        if build.is_null() {
            assert!(
                service["image"].as_str().is_some(),
                "{name}: neither build nor image"
            );
            continue;
        }
        assert_eq!(
            build["context"].as_str(),
            Some("."),
            "{name}: build context is the workspace root"
        );
        let file = build["dockerfile"].as_str().unwrap_or("Dockerfile");
        assert_eq!(
            file, "Dockerfile",
            "{name}: built from the top-level Dockerfile"
        );
        let target = build["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: build without a target"));
        assert!(
            df.stages.contains_key(target),
            "{name}: target {target} is no `FROM ... AS {target}` of the Dockerfile (stages: {:?})",
            df.stages.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_dockerfile_builds_every_binary_its_targets_run() {
    let df = dockerfile();
    for bin in &df.built {
        assert!(
            files_of(bin).is_some(),
            "Dockerfile builds --bin {bin}, which no workspace crate has"
        );
        assert!(
            df.text.contains(&format!("target/release/{bin}")),
            "Dockerfile builds {bin} but does not copy target/release/{bin} out of the builder"
        );
    }
    for (name, stage) in &df.stages {
        if let Some(bin) = stage
            .entrypoint
            .first()
            .and_then(|path| path.strip_prefix("/usr/local/bin/"))
        {
            assert!(
                df.built.contains(bin),
                "target {name} runs {bin}, which the builder does not build"
            );
        }
    }
    let runtime = &df.stages["runtime"];
    assert!(
        runtime.base.starts_with("debian:"),
        "runtime: {}",
        runtime.base
    );
    assert!(
        df.text.contains("USER 10001"),
        "the runtime runs as the unprivileged uid 10001"
    );
}

#[test]
fn every_environment_variable_is_one_the_binary_reads() {
    let df = dockerfile();
    let mut unknown = Vec::new();
    for (name, (service, binary)) in built_services(&df) {
        let read = env_names_read_by(&binary);
        let not_in_source: Vec<&str> = READ_OUTSIDE_CLAP
            .iter()
            .copied()
            .filter(|var| !read.contains(*var))
            .collect();
        for var in env_of(&service).keys() {
            if read.contains(var) {
                continue;
            }
            if not_in_source.contains(&var.as_str()) {
                eprintln!("note: {name} sets {var}, which {binary}'s source does not name yet");
                continue;
            }
            unknown.push(format!("{name} sets {var}, which {binary} does not read"));
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn ports_agree_between_listen_address_health_check_image_and_callers() {
    let df = dockerfile();
    let services = services();
    let built = built_services(&df);
    for (name, (service, binary)) in &built {
        if is_one_shot(service) {
            continue;
        }
        let port = listen_port(name, service);
        let expected = [
            "CMD".to_owned(),
            format!("/usr/local/bin/{binary}"),
            "healthcheck".to_owned(),
            "--addr".to_owned(),
            format!("127.0.0.1:{port}"),
        ];
        assert_eq!(
            strings(&service["healthcheck"]["test"]),
            expected,
            "{name}: the health check runs the binary's healthcheck subcommand on LISTEN_ADDR's port"
        );
        let target = service["build"]["target"].as_str().unwrap();
        assert!(
            df.exposed(target).contains(&port),
            "{name}: target {target} does not EXPOSE {port}"
        );
        if let Some(image_listen) = df.env(target, "LISTEN_ADDR") {
            assert_eq!(
                host_port(&image_listen).1,
                port,
                "{name}: the image's LISTEN_ADDR and compose's differ"
            );
        }
    }
    // Every *_SVC_URL points at a compose service, on the port that service listens on.
    for (name, service) in &services {
        for (var, url) in env_of(service) {
            if !var.ends_with("_SVC_URL") {
                continue;
            }
            let (host, port) = host_port(&url);
            let callee = services
                .get(&host)
                .unwrap_or_else(|| panic!("{name}: {var}={url} names no compose service"));
            assert_eq!(
                port,
                listen_port(&host, callee),
                "{name}: {var}={url} is not the port {host} listens on"
            );
        }
    }
    // The orchestrator is told where every downstream is.
    let (orchestrator, binary) = built
        .values()
        .find(|(_, binary)| binary == "orchestrator")
        .expect("compose runs the orchestrator");
    let set = env_of(orchestrator);
    for var in env_names_read_by(binary) {
        if var.ends_with("_SVC_URL") {
            assert!(set.contains_key(&var), "orchestrator: {var} is not set");
        }
    }
}

#[test]
fn health_checks_and_dependencies_let_up_wait_return() {
    let services = services();
    for (name, service) in &services {
        let has_check = !strings(&service["healthcheck"]["test"]).is_empty();
        if is_one_shot(service) {
            assert!(!has_check, "{name}: a one-shot job has no health check");
            // `up --wait` fails on an exited container unless a running service depends
            // on it with service_completed_successfully.
            let awaited = services.iter().any(|(_, other)| {
                !is_one_shot(other)
                    && other["depends_on"][name.as_str()]["condition"].as_str()
                        == Some("service_completed_successfully")
            });
            assert!(
                awaited,
                "{name}: no long-running service waits for it (service_completed_successfully), so `up --wait` would fail"
            );
        } else {
            assert!(
                has_check,
                "{name}: a long-running service needs a health check"
            );
        }
        let depends_on = &service["depends_on"];
        if depends_on.is_null() {
            continue;
        }
        let depends_on = depends_on
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: depends_on in the long form, with conditions"));
        for (dependency, how) in depends_on {
            let dependency = dependency.as_str().unwrap();
            let target = services
                .get(dependency)
                .unwrap_or_else(|| panic!("{name}: depends on unknown {dependency}"));
            let condition = how["condition"].as_str().unwrap_or("service_started");
            assert!(
                CONDITIONS.contains(&condition),
                "{name} -> {dependency}: condition {condition}, expected one of {CONDITIONS:?}"
            );
            if condition == "service_healthy" {
                assert!(
                    !strings(&target["healthcheck"]["test"]).is_empty(),
                    "{name} waits for {dependency} to be healthy, which has no health check"
                );
            } else {
                assert!(
                    is_one_shot(target),
                    "{name} waits for {dependency} to complete, which is not a one-shot job"
                );
            }
        }
        // Whatever a service connects to (its database, the event broker, the services
        // it calls) is healthy before it starts.
        for (var, value) in env_of(service) {
            if var != "DATABASE_URL"
                && var != "NATS_URL"
                && var != "ORCHESTRATOR_URL"
                && !var.ends_with("_SVC_URL")
            {
                continue;
            }
            let host = host_port(&value).0;
            assert_eq!(
                depends_on
                    .get(host.as_str())
                    .and_then(|how| how["condition"].as_str()),
                Some("service_healthy"),
                "{name}: {var} points at {host}, which it does not wait for (service_healthy)"
            );
        }
    }
}

#[test]
fn only_the_entry_point_and_the_uis_are_published() {
    let services = services();
    let mut published = BTreeMap::new();
    for (name, service) in &services {
        let ports = strings(&service["ports"]);
        if ports.is_empty() {
            continue;
        }
        let container_ports: BTreeSet<u16> = ports
            .iter()
            .map(|p| {
                let container = p.rsplit(':').next().unwrap();
                container.trim_end_matches("/tcp").parse().unwrap()
            })
            .collect();
        let image = service["image"].as_str().unwrap_or_default();
        let allowed: BTreeSet<u16> = if image.starts_with("jaegertracing/") {
            BTreeSet::from([16686])
        } else if image.starts_with("prom/prometheus") {
            BTreeSet::from([9090])
        } else if name == "orchestrator" || name == "console" {
            BTreeSet::from([listen_port(name, service)])
        } else {
            panic!("{name} publishes {ports:?}: only the orchestrator and the UIs may");
        };
        assert_eq!(container_ports, allowed, "{name} publishes {ports:?}");
        published.insert(name.clone(), container_ports);
    }
    assert_eq!(
        published.len(),
        4,
        "the orchestrator, the console, Jaeger and Prometheus are published: {published:?}"
    );
}

#[test]
fn prometheus_scrapes_every_service_and_traces_go_to_jaeger() {
    let df = dockerfile();
    let services = services();
    let config: Value = serde_yaml_ng::from_str(&read("deploy/prometheus/prometheus.yml"))
        .unwrap_or_else(|e| panic!("deploy/prometheus/prometheus.yml does not parse: {e}"));
    let targets: BTreeSet<String> = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|static_config| strings(&static_config["targets"]))
        .collect();
    for (name, (service, binary)) in built_services(&df) {
        if is_one_shot(&service) || SHOP_CLIENTS.contains(&binary.as_str()) {
            continue;
        }
        let env = env_of(&service);
        let metrics = env
            .get("METRICS_LISTEN_ADDR")
            .unwrap_or_else(|| panic!("{name}: no METRICS_LISTEN_ADDR"));
        let target = format!("{name}:{}", host_port(metrics).1);
        assert!(
            targets.contains(&target),
            "deploy/prometheus/prometheus.yml does not scrape {target}"
        );
        assert_eq!(
            env.get("OTEL_SERVICE_NAME"),
            Some(&name),
            "{name}: OTEL_SERVICE_NAME names the service"
        );
        let endpoint = env
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .unwrap_or_else(|| panic!("{name}: no OTEL_EXPORTER_OTLP_ENDPOINT"));
        let (host, port) = host_port(endpoint);
        assert!(
            services[&host]["image"]
                .as_str()
                .is_some_and(|image| image.starts_with("jaegertracing/")),
            "{name}: traces go to {host}, which is not Jaeger"
        );
        assert_eq!(port, 4317, "{name}: OTLP/gRPC is port 4317");
    }
    for target in &targets {
        let host = host_port(target).0;
        assert!(
            host == "localhost" || services.contains_key(&host),
            "deploy/prometheus/prometheus.yml scrapes {target}, which is no compose service"
        );
    }
    let prometheus = services
        .values()
        .find(|s| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("prom/prometheus"))
        })
        .expect("a Prometheus service");
    assert!(
        strings(&prometheus["volumes"])
            .iter()
            .any(|v| v
                .starts_with("./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml")),
        "Prometheus mounts deploy/prometheus/prometheus.yml"
    );
}

#[test]
fn each_service_has_its_own_database_and_role() {
    let services = services();
    let init = read("deploy/postgres/init.sql");
    let mut users = BTreeSet::new();
    let mut databases = BTreeSet::new();
    for (name, service) in &services {
        let Some(url) = env_of(service).get("DATABASE_URL").cloned() else {
            continue;
        };
        let DatabaseUrl {
            role: user,
            password,
            host,
            database,
        } = DatabaseUrl::parse(&url).unwrap_or_else(|e| panic!("{name}: DATABASE_URL: {e}"));
        assert!(
            services[&host]["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("postgres")),
            "{name}: DATABASE_URL host {host} is not the Postgres service"
        );
        assert!(users.insert(user.to_owned()), "{name}: role {user} shared");
        assert!(
            databases.insert(database.to_owned()),
            "{name}: database {database} shared"
        );
        for statement in [
            format!("CREATE ROLE {user} LOGIN PASSWORD '{password}';"),
            format!("CREATE DATABASE {database} OWNER {user};"),
            format!("REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC;"),
        ] {
            assert!(
                init.contains(&statement),
                "deploy/postgres/init.sql lacks `{statement}` ({name})"
            );
        }
    }
    assert!(
        users.len() >= 5,
        "every service has its own database: {users:?}"
    );
    let postgres = services
        .values()
        .find(|s| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("postgres"))
        })
        .unwrap();
    assert!(
        strings(&postgres["volumes"])
            .iter()
            .any(|v| v.starts_with("./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/")),
        "Postgres runs deploy/postgres/init.sql on its first start"
    );
}

// ---- images ---------------------------------------------------------------------------

/// `rust-version` of the workspace's `[workspace.package]`.
fn workspace_rust_version() -> String {
    let manifest = read("Cargo.toml");
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .expect("Cargo.toml has [workspace.package]");
    let section = section.split("\n[").next().unwrap();
    section
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "rust-version").then(|| value.trim().trim_matches('"').to_owned())
        })
        .expect("[workspace.package] sets rust-version")
}

#[test]
fn the_builder_runs_the_workspace_rust_version_on_the_runtime_debian() {
    let df = dockerfile();
    let rust_version = workspace_rust_version();
    assert_eq!(
        df.arg("RUST_VERSION").as_deref(),
        Some(rust_version.as_str()),
        "the Dockerfile's ARG RUST_VERSION is the workspace's rust-version (Cargo.toml), \
         so images are built with the toolchain the workspace says it supports"
    );
    let builder = &df.stages["builder"].base;
    let suite = builder
        .strip_prefix("rust:${RUST_VERSION}-")
        .unwrap_or_else(|| panic!("builder: `rust:${{RUST_VERSION}}-SUITE`, not {builder}"));
    assert_eq!(
        df.stages["runtime"].base,
        format!("debian:{suite}-slim"),
        "the runtime is the builder's Debian release, so the binaries find the glibc they \
         were linked against"
    );
}

/// The tag of an image reference (`name:tag`, a registry port being no tag).
fn tag_of(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

#[test]
fn every_image_is_pinned_to_a_release() {
    let df = dockerfile();
    let mut images: Vec<(String, String)> = services()
        .into_iter()
        .filter_map(|(name, service)| Some((name, service["image"].as_str()?.to_owned())))
        .collect();
    // Dockerfile stages built FROM an image rather than another stage.
    images.extend(
        df.stages
            .iter()
            .filter(|(_, stage)| {
                // `FROM ${ARG}` names a stage through a build argument (BINARIES).
                let base = df.base_of(stage);
                // `scratch` is Docker's reserved empty image, not one that is pulled.
                !df.stages.contains_key(&base) && base != "scratch"
            })
            .map(|(name, stage)| (format!("Dockerfile stage {name}"), stage.base.clone())),
    );
    assert!(images.len() >= 5, "images found: {images:?}");
    // Tags that move from one release line to the next on their own: an image on one of
    // them can leave a supported release (or change major version) without a diff here.
    const MOVING: &[&str] = &[
        "latest", "stable", "edge", "main", "master", "nightly", "testing", "unstable", "sid",
    ];
    for (user, image) in &images {
        let tag = tag_of(image)
            .unwrap_or_else(|| panic!("{user}: {image} has no tag, so it means `latest`"));
        let line = tag.split('-').next().unwrap_or(tag);
        assert!(
            !line.is_empty() && !MOVING.contains(&line),
            "{user}: {image} names no release (a version or a Debian release name)"
        );
    }
}

#[test]
fn health_checks_need_no_shell() {
    // The exec form runs the program directly: it works in images without /bin/sh
    // (distroless, scratch) and cannot be broken by shell quoting.
    for (name, service) in services() {
        let test = &service["healthcheck"]["test"];
        assert!(
            !test.is_string(),
            "{name}: a health check written as a string runs under /bin/sh (CMD-SHELL)"
        );
        let test = strings(test);
        if let Some(form) = test.first() {
            assert_eq!(
                form, "CMD",
                "{name}: health check in exec form ([\"CMD\", ...]), not {test:?}"
            );
        }
    }
}

#[test]
fn jaeger_is_v2_and_checks_its_own_health_endpoint() {
    let services = services();
    let (name, jaeger) = services
        .iter()
        .find(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("jaegertracing/"))
        })
        .expect("a Jaeger service");
    let image = jaeger["image"].as_str().unwrap();
    let (repository, tag) = image.split_once(':').expect("Jaeger's image has a tag");
    assert_eq!(
        repository, "jaegertracing/jaeger",
        "{name}: Jaeger v2's image; v1 (all-in-one and friends) reached end of life on 2025-12-31"
    );
    assert!(tag.starts_with("2."), "{name}: a 2.x release, not {tag}");
    let env = env_of(jaeger);
    assert!(
        !env.keys().any(|k| k.starts_with("COLLECTOR_")),
        "{name}: COLLECTOR_* are Jaeger v1 settings, which v2 ignores: {env:?}"
    );
    assert_eq!(
        env.get("JAEGER_LISTEN_HOST").map(String::as_str),
        Some("0.0.0.0"),
        "{name}: the other containers reach its OTLP receivers only if it listens on all interfaces"
    );
    let test = strings(&jaeger["healthcheck"]["test"]);
    assert!(
        test.iter()
            .any(|arg| arg == "http://127.0.0.1:13133/status"),
        "{name}: the health check asks the healthcheckv2 extension (13133, /status): {test:?}"
    );
}

// ---- NATS -------------------------------------------------------------------------------

/// The value after the first of `names` in a command line.
fn flag_value<'a>(command: &'a [String], names: &[&str]) -> Option<&'a str> {
    command
        .windows(2)
        .find(|pair| names.contains(&pair[0].as_str()))
        .map(|pair| pair[1].as_str())
}

/// The volume (or host folder) a service mounts at `path`.
fn volume_at(service: &Value, path: &str) -> Option<String> {
    strings(&service["volumes"]).into_iter().find_map(|mount| {
        let (source, rest) = mount.split_once(':')?;
        (rest.split(':').next() == Some(path)).then(|| source.to_owned())
    })
}

#[test]
fn nats_keeps_its_stream_on_a_volume_and_every_server_waits_for_it() {
    let df = dockerfile();
    let doc = compose();
    let services = services();
    let (name, nats) = services
        .iter()
        .find(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
        .expect("a NATS service (the official `nats:` image) for the events");
    let image = nats["image"].as_str().unwrap();
    let tag = tag_of(image).unwrap_or_default();
    assert!(
        tag.starts_with("2."),
        "{name}: a NATS 2.x release, not {image}"
    );

    // nats-server flags, in list form so no shell splits them.
    let command = strings(&nats["command"]);
    assert!(
        command.iter().any(|a| a == "-js" || a == "--jetstream"),
        "{name}: JetStream on (-js): {command:?}"
    );
    let store = flag_value(&command, &["-sd", "--store_dir"])
        .unwrap_or_else(|| panic!("{name}: a JetStream store folder (-sd): {command:?}"));
    let volume = volume_at(nats, store)
        .unwrap_or_else(|| panic!("{name}: the store {store} is on no volume"));
    assert!(
        !volume.starts_with(['.', '/', '~']) && doc["volumes"].get(volume.as_str()).is_some(),
        "{name}: the store is on a named volume declared under `volumes:`, not {volume}"
    );
    // Mutual TLS and each certificate's permissions: the nats.conf the certs job writes
    // (e2e/src/nats_auth.rs), read from the volume that job writes to.
    let config = flag_value(&command, &["-c", "--config"]).unwrap_or_else(|| {
        panic!("{name}: the certs job's nats.conf (--config), for TLS and authorization")
    });
    let (folder, file) = config.rsplit_once('/').unwrap();
    assert_eq!(file, "nats.conf", "{name}: {config} is not the certs job's");
    let (certs_name, certs) = services
        .iter()
        .find(|(_, s)| s["build"]["target"].as_str() == Some("certs"))
        .expect("a certs job (the Dockerfile's certs target)");
    let certs_command = strings(&certs["command"]);
    let written = flag_value(&certs_command, &["--dir"])
        .unwrap_or_else(|| panic!("{certs_name}: --dir, where it writes"));
    assert!(
        volume_at(nats, folder).is_some() && volume_at(nats, folder) == volume_at(certs, written),
        "{name}: {folder} is not the volume {certs_name} writes its files to"
    );
    assert!(
        nats["depends_on"][certs_name.as_str()]["condition"].as_str()
            == Some("service_completed_successfully"),
        "{name}: starts once {certs_name} wrote nats.conf"
    );

    let client_port: u16 =
        flag_value(&command, &["-p", "--port"]).map_or(4222, |p| p.parse().unwrap());
    let monitor_port: u16 = flag_value(&command, &["-m", "--http_port"])
        .unwrap_or_else(|| panic!("{name}: the monitoring port (-m), for the health check"))
        .parse()
        .unwrap();

    // The health check asks the server's own /healthz, with a program the image has.
    let test = strings(&nats["healthcheck"]["test"]);
    let healthz = format!("http://127.0.0.1:{monitor_port}/healthz");
    assert!(
        test.iter().any(|arg| arg.starts_with(&healthz)),
        "{name}: the health check asks {healthz}: {test:?}"
    );
    if test.get(1).is_some_and(|program| program == "wget") {
        assert!(
            tag.contains("-alpine"),
            "{name}: {image} has no wget: the default (scratch) image holds only \
             /nats-server; the -alpine variants have busybox's"
        );
    }
    assert!(
        strings(&nats["ports"]).is_empty(),
        "{name}: the broker is reachable inside the compose network only"
    );

    // Every long-running server is told where the broker is and waits for it.
    let url = format!("nats://{name}:{client_port}");
    let mut told = 0;
    for (service_name, (service, binary)) in built_services(&df) {
        if is_one_shot(&service) || SHOP_CLIENTS.contains(&binary.as_str()) {
            continue;
        }
        assert!(
            env_names_read_by(&binary).contains("NATS_URL"),
            "{service_name}: {binary} reads no NATS_URL"
        );
        assert_eq!(
            env_of(&service).get("NATS_URL"),
            Some(&url),
            "{service_name}: NATS_URL is {url}"
        );
        assert_eq!(
            service["depends_on"][name.as_str()]["condition"].as_str(),
            Some("service_healthy"),
            "{service_name}: waits for {name} to be healthy"
        );
        told += 1;
    }
    assert_eq!(
        told, 5,
        "the four services and the orchestrator use the broker"
    );
}
