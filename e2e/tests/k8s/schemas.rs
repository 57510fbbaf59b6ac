//! Custom resources against their operators' CRD schemas (deploy/k8s/crds-schemas/), and
//! the built-in kinds against kubernetes-validate's schemas of a Kubernetes release.

use std::{fs, path::PathBuf, process::Command};

use serde_json::Value;

use super::support::{id, kind, kubernetes_validate, root, yaml_of};

/// The vendored schemas: see deploy/k8s/crds-schemas/README.md.
const SCHEMAS: &str = "deploy/k8s/crds-schemas";

/// API groups of the built-in kinds (kubernetes-validate knows their schemas).
fn is_builtin(object: &Value) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    match api_version.split_once('/') {
        None => true, // the core group: v1
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

/// The vendored schema of a custom resource, by `apiVersion` and `kind`.
fn schema_file(object: &Value) -> Option<PathBuf> {
    let api_version = object["apiVersion"].as_str()?;
    let (group, version) = api_version.split_once('/')?;
    let file = format!("{group}_{version}_{}.json", kind(object));
    fs::read_dir(root().join(SCHEMAS))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(&file))
        .find(|path| path.is_file())
}

/// Makes every object schema that lists its properties refuse others, unless it says
/// unknown fields are kept (`x-kubernetes-preserve-unknown-fields`): the API server
/// would drop a misspelt field of a custom resource without a word (it refuses it only
/// under `--validate=strict`), and the operator would never see it.
fn strict(schema: &mut Value) {
    if let Value::Object(map) = schema {
        let preserves = map
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves
        {
            map.insert("additionalProperties".into(), Value::Bool(false));
        }
        for value in map.values_mut() {
            strict(value);
        }
    } else if let Value::Array(items) = schema {
        items.iter_mut().for_each(strict);
    }
}

/// Every way the custom resources of `objects` break their CRD schemas, one line each;
/// a custom resource without a vendored schema is one too.
pub fn custom_resource_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for object in objects.iter().filter(|o| !is_builtin(o)) {
        let Some(file) = schema_file(object) else {
            problems.push(format!(
                "{} ({}): no schema vendored in {SCHEMAS} for this kind",
                id(object),
                object["apiVersion"].as_str().unwrap_or_default()
            ));
            continue;
        };
        let mut schema: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        strict(&mut schema);
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{} is not a usable schema: {e}", file.display()));
        for error in validator.iter_errors(object) {
            problems.push(format!(
                "{} at `{}`: {error}",
                id(object),
                error.instance_path()
            ));
        }
    }
    problems
}

/// How many custom resources of `objects` there are.
pub fn custom_resources(objects: &[Value]) -> usize {
    objects.iter().filter(|o| !is_builtin(o)).count()
}

/// The Kubernetes releases the manifests support, oldest and newest: what both
/// operators support (CloudNativePG 1.30: 1.34 to 1.36; cert-manager 1.21: 1.33 to 1.36,
/// docs/DEPLOY.md). Every built-in object is checked against both.
pub const KUBERNETES_RELEASES: [&str; 2] = ["1.34.0", "1.36.0"];

/// Every way the built-in objects of `objects` break the strict schemas of Kubernetes
/// `release` (kubernetes-validate --strict: unknown fields are errors), one line each.
pub fn builtin_problems(objects: &[Value], release: &str) -> Vec<String> {
    let builtins: Vec<Value> = objects.iter().filter(|o| is_builtin(o)).cloned().collect();
    let file = std::env::temp_dir().join(format!(
        "shop-k8s-validate-{}-{}.yaml",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("main")
            .replace("::", "-")
    ));
    fs::write(&file, yaml_of(&builtins)).unwrap();
    let out = Command::new(kubernetes_validate())
        .args(["--strict", "--kubernetes-version", release])
        .arg(&file)
        .output()
        .unwrap();
    let _ = fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut problems: Vec<String> = stdout
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|line| !line.starts_with("INFO") && !line.trim().is_empty())
        .map(|line| line.replace(&file.display().to_string(), "render"))
        .collect();
    // One `passed` per object, so that none was skipped for want of a schema.
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    if passed != builtins.len() {
        problems.push(format!(
            "kubernetes-validate passed {passed} of {} objects for {release}",
            builtins.len()
        ));
    }
    if !out.status.success() && problems.is_empty() {
        problems.push(format!("kubernetes-validate exited with {}", out.status));
    }
    problems
}
