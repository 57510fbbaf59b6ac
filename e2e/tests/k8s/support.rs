//! Finding the tools, rendering the overlays, and reading the rendered objects.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

/// kubectl's minor release the renders are made with: the one `scripts/k8s-tools`
/// installs. Another kustomize could render the same files differently, so a kubectl
/// of another release is not used even when it is on PATH.
pub const KUBECTL_RELEASE: &str = "v1.35.";
/// The kubernetes-validate release whose schemas the checks use.
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
/// Where `scripts/k8s-tools` installs by default (and .ci/run puts on PATH).
const DEFAULT_TOOLS: &str = "/var/tmp/shop-ci-tools/bin";

pub use crate::repo::{read, root};

/// The folders a tool is looked for in, in order: `SHOP_TOOLS_DIR/bin`, the default
/// install folder, then PATH.
fn candidates(tool: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SHOP_TOOLS_DIR") {
        dirs.push(PathBuf::from(dir).join("bin"));
    }
    dirs.push(PathBuf::from(DEFAULT_TOOLS));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|dir| dir.join(tool))
        .filter(|path| path.is_file())
        .collect()
}

/// The first `tool` whose `version_args` output contains `wanted` (`release` for
/// people); otherwise a failure that says what was found and how to get the right one.
fn find_tool(tool: &str, version_args: &[&str], wanted: &str, release: &str) -> PathBuf {
    let mut seen = Vec::new();
    for path in candidates(tool) {
        let version = Command::new(&path)
            .args(version_args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        if version.contains(wanted) {
            return path;
        }
        let said = version
            .lines()
            .find(|line| line.contains("gitVersion"))
            .or_else(|| version.lines().find(|line| line.contains(char::is_numeric)))
            .unwrap_or("no version");
        seen.push(format!("{} ({})", path.display(), said.trim()));
    }
    panic!(
        "{tool} {release} not found (found: {}). Run scripts/k8s-tools first: it installs \
         kubectl and kubernetes-validate into {DEFAULT_TOOLS} (or $SHOP_TOOLS_DIR/bin), \
         where this test looks for them.",
        if seen.is_empty() {
            "none".to_owned()
        } else {
            seen.join(", ")
        }
    )
}

pub fn kubectl() -> &'static Path {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL.get_or_init(|| {
        find_tool(
            "kubectl",
            &["version", "--client", "--output=yaml"],
            &format!("gitVersion: {KUBECTL_RELEASE}"),
            &format!("{KUBECTL_RELEASE}x"),
        )
    })
}

pub fn kubernetes_validate() -> &'static Path {
    static VALIDATE: OnceLock<PathBuf> = OnceLock::new();
    VALIDATE.get_or_init(|| {
        find_tool(
            "kubernetes-validate",
            &["--version"],
            KUBERNETES_VALIDATE_VERSION,
            KUBERNETES_VALIDATE_VERSION,
        )
    })
}

/// `kubectl kustomize DIR`: the YAML it prints, or why it failed.
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl().display()));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The objects of a multi-document YAML stream, as kubectl prints them.
pub fn objects_of(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|doc| doc.trim_start_matches("---\n"))
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            serde_yaml_ng::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("a rendered document does not parse: {e}\n{doc}"))
        })
        .collect()
}

/// The YAML stream of `objects`, for the tools that read files.
pub fn yaml_of(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|object| serde_yaml_ng::to_string(object).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The overlays every check runs on: `deploy/k8s/overlays/<name>`, a public name.
pub const OVERLAYS: [&str; 2] = ["dev", "production"];

/// A render of an overlay, made once per test process.
pub fn rendered(overlay: &str) -> &'static [Value] {
    static RENDERS: OnceLock<BTreeMap<String, Vec<Value>>> = OnceLock::new();
    let renders = RENDERS.get_or_init(|| {
        let mut renders: BTreeMap<String, Vec<Value>> = OVERLAYS
            .iter()
            .map(|name| {
                let dir = root().join("deploy/k8s/overlays").join(name);
                let yaml = kustomize(&dir).unwrap_or_else(|e| {
                    panic!("kubectl kustomize deploy/k8s/overlays/{name} fails:\n{e}")
                });
                ((*name).to_owned(), objects_of(&yaml))
            })
            .collect();
        renders.insert("production+tracing".into(), with_tracing());
        renders
    });
    renders
        .get(overlay)
        .unwrap_or_else(|| panic!("no overlay {overlay}"))
}

/// Every profile the checks cover: the two overlays, and production with the optional
/// tracing component.
pub const PROFILES: [&str; 3] = ["dev", "production", "production+tracing"];

/// The production overlay with `deploy/k8s/components/tracing` added, as DEPLOY.md
/// tells a user to: rendered from a kustomization in a temporary folder (kustomize
/// takes no absolute paths, so it names the repository relatively).
fn with_tracing() -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("shop-k8s-tracing-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let up = "../".repeat(dir.components().count() - 1);
    let repo = root();
    let repo = repo.to_str().unwrap().trim_start_matches('/');
    fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             namespace: shop\nresources:\n  - {up}{repo}/deploy/k8s/overlays/production\n\
             components:\n  - {up}{repo}/deploy/k8s/components/tracing\n"
        ),
    )
    .unwrap();
    let yaml = kustomize(&dir);
    let _ = fs::remove_dir_all(&dir);
    objects_of(&yaml.unwrap_or_else(|e| panic!("production + components/tracing: {e}")))
}

// ---- reading objects ------------------------------------------------------------------

pub fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// `Kind/name`, for messages.
pub fn id(object: &Value) -> String {
    format!("{}/{}", kind(object), name(object))
}

pub fn of_kind<'a>(objects: &'a [Value], wanted: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| kind(o) == wanted)
}

pub fn find<'a>(objects: &'a [Value], wanted: &str, named: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| kind(o) == wanted && name(o) == named)
}

/// The ConfigMaps of the render a pod mounts, as volumes of their own or as sources of a
/// projected volume (the broker's: its nats.conf and the authorization it includes).
pub fn mounted_config_maps<'a>(objects: &'a [Value], spec: &Value) -> Vec<&'a Value> {
    array(&spec["volumes"])
        .iter()
        .flat_map(|volume| {
            let direct = volume["configMap"]["name"].as_str();
            let projected = array(&volume["projected"]["sources"])
                .iter()
                .filter_map(|source| source["configMap"]["name"].as_str())
                .collect::<Vec<_>>();
            direct.into_iter().chain(projected)
        })
        .filter_map(|map| find(objects, "ConfigMap", map))
        .collect()
}

/// The pod template of a workload (Deployment, StatefulSet, Job), if it is one.
pub fn pod_spec(object: &Value) -> Option<&Value> {
    matches!(
        kind(object),
        "Deployment" | "StatefulSet" | "Job" | "DaemonSet"
    )
    .then(|| &object["spec"]["template"]["spec"])
}

pub fn pod_labels(object: &Value) -> BTreeMap<String, String> {
    labels(&object["spec"]["template"]["metadata"]["labels"])
}

pub fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Every container of a pod spec, init containers first.
pub fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    array(&spec["initContainers"])
        .iter()
        .chain(array(&spec["containers"]))
}

/// The port of `host:port` or `scheme://[user:pass@]host:port[/path][?query]`, and the
/// host.
pub fn host_port(address: &str) -> Option<(String, u16)> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Standard base64 (a Secret's `data`), without a crate for it.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut buffer) = (0u32, 0u32);
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|c| *c == byte)
            .unwrap_or_else(|| panic!("not base64: {text}"));
        buffer = (buffer << 6) | u32::try_from(value).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).unwrap());
        }
    }
    out
}
