//! What the repository says the manifests must agree with: the Dockerfile's targets, the
//! settings each binary reads (from its source), the workspace's version, compose.yaml.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use super::support::{read, root};

/// A target (stage) of the Dockerfile.
#[derive(Debug, Default, Clone)]
pub struct Stage {
    pub base: String,
    pub entrypoint: Vec<String>,
    pub expose: BTreeSet<u16>,
    pub env: BTreeMap<String, String>,
    pub user: Option<String>,
}

/// Instructions with their continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(body) => {
                current.push_str(body);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// Every stage of the Dockerfile by name, each with what it inherits from the stages it
/// is built `FROM` folded in (entry point, exposed ports, ENV, USER).
pub fn dockerfile() -> BTreeMap<String, Stage> {
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut current = String::new();
    for instruction in instructions(&read("Dockerfile")) {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let rest = rest.trim();
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let [base, _, name] = words[..] else {
                    panic!("Dockerfile: every stage is named: FROM {rest}")
                };
                let mut stage = stages.get(base).cloned().unwrap_or_default();
                stage.base = base.to_owned();
                stages.insert(name.to_owned(), stage);
                current = name.to_owned();
            }
            "ENTRYPOINT" => {
                stages.get_mut(&current).unwrap().entrypoint = serde_yaml_ng::from_str(rest)
                    .unwrap_or_else(|_| panic!("ENTRYPOINT in exec form: {rest}"));
            }
            "EXPOSE" => stages.get_mut(&current).unwrap().expose.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap()),
            ),
            "ENV" => stages
                .get_mut(&current)
                .unwrap()
                .env
                .extend(rest.split_whitespace().map(|pair| {
                    let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                    (k.to_owned(), v.to_owned())
                })),
            "USER" => stages.get_mut(&current).unwrap().user = Some(rest.to_owned()),
            _ => {}
        }
    }
    stages
}

/// The binary a target runs: its entry point under /usr/local/bin.
pub fn binary_of(stage: &Stage) -> Option<&str> {
    stage.entrypoint.first()?.strip_prefix("/usr/local/bin/")
}

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

/// The source files of a workspace binary: `src/bin/NAME.rs` alone, or the `src/` of the
/// package NAME (its library included).
fn files_of(binary: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let bin = dir.join("src/bin").join(format!("{binary}.rs"));
        if bin.is_file() {
            return vec![bin];
        }
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let package = manifest
            .split("[package]")
            .nth(1)
            .and_then(|section| section.lines().find(|l| l.trim().starts_with("name")))
            .and_then(|line| line.split('"').nth(1));
        if package == Some(binary) && dir.join("src/main.rs").is_file() {
            let mut files = Vec::new();
            rust_files(&dir.join("src"), &mut files);
            return files;
        }
    }
    panic!("no workspace binary {binary}")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A clap struct: the variables its own fields read, the structs it flattens, and
/// whether it is a whole command line (`Parser`).
#[derive(Debug, Default)]
struct ClapStruct {
    env: BTreeSet<String>,
    flattens: Vec<String>,
    parser: bool,
}

/// Every `#[derive(..Parser..)]` or `#[derive(..Args..)]` struct of `source`.
fn clap_structs(source: &str, out: &mut BTreeMap<String, ClapStruct>) {
    for (at, _) in source.match_indices("#[derive(") {
        let derive = &source[at..at + source[at..].find(']').unwrap()];
        let parser = derive.contains("Parser");
        if !parser && !derive.contains("Args") {
            continue;
        }
        let rest = &source[at..];
        let Some(open) = rest.find("struct ") else {
            continue;
        };
        let header = &rest[open + "struct ".len()..];
        let name: String = header
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(body_start) = header.find('{') else {
            continue;
        };
        let body = &header[body_start..];
        let body = &body[..body.find("\n}").unwrap_or(body.len())];
        let mut found = ClapStruct {
            parser,
            ..ClapStruct::default()
        };
        for (env_at, _) in body.match_indices("env = \"") {
            let name = &body[env_at + "env = \"".len()..];
            found.env.insert(name[..name.find('"').unwrap()].to_owned());
        }
        for (flat_at, _) in body.match_indices("#[command(flatten)]") {
            let field = body[flat_at..].lines().nth(1).unwrap_or_default();
            if let Some((_, ty)) = field.split_once(':') {
                found
                    .flattens
                    .push(ty.trim().trim_end_matches(',').trim().to_owned());
            }
        }
        out.insert(name, found);
    }
}

/// Variables a binary reads without naming them in its source: tracing-subscriber's
/// filter.
const READ_BY_LIBRARIES: &[&str] = &["RUST_LOG"];

/// The environment variables `binary` reads: those of its command line (its clap
/// `Parser` struct and every struct flattened into it, in its own source or platform's;
/// a domain service's command line is platform's `service::Cli`), every
/// `env::var("NAME")` of its source and of platform, and what its libraries read.
pub fn env_names_read_by(binary: &str) -> BTreeSet<String> {
    let own = files_of(binary);
    let mut platform = Vec::new();
    rust_files(&root().join("platform/src"), &mut platform);
    // Test helpers (the `testing` feature), in no binary.
    platform.retain(|file| !file.ends_with("testing.rs"));
    let mut structs = BTreeMap::new();
    let mut own_structs = BTreeMap::new();
    let mut names: BTreeSet<String> = READ_BY_LIBRARIES.iter().map(|s| (*s).to_owned()).collect();
    for file in own.iter().chain(&platform) {
        let source = fs::read_to_string(file).unwrap();
        clap_structs(&source, &mut structs);
        if own.contains(file) {
            clap_structs(&source, &mut own_structs);
        }
        for marker in ["env::var(\"", "env::var_os(\""] {
            for (at, _) in source.match_indices(marker) {
                let rest = &source[at + marker.len()..];
                names.insert(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    let mut roots: Vec<String> = own_structs
        .iter()
        .filter(|(_, s)| s.parser)
        .map(|(name, _)| name.clone())
        .collect();
    if roots.is_empty() {
        // A domain service: platform's shared command line (platform/src/service.rs).
        roots.push("Cli".to_owned());
        structs.extend(own_structs);
        let service = fs::read_to_string(root().join("platform/src/service.rs")).unwrap();
        clap_structs(&service, &mut structs);
    } else {
        structs.extend(own_structs);
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = roots.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let found = structs
            .get(&name)
            .unwrap_or_else(|| panic!("{binary}: flattens {name}, whose definition was not found"));
        names.extend(found.env.iter().cloned());
        roots.extend(found.flattens.iter().cloned());
    }
    names
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

/// compose.yaml's services, with `<<` merge keys applied as compose does.
pub fn compose_services() -> BTreeMap<String, serde_yaml_ng::Value> {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("compose.yaml")).unwrap();
    doc.apply_merge().unwrap();
    doc["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

/// A compose service's `environment:` value for `key`.
pub fn compose_env(service: &serde_yaml_ng::Value, key: &str) -> Option<String> {
    service["environment"][key].as_str().map(str::to_owned)
}
