//! The manifests against the binaries, the Dockerfile and each other: the settings set
//! are ones the binaries read, ports and probes are the binaries', every reference
//! leads somewhere, images are pinned, pods run restricted. Each check returns its
//! problems, one line each, so a deliberately broken copy can be shown to fail it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    policy::secret_data,
    source::{Dockerfile, binary_of, env_names_read_by, workspace_version},
    support::{
        array, containers, find, host_port, id, kind, labels, mounted_config_maps, name, of_kind,
        pod_labels, pod_spec, read,
    },
};

/// Variables a third-party image is documented to read, by image repository.
const THIRD_PARTY_SETTINGS: &[(&str, &[&str])] = &[
    // The postgres image's entry point: the superuser's password, the data folder.
    ("postgres", &["POSTGRES_PASSWORD", "PGDATA"]),
];

/// The shop's images: `shop/<Dockerfile target>:<tag>`.
fn shop_target(image: &str) -> Option<(&str, &str)> {
    image.strip_prefix("shop/")?.split_once(':')
}

/// What a container runs: a workspace binary (by the Dockerfile target its image is
/// built from), another program it names in `command`, or a third-party image's own.
enum Runs<'a> {
    Binary(String),
    Program(&'a str),
    Image(&'a str),
}

fn runs<'a>(container: &'a Value, dockerfile: &Dockerfile) -> Result<Runs<'a>, String> {
    let image = container["image"].as_str().unwrap_or_default();
    if let Some(program) = array(&container["command"]).first().and_then(Value::as_str) {
        return Ok(match program.strip_prefix("/usr/local/bin/") {
            Some(binary) => Runs::Binary(binary.to_owned()),
            None => Runs::Program(program),
        });
    }
    match shop_target(image) {
        Some((target, _)) => {
            let stage = dockerfile
                .resolved(target)
                .ok_or_else(|| format!("image {image}: no Dockerfile target {target}"))?;
            binary_of(&stage)
                .map(|b| Runs::Binary(b.to_owned()))
                .ok_or_else(|| {
                    format!("image {image}: target {target} runs no /usr/local/bin binary")
                })
        }
        None => Ok(Runs::Image(image)),
    }
}

/// The setting names a container gets, and where from (`env`, or an `envFrom`
/// ConfigMap or Secret of the render).
fn settings_of(objects: &[Value], container: &Value) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut problems = Vec::new();
    for var in array(&container["env"]) {
        names.push(var["name"].as_str().unwrap_or_default().to_owned());
    }
    for source in array(&container["envFrom"]) {
        for (what, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
            if let Some(from) = source[what]["name"].as_str() {
                match find(objects, kind, from) {
                    Some(object) => {
                        for field in ["data", "stringData"] {
                            if let Some(data) = object[field].as_object() {
                                names.extend(data.keys().cloned());
                            }
                        }
                    }
                    None => problems.push(format!("envFrom {kind} {from} is not in the render")),
                }
            }
        }
    }
    (names, problems)
}

