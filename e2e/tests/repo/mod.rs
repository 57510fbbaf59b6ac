//! Reading the repository itself: what the deployment checks (compose.yaml, the
//! Kubernetes manifests, the alert rules) hold their files against: the Dockerfile's
//! targets, the settings each binary reads (from its source), compose.yaml's services.
//! One reading for every check, so two checks cannot disagree on what the Dockerfile
//! or a binary says.
// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use serde_yaml_ng::Value;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

/// A file of the repository, by its path from the root.
pub fn read(relative: &str) -> String {
    fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every `.rs` file under `dir`, appended to `out`.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

// ---- the Dockerfile -----------------------------------------------------------------------

/// One stage of the Dockerfile, as written (nothing inherited folded in).
#[derive(Debug, Default, Clone)]
pub struct Stage {
    pub base: String,
    pub entrypoint: Vec<String>,
    pub expose: BTreeSet<u16>,
    pub env: BTreeMap<String, String>,
    pub user: Option<String>,
}

#[derive(Debug)]
pub struct Dockerfile {
    pub stages: BTreeMap<String, Stage>,
    /// Every `--bin NAME` of a RUN instruction.
    pub built: BTreeSet<String>,
    pub text: String,
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

/// The repository's Dockerfile, read stage by stage.
pub fn dockerfile() -> Dockerfile {
    let text = read("Dockerfile");
    let mut stages = BTreeMap::new();
    let mut built = BTreeSet::new();
    let mut current: Option<String> = None;
    for instruction in instructions(&text) {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let rest = rest.trim();
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (*name).to_owned(),
                _ => panic!("Dockerfile: every stage is named (`FROM image AS name`): {rest}"),
            };
            let stage = Stage {
                base: words[0].to_owned(),
                ..Stage::default()
            };
            assert!(
                stages.insert(name.clone(), stage).is_none(),
                "Dockerfile: stage {name} twice"
            );
            current = Some(name);
            continue;
        }
        if keyword == "RUN" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.windows(2) {
                if pair[0] == "--bin" {
                    built.insert(pair[1].to_owned());
                }
            }
            continue;
        }
        let Some(stage) = current.as_ref().and_then(|name| stages.get_mut(name)) else {
            continue;
        };
        match keyword.as_str() {
            "ENTRYPOINT" => {
                stage.entrypoint = serde_yaml_ng::from_str(rest)
                    .unwrap_or_else(|_| panic!("ENTRYPOINT in exec form: {rest}"));
            }
            "EXPOSE" => stage.expose.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap()),
            ),
            "ENV" => stage.env.extend(rest.split_whitespace().map(|pair| {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                (k.to_owned(), v.to_owned())
            })),
            "USER" => stage.user = Some(rest.to_owned()),
            _ => {}
        }
    }
    Dockerfile {
        stages,
        built,
        text,
    }
}

impl Dockerfile {
    /// The default of `ARG NAME=...`.
    pub fn arg(&self, name: &str) -> Option<String> {
        instructions(&self.text).iter().find_map(|instruction| {
            let rest = instruction.strip_prefix("ARG ")?.trim();
            let (key, value) = rest.split_once('=')?;
            (key == name).then(|| value.trim_matches('"').to_owned())
        })
    }

    /// What a stage is built FROM, a `${ARG}` replaced by the argument's default (the
    /// Dockerfile picks where the binaries come from that way).
    pub fn base_of(&self, stage: &Stage) -> String {
        stage
            .base
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .and_then(|arg| self.arg(arg))
            .unwrap_or_else(|| stage.base.clone())
    }

    /// The stages from `target` up through the stages it is built `FROM`.
    pub fn chain(&self, target: &str) -> Vec<&Stage> {
        let mut chain = Vec::new();
        let mut name = target.to_owned();
        while let Some(stage) = self.stages.get(&name) {
            chain.push(stage);
            name = self.base_of(stage);
        }
        chain
    }

