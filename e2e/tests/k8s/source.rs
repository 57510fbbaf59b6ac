//! What the repository says the manifests must agree with: the Dockerfile's targets, the
//! settings each binary reads (from its source), the workspace's version, compose.yaml.

use std::time::Duration;

pub use crate::repo::{
    Dockerfile, binary_of, compose_services, dockerfile, env_names_read_by, read,
};

/// `version` of the workspace's members (all share one; the images are tagged with it).
pub fn workspace_version() -> String {
    let manifest = read("orchestrator/Cargo.toml");
    manifest
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "version").then(|| value.trim().trim_matches('"').to_owned())
        })
        .expect("orchestrator/Cargo.toml has a version")
}

/// The default of a clap setting read from `env = "NAME"`, as written in the source
/// (`default_value = "10s"` on the same attribute).
pub fn default_of(file: &str, env: &str) -> String {
    let source = read(file);
    let marker = format!("env = \"{env}\"");
    let at = source
        .find(&marker)
        .unwrap_or_else(|| panic!("{file} reads no {env}"));
    let attribute = &source[at..at + source[at..].find(")]").unwrap()];
    let rest = attribute
        .split("default_value = \"")
        .nth(1)
        .unwrap_or_else(|| panic!("{file}: {env} has no default_value"));
    rest[..rest.find('"').unwrap()].to_owned()
}

/// SHUTDOWN_GRACE's default: how long a server drains after SIGTERM.
pub fn shutdown_grace_default() -> Duration {
    platform::config::parse_duration(&default_of("platform/src/config.rs", "SHUTDOWN_GRACE"))
        .unwrap()
}

/// How long the orchestrator gives its drivers to hand back their leases after the
/// drain: `shut_down(Duration::from_secs(N))` in orchestrator/src/lib.rs.
pub fn orchestrator_lease_handback() -> Duration {
    let source = read("orchestrator/src/lib.rs");
    let marker = "shut_down(Duration::from_secs(";
    let at = source
        .find(marker)
        .expect("orchestrator/src/lib.rs hands its leases back with shut_down(...)");
    let rest = &source[at + marker.len()..];
    Duration::from_secs(rest[..rest.find(')').unwrap()].parse().unwrap())
}

/// A compose service's `environment:` value for `key`.
pub fn compose_env(service: &serde_yaml_ng::Value, key: &str) -> Option<String> {
    service["environment"][key].as_str().map(str::to_owned)
}