/// Every setting set on a container is one its program reads.
pub fn env_problems(objects: &[Value], dockerfile: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        for container in containers(spec) {
            let at = format!(
                "{} container {}",
                id(object),
                container["name"].as_str().unwrap_or_default()
            );
            let (names, mut missing) = settings_of(objects, container);
            problems.extend(missing.drain(..).map(|p| format!("{at}: {p}")));
            match runs(container, dockerfile) {
                Err(e) => problems.push(format!("{at}: {e}")),
                Ok(Runs::Binary(binary)) => {
                    let read = env_names_read_by(&binary);
                    for name in &names {
                        if !read.contains(name) {
                            problems
                                .push(format!("{at}: sets {name}, which {binary} does not read"));
                        }
                    }
                }
                Ok(Runs::Program(program)) => {
                    if !names.is_empty() {
                        problems.push(format!(
                            "{at}: runs {program}, which is given no settings, yet sets {names:?}"
                        ));
                    }
                }
                Ok(Runs::Image(image)) => {
                    let repository = image.split(':').next().unwrap_or_default();
                    let documented = THIRD_PARTY_SETTINGS
                        .iter()
                        .find(|(r, _)| *r == repository)
                        .map_or(&[][..], |(_, names)| names);
                    // nats-server reads no environment itself: its configuration names
                    // what it uses as `$NAME`.
                    let config = nats_config(objects, spec);
                    for name in &names {
                        let referenced = config
                            .as_deref()
                            .is_some_and(|c| c.contains(&format!("${name}")));
                        if !documented.contains(&name.as_str()) && !referenced {
                            problems
                                .push(format!("{at}: sets {name}, which {image} does not read"));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// The text of the NATS configuration a pod mounts, if it mounts one.
pub fn nats_config(objects: &[Value], spec: &Value) -> Option<String> {
    mounted_config_maps(objects, spec)
        .into_iter()
        .find_map(|map| map["data"]["nats.conf"].as_str().map(str::to_owned))
}

/// The broker's client authorization: its nats.conf maps client certificates to users
/// (`verify_and_map` in the clients' `tls` block) and includes `nats-authorization.conf`,
/// mounted next to it with the text e2e/src/nats_auth.rs writes from the principal table.
pub fn broker_authorization_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(spec) = find(objects, "StatefulSet", "nats").and_then(pod_spec) else {
        return vec!["no StatefulSet nats".into()];
    };
    let Some(config) = nats_config(objects, spec) else {
        return vec!["StatefulSet/nats mounts no nats.conf".into()];
    };
    // The first tls block is the clients' (production's routes have their own).
    let clients = config
        .find("tls {")
        .map(|at| &config[at..])
        .and_then(|rest| rest.find('}').map(|end| &rest[..end]))
        .unwrap_or_default();
    if !clients.contains("verify_and_map: true") {
        problems.push(format!(
            "nats.conf: client certificates are not mapped to users (verify_and_map): {clients}"
        ));
    }
    if !config.contains("include nats-authorization.conf") {
        problems.push("nats.conf does not include nats-authorization.conf".into());
    }
    let generated = e2e::nats_auth::authorization();
    let mut found = false;
    for volume in array(&spec["volumes"]) {
        let maps: Vec<&Value> = array(&volume["projected"]["sources"])
            .iter()
            .filter_map(|s| find(objects, "ConfigMap", s["configMap"]["name"].as_str()?))
            .collect();
        if !maps.iter().any(|m| m["data"]["nats.conf"].is_string()) {
            continue;
        }
        for map in maps {
            if let Some(text) = map["data"]["nats-authorization.conf"].as_str() {
                found = true;
                if text != generated {
                    problems.push(format!(
                        "{}: nats-authorization.conf is not what e2e/src/nats_auth.rs writes",
                        id(map)
                    ));
                }
            }
        }
    }
    if !found {
        problems.push("no nats-authorization.conf is mounted next to nats.conf".into());
    }
    problems
}

/// A container's setting, from `env` or an `envFrom` ConfigMap of the render.
pub fn setting(objects: &[Value], container: &Value, key: &str) -> Option<String> {
    for var in array(&container["env"]) {
        if var["name"] == key {
            return var["value"].as_str().map(str::to_owned);
        }
    }
    array(&container["envFrom"]).iter().find_map(|source| {
        let map = find(
            objects,
            "ConfigMap",
            source["configMapRef"]["name"].as_str()?,
        )?;
        map["data"][key].as_str().map(str::to_owned)
    })
}

/// A container port by name.
fn port_named(container: &Value, port_name: &str) -> Option<u16> {
    array(&container["ports"])
        .iter()
        .find(|p| p["name"] == port_name)
        .and_then(|p| u16::try_from(p["containerPort"].as_u64()?).ok())
}

/// A probe's port: a number, or the name of a port of the container.
fn probe_port(container: &Value, port: &Value) -> Option<u16> {
    match port {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok(),
        Value::String(named) => port_named(container, named),
        _ => None,
    }
}

const PROBES: [&str; 3] = ["startupProbe", "readinessProbe", "livenessProbe"];

/// The gRPC service a server's health reports its readiness under, by Dockerfile target.
fn grpc_service(target: &str) -> &'static str {
    match target {
        "orchestrator" => "shop.checkout.v1.CheckoutService",
        "order-svc" => "shop.order.v1.OrderService",
        "payment-svc" => "shop.payment.v1.PaymentService",
        "inventory-svc" => "shop.inventory.v1.InventoryService",
        "shipping-svc" => "shop.shipping.v1.ShippingService",
        _ => "",
    }
}

/// The servers' ports are their binaries' (the Dockerfile's LISTEN_ADDR and EXPOSE), the
/// probes ask the health port, and every Service leads to a port a pod listens on.
pub fn port_problems(objects: &[Value], dockerfile: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        for container in array(&spec["containers"]) {
            let at = format!(
                "{} container {}",
                id(object),
                container["name"].as_str().unwrap_or_default()
            );
            let image = container["image"].as_str().unwrap_or_default();
            let Some((target, _)) = shop_target(image) else {
                continue;
            };
            let Some(stage) = dockerfile.resolved(target) else {
                continue;
            };
            let Some(dockerfile_listen) = stage.env.get("LISTEN_ADDR") else {
                continue; // a one-shot job: no server
            };
            let want = host_port(dockerfile_listen).unwrap().1;
            let listen = setting(objects, container, "LISTEN_ADDR");
            match listen.as_deref().and_then(host_port) {
                Some((host, port)) => {
                    if host != "0.0.0.0" {
                        problems.push(format!(
                            "{at}: LISTEN_ADDR on {host}: other pods cannot reach it"
                        ));
                    }
                    if port != want || !stage.expose.contains(&port) {
                        problems.push(format!(
                            "{at}: LISTEN_ADDR port {port}, the Dockerfile's target {target} listens on {want} (EXPOSE {:?})",
                            stage.expose
                        ));
                    }
                }
                None => problems.push(format!("{at}: no LISTEN_ADDR")),
            }
            let serving_port = if port_named(container, "grpc").is_some() {
                "grpc"
            } else {
                "http"
            };
            if port_named(container, serving_port) != Some(want) {
                problems.push(format!(
                    "{at}: its `{serving_port}` container port is not {want}"
                ));
            }
            for (setting_name, port_name) in [
                ("HEALTH_LISTEN_ADDR", "health"),
                ("METRICS_LISTEN_ADDR", "metrics"),
            ] {
                if let Some(value) = setting(objects, container, setting_name) {
                    let port = host_port(&value).map(|(_, p)| p);
                    if port.is_none() || port_named(container, port_name) != port {
                        problems.push(format!("{at}: {setting_name}={value} but its `{port_name}` container port is {:?}", port_named(container, port_name)));
                    }
                }
            }
            // Probes: native gRPC on the plaintext health listener for the servers (the
            // kubelet speaks no TLS), GET /healthz on the console's own port.
            let health = setting(objects, container, "HEALTH_LISTEN_ADDR")
                .and_then(|v| host_port(&v))
                .map(|(_, p)| p);
            for probe_name in PROBES {
                let probe = &container[probe_name];
                if probe.is_null() {
                    if probe_name != "startupProbe" || serving_port == "grpc" {
                        problems.push(format!("{at}: no {probe_name}"));
                    }
                    continue;
                }
                if serving_port == "grpc" {
                    // Readiness follows the database (platform::readiness reports the
                    // service NOT_SERVING without it); liveness and startup the process.
                    let asks = probe["grpc"]["service"].as_str().unwrap_or_default();
                    let wants = if probe_name == "readinessProbe" {
                        grpc_service(target)
                    } else {
                        ""
                    };
                    if asks != wants {
                        problems.push(format!(
                            "{at}: {probe_name} asks for service {asks:?}, not {wants:?}"
                        ));
                    }
                    let port = probe_port(container, &probe["grpc"]["port"]);
                    if probe["grpc"].is_null() || port.is_none() || port != health {
                        problems.push(format!("{at}: {probe_name} is not a gRPC probe of the health listener (HEALTH_LISTEN_ADDR port {health:?})"));
                    }
                    if health == Some(want) {
                        problems.push(format!(
                            "{at}: the health listener shares the TLS port {want}"
                        ));
                    }
                } else if probe["httpGet"]["path"] != "/healthz"
                    || probe_port(container, &probe["httpGet"]["port"]) != Some(want)
                {
                    problems.push(format!(
                        "{at}: {probe_name} does not GET /healthz on port {want}"
                    ));
                }
            }
        }
    }
    // Every Service's target port is a port of each pod it selects, and it selects one.
    for service in of_kind(objects, "Service") {
        let selector = labels(&service["spec"]["selector"]);
        let pods: Vec<&Value> = objects
            .iter()
            .filter(|o| pod_spec(o).is_some())
            .filter(|o| {
                let have = pod_labels(o);
                !selector.is_empty() && selector.iter().all(|(k, v)| have.get(k) == Some(v))
            })
            .collect();
        if pods.is_empty() {
            problems.push(format!("{}: selects no pod of the render", id(service)));
        }
        for port in array(&service["spec"]["ports"]) {
            for pod in &pods {
                let listens =
                    containers(pod_spec(pod).unwrap()).any(|c| match &port["targetPort"] {
                        Value::String(named) => port_named(c, named).is_some(),
                        target => array(&c["ports"])
                            .iter()
                            .any(|p| p["containerPort"] == *target),
                    });
                if !listens {
                    problems.push(format!(
                        "{}: port {} leads to {}, which {} does not listen on",
                        id(service),
                        port["port"],
                        port["targetPort"],
                        id(pod)
                    ));
                }
            }
        }
    }
    problems
}

/// Secrets the user creates by hand (docs/DEPLOY.md says how), with the keys mounted.
pub const USER_SECRETS: &[(&str, &str)] = &[("shop-jwt", "jwt-secret")];

/// The Secrets that exist once the render is applied, with their keys where known: the
/// render's own, each Certificate's (cert-manager), each Cluster's `-app` (CloudNativePG),
/// and the ones DEPLOY.md has the user create.
fn secrets(
    objects: &[Value],
    deploy_doc: &str,
) -> (BTreeMap<String, Option<BTreeSet<String>>>, Vec<String>) {
    let mut secrets = BTreeMap::new();
    let mut problems = Vec::new();
    for secret in of_kind(objects, "Secret") {
        let keys = ["data", "stringData"]
            .iter()
            .filter_map(|f| secret[*f].as_object())
            .flat_map(|m| m.keys().cloned())
            .collect();
        secrets.insert(name(secret).to_owned(), Some(keys));
    }
    for certificate in of_kind(objects, "Certificate") {
        if let Some(secret) = certificate["spec"]["secretName"].as_str() {
            let keys = ["tls.crt", "tls.key", "ca.crt"].map(str::to_owned).into();
            secrets.insert(secret.to_owned(), Some(keys));
        }
    }
    for cluster in of_kind(objects, "Cluster") {
        let keys = [
            "username", "password", "dbname", "host", "port", "uri", "jdbc-uri", "pgpass",
        ];
        secrets.insert(
            format!("{}-app", name(cluster)),
            Some(keys.map(str::to_owned).into()),
        );
    }
    for (secret, key) in USER_SECRETS {
        if deploy_doc.contains(&format!("create secret generic {secret}"))
            && deploy_doc.contains(key)
        {
            secrets
                .entry((*secret).to_owned())
                .or_insert(Some([(*key).to_owned()].into()));
        } else if objects.iter().any(|o| {
            serde_json::to_string(o)
                .unwrap()
                .contains(&format!("\"{secret}\""))
        }) {
            problems.push(format!("Secret {secret} is used but docs/DEPLOY.md does not say `kubectl create secret generic {secret}` with its key {key}"));
        }
    }
    (secrets, problems)
}

/// Every Secret, ConfigMap, PersistentVolumeClaim, Service, Issuer and scale target that
/// something in the render names exists, in the render or made by an operator of it.
pub fn reference_problems(objects: &[Value], deploy_doc: &str) -> Vec<String> {
    let (secrets, mut problems) = secrets(objects, deploy_doc);
    let has = |kind: &str, named: &str| find(objects, kind, named).is_some();
    let need_secret =
        |at: &str, secret: &str, key: Option<&str>, problems: &mut Vec<String>| match secrets
            .get(secret)
        {
            None => problems.push(format!("{at}: Secret {secret} exists nowhere")),
            Some(Some(keys)) => {
                if let Some(key) = key
                    && !keys.contains(key)
                {
                    problems.push(format!(
                        "{at}: Secret {secret} has no key {key} (it has {keys:?})"
                    ));
                }
            }
            Some(None) => {}
        };
    for object in objects {
        let at = id(object);
        if let Some(spec) = pod_spec(object) {
            for container in containers(spec) {
                for var in array(&container["env"]) {
                    let from = &var["valueFrom"];
                    if let Some(secret) = from["secretKeyRef"]["name"].as_str() {
                        need_secret(
                            &at,
                            secret,
                            from["secretKeyRef"]["key"].as_str(),
                            &mut problems,
                        );
                    }
                    if let Some(map) = from["configMapKeyRef"]["name"].as_str() {
                        let key = from["configMapKeyRef"]["key"].as_str().unwrap_or_default();
                        if find(objects, "ConfigMap", map).is_none_or(|m| m["data"][key].is_null())
                        {
                            problems.push(format!(
                                "{at}: ConfigMap {map} with key {key} is not in the render"
                            ));
                        }
                    }
                }
                // URLs of services: the host is a Service of the render (or a
                // CloudNativePG Service of a Cluster), or of another namespace.
                for var in array(&container["env"]) {
                    let key = var["name"].as_str().unwrap_or_default();
                    if let Some(url) = var["value"].as_str().filter(|_| key.ends_with("_URL")) {
                        let host = host_port(url).map(|(h, _)| h).unwrap_or_default();
                        if !host.contains('.') && !has("Service", &host) {
                            problems.push(format!("{at}: {key}={url}: no Service {host}"));
                        }
                    }
                }
            }
            for volume in array(&spec["volumes"]) {
                if let Some(secret) = volume["secret"]["secretName"].as_str() {
                    need_secret(&at, secret, None, &mut problems);
                }
                if let Some(map) = volume["configMap"]["name"].as_str()
                    && !has("ConfigMap", map)
                {
                    problems.push(format!("{at}: ConfigMap {map} is not in the render"));
                }
                if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str()
                    && !has("PersistentVolumeClaim", claim)
                {
                    problems.push(format!(
                        "{at}: PersistentVolumeClaim {claim} is not in the render"
                    ));
                }
                for source in array(&volume["projected"]["sources"]) {
                    if let Some(secret) = source["secret"]["name"].as_str() {
                        for item in array(&source["secret"]["items"]) {
                            need_secret(&at, secret, item["key"].as_str(), &mut problems);
                        }
                    }
                    if let Some(map) = source["configMap"]["name"].as_str()
                        && !has("ConfigMap", map)
                    {
                        problems.push(format!("{at}: ConfigMap {map} is not in the render"));
                    }
                }
            }
            // Every mount names a volume of the pod.
            let volumes: BTreeSet<&str> = array(&spec["volumes"])
                .iter()
                .filter_map(|v| v["name"].as_str())
                .collect();
            let claims: BTreeSet<&str> = array(&object["spec"]["volumeClaimTemplates"])
                .iter()
                .filter_map(|v| v["metadata"]["name"].as_str())
                .collect();
            for container in containers(spec) {
                for mount in array(&container["volumeMounts"]) {
                    let volume = mount["name"].as_str().unwrap_or_default();
                    if !volumes.contains(volume) && !claims.contains(volume) {
                        problems.push(format!(
                            "{at}: mounts {volume}, which is no volume of the pod"
                        ));
                    }
                }
            }
        }
        if kind(object) == "StatefulSet" {
            let service = object["spec"]["serviceName"].as_str().unwrap_or_default();
            if !has("Service", service) {
                problems.push(format!(
                    "{at}: its serviceName {service} is no Service of the render"
                ));
            }
        }
        if kind(object) == "HorizontalPodAutoscaler" {
            let target = &object["spec"]["scaleTargetRef"];
            if !has(
                target["kind"].as_str().unwrap_or_default(),
                target["name"].as_str().unwrap_or_default(),
            ) {
                problems.push(format!("{at}: scales {target}, which is not in the render"));
            }
        }
        if kind(object) == "PodDisruptionBudget" {
            let selector = labels(&object["spec"]["selector"]["matchLabels"]);
            if !objects.iter().any(|o| {
                pod_spec(o).is_some()
                    && selector
                        .iter()
                        .all(|(k, v)| pod_labels(o).get(k) == Some(v))
            }) {
                problems.push(format!("{at}: selects no pod of the render"));
            }
        }
        if kind(object) == "Certificate" {
            let issuer = object["spec"]["issuerRef"]["name"]
                .as_str()
                .unwrap_or_default();
            if !has("Issuer", issuer) {
                problems.push(format!(
                    "{at}: issued by Issuer {issuer}, which is not in the render"
                ));
            }
        }
        if kind(object) == "Issuer"
            && let Some(secret) = object["spec"]["ca"]["secretName"].as_str()
        {
            need_secret(&at, secret, Some("tls.key"), &mut problems);
        }
    }
    problems
}

/// Tags that move from one release to the next on their own.
const MOVING: &[&str] = &["latest", "stable", "edge", "main", "master", "nightly"];

/// Every image is pinned: the shop's to `shop/<Dockerfile target>:<workspace version>`,
/// the others to a release (and to compose's, where compose runs the same program).
pub fn image_problems(objects: &[Value], dockerfile: &Dockerfile) -> Vec<String> {
    let version = workspace_version();
    let mut problems = Vec::new();
    let mut images: Vec<(String, String)> = objects
        .iter()
        .filter_map(|o| Some((id(o), pod_spec(o)?)))
        .flat_map(|(at, spec)| {
            containers(spec)
                .map(|c| {
                    (
                        at.clone(),
                        c["image"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    images.extend(of_kind(objects, "Cluster").map(|c| {
        (
            id(c),
            c["spec"]["imageName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }));
    for (at, image) in images {
        let last = image.rsplit('/').next().unwrap_or_default();
        let Some((_, tag)) = last.split_once(':') else {
            problems.push(format!("{at}: {image} has no tag, so it means `latest`"));
            continue;
        };
        if MOVING.contains(&tag.split('-').next().unwrap_or(tag)) {
            problems.push(format!("{at}: {image} names no release"));
        }
        if let Some((target, tag)) = shop_target(&image) {
            if !dockerfile.stages.contains_key(target) {
                problems.push(format!(
                    "{at}: {image}: the Dockerfile has no target {target}"
                ));
            }
            if tag != version {
                problems.push(format!(
                    "{at}: {image}: the shop's images carry the workspace's version {version}"
                ));
            }
        }
    }
    problems
}

/// Every pod runs as the restricted Pod Security Standard asks (the namespace enforces
/// it), the shop's own as the Dockerfile's user, with no API token it does not need.
pub fn restricted_problems(objects: &[Value], dockerfile: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    let user = dockerfile
        .resolved("runtime")
        .and_then(|stage| stage.user)
        .unwrap_or_default();
    let uid: u64 = user
        .split(':')
        .next()
        .and_then(|uid| uid.parse().ok())
        .expect("the Dockerfile's runtime stage has a numeric USER");
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        let at = id(object);
        let pod = &spec["securityContext"];
        if spec["automountServiceAccountToken"] != false {
            problems.push(format!(
                "{at}: mounts a service account token it does not use"
            ));
        }
        if spec["enableServiceLinks"] != false {
            problems.push(format!(
                "{at}: gets *_SERVICE_HOST/PORT variables no program of it reads"
            ));
        }
        if pod["seccompProfile"]["type"] != "RuntimeDefault" {
            problems.push(format!("{at}: no RuntimeDefault seccomp profile"));
        }
        for container in containers(spec) {
            let c = &container["securityContext"];
            let cname = container["name"].as_str().unwrap_or_default();
            if pod["runAsNonRoot"] != true && c["runAsNonRoot"] != true {
                problems.push(format!("{at} {cname}: may run as root"));
            }
            if c["allowPrivilegeEscalation"] != false {
                problems.push(format!("{at} {cname}: allows privilege escalation"));
            }
            if c["readOnlyRootFilesystem"] != true {
                problems.push(format!("{at} {cname}: writable root filesystem"));
            }
            if array(&c["capabilities"]["drop"]) != [Value::from("ALL")]
                || !array(&c["capabilities"]["add"]).is_empty()
            {
                problems.push(format!("{at} {cname}: does not drop every capability"));
            }
            let image = container["image"].as_str().unwrap_or_default();
            if shop_target(image).is_some() && pod["runAsUser"].as_u64() != Some(uid) {
                problems.push(format!(
                    "{at} {cname}: runs as {} but the Dockerfile's user is {uid}",
                    pod["runAsUser"]
                ));
            }
            let resources = &container["resources"];
            if resources["requests"]["cpu"].is_null()
                || resources["requests"]["memory"].is_null()
                || resources["limits"]["memory"].is_null()
            {
                problems.push(format!("{at} {cname}: requests (cpu, memory) and a memory limit are set from measurements (docs/SCALING.md)"));
            }
        }
    }
    problems
}

/// docs/DEPLOY.md, which the Secrets made by hand must be described in.
pub fn deploy_doc() -> String {
    read("docs/DEPLOY.md")
}

/// The databases a profile gives the services, each as (service, role, database): from
/// a `postgres://` URL in a Secret of the render (dev) or a CloudNativePG Cluster's
/// initdb (production).
pub fn databases(objects: &[Value]) -> BTreeMap<String, (String, String)> {
    let mut found = BTreeMap::new();
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        let Some(principal) = pod_labels(object).get("shop/principal").cloned() else {
            continue;
        };
        for container in containers(spec) {
            for var in array(&container["env"]) {
                if var["name"] != "DATABASE_URL" {
                    continue;
                }
                let secret = var["valueFrom"]["secretKeyRef"]["name"]
                    .as_str()
                    .unwrap_or_default();
                if let Some(url) =
                    find(objects, "Secret", secret).and_then(|s| secret_data(s, "uri"))
                {
                    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
                    let (credentials, location) = rest.split_once('@').unwrap_or_default();
                    let role = credentials.split(':').next().unwrap_or_default();
                    let database = location
                        .split_once('/')
                        .map(|(_, d)| d.split('?').next().unwrap_or_default())
                        .unwrap_or_default();
                    found.insert(principal.clone(), (role.to_owned(), database.to_owned()));
                } else if let Some(cluster) = secret
                    .strip_suffix("-app")
                    .and_then(|c| find(objects, "Cluster", c))
                {
                    let initdb = &cluster["spec"]["bootstrap"]["initdb"];
                    found.insert(
                        principal.clone(),
                        (
                            initdb["owner"].as_str().unwrap_or_default().to_owned(),
                            initdb["database"].as_str().unwrap_or_default().to_owned(),
                        ),
                    );
                }
            }
        }
    }
    found
}