    /// `target` as it runs: what it inherits from the stages it is built FROM folded in,
    /// the nearest stage winning. None for no such target.
    pub fn resolved(&self, target: &str) -> Option<Stage> {
        let chain = self.chain(target);
        let first = chain.first()?;
        let mut resolved = Stage {
            base: first.base.clone(),
            ..Stage::default()
        };
        for stage in chain.iter().rev() {
            if !stage.entrypoint.is_empty() {
                resolved.entrypoint = stage.entrypoint.clone();
            }
            resolved.expose.extend(stage.expose.iter().copied());
            resolved.env.extend(stage.env.clone());
            if stage.user.is_some() {
                resolved.user = stage.user.clone();
            }
        }
        Some(resolved)
    }

    pub fn entrypoint(&self, target: &str) -> Vec<String> {
        self.resolved(target)
            .map(|stage| stage.entrypoint)
            .unwrap_or_default()
    }

    pub fn exposed(&self, target: &str) -> BTreeSet<u16> {
        self.resolved(target)
            .map(|stage| stage.expose)
            .unwrap_or_default()
    }

    pub fn env(&self, target: &str, key: &str) -> Option<String> {
        self.resolved(target)?.env.get(key).cloned()
    }
}

/// The binary a target runs: its entry point under /usr/local/bin.
pub fn binary_of(stage: &Stage) -> Option<&str> {
    stage.entrypoint.first()?.strip_prefix("/usr/local/bin/")
}

// ---- the workspace's binaries and the settings they read ----------------------------------

/// The crate folders of the workspace, sorted.
fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// `name` of a crate's `[package]`.
fn package_name(dir: &Path) -> Option<String> {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    manifest
        .split("[package]")
        .nth(1)?
        .lines()
        .find(|l| l.trim().starts_with("name"))?
        .split('"')
        .nth(1)
        .map(str::to_owned)
}

/// The source files of a workspace binary: `src/bin/NAME.rs` alone, or the `src/` of the
/// package NAME (its library included). None for no such binary.
pub fn files_of(binary: &str) -> Option<Vec<PathBuf>> {
    for dir in crate_dirs() {
        let bin = dir.join("src/bin").join(format!("{binary}.rs"));
        if bin.is_file() {
            return Some(vec![bin]);
        }
        if package_name(&dir).as_deref() == Some(binary) && dir.join("src/main.rs").is_file() {
            let mut files = Vec::new();
            rust_files(&dir.join("src"), &mut files);
            return Some(files);
        }
    }
    None
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
    let own = files_of(binary).unwrap_or_else(|| panic!("no workspace binary {binary}"));
    let mut platform = Vec::new();
    rust_files(&root().join("platform/src"), &mut platform);
    // Test helpers (the `testing` feature), in no binary.
    let testing = root().join("platform/src/testing");
    platform.retain(|file| !file.starts_with(&testing));
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
        let service = read("platform/src/service.rs");
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

// ---- compose.yaml ---------------------------------------------------------------------

/// compose.yaml, with `<<` merge keys applied as compose does.
pub fn compose() -> Value {
    let mut doc: Value = serde_yaml_ng::from_str(&read("compose.yaml"))
        .unwrap_or_else(|e| panic!("compose.yaml does not parse: {e}"));
    doc.apply_merge().unwrap();
    doc
}

/// The services of compose.yaml, by name.
pub fn compose_services() -> BTreeMap<String, Value> {
    compose()["services"]
        .as_mapping()
        .expect("compose.yaml has a services mapping")
        .iter()
        .map(|(name, service)| (name.as_str().unwrap().to_owned(), service.clone()))
        .collect()
}

/// What a `postgres://ROLE:PASSWORD@HOST:PORT/DATABASE?...` URL names.
#[derive(Debug, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub role: String,
    pub password: String,
    pub host: String,
    pub database: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("postgres://")
            .ok_or_else(|| format!("{url} is not a postgres:// URL"))?;
        let (credentials, location) = rest
            .split_once('@')
            .ok_or_else(|| format!("{url} names no role"))?;
        let (role, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        let (address, path) = location
            .split_once('/')
            .ok_or_else(|| format!("{url} names no database"))?;
        let host = address.split(':').next().unwrap_or(address);
        let database = path.split('?').next().unwrap_or(path);
        Ok(Self {
            role: role.to_owned(),
            password: password.to_owned(),
            host: host.to_owned(),
            database: database.to_owned(),
        })
    }
}
