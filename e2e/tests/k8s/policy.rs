//! The NetworkPolicies of a render, evaluated as Kubernetes does, against two other
//! sources of truth: the edges the workloads are configured to use (the addresses in
//! their settings, plus what the operators and the cluster's DNS need), and the access
//! table of platform/src/security/access.rs (who may call which RPC).
//!
//! The model: every pod template of the render is a peer (its replicas are one peer,
//! since they share labels), and so are a few peers outside it: the cluster's DNS,
//! Prometheus, the CloudNativePG operator, an OpenTelemetry Collector, the Kubernetes
//! API, a pod of another namespace and a client outside the cluster. A connection from
//! one peer to a port another listens on is allowed when the source's egress and the
//! destination's ingress both allow it; a side no policy selects, or that is outside the
//! render, allows everything (NetworkPolicy semantics). The kubelet's probes and
//! `kubectl port-forward` never pass through policies, so they are not modelled.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::support::{
    array, base64_decode, containers, find, host_port, kind, labels, mounted_config_maps, name,
    of_kind, pod_labels, pod_spec,
};

const NAMESPACE: &str = "shop";

#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    /// `None`: an address outside the cluster.
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The ports it listens on, by container port name where it has one.
    pub ports: BTreeMap<u16, Option<String>>,
    /// A pod of the render, whose policies apply to it.
    pub in_render: bool,
}

impl Peer {
    fn external(
        name: &str,
        namespace: Option<&str>,
        labels: &[(&str, &str)],
        ports: &[u16],
    ) -> Self {
        Peer {
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ports: ports.iter().map(|p| (*p, None)).collect(),
            in_render: false,
        }
    }

    fn namespace_labels(&self) -> BTreeMap<String, String> {
        self.namespace
            .iter()
            .map(|ns| ("kubernetes.io/metadata.name".to_owned(), ns.clone()))
            .collect()
    }

    fn port_named(&self, port_name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(_, n)| n.as_deref() == Some(port_name))
            .map(|(p, _)| *p)
    }

    /// The principal this pod runs as on the network (`shop/principal`).
    pub fn principal(&self) -> Option<&str> {
        self.labels.get("shop/principal").map(String::as_str)
    }
}

/// The peers outside the render that the shop's edges involve.
pub const DNS: &str = "kube-dns (kube-system)";
pub const PROMETHEUS: &str = "Prometheus (monitoring)";
pub const CNPG_OPERATOR: &str = "CloudNativePG operator (cnpg-system)";
pub const COLLECTOR: &str = "OpenTelemetry Collector (observability)";
pub const API_SERVER: &str = "Kubernetes API server";
pub const OTHER_POD: &str = "a pod of another namespace";
pub const OUTSIDE: &str = "a client outside the cluster";

fn externals() -> Vec<Peer> {
    vec![
        Peer::external(DNS, Some("kube-system"), &[("k8s-app", "kube-dns")], &[53]),
        Peer::external(
            PROMETHEUS,
            Some("monitoring"),
            &[("app.kubernetes.io/name", "prometheus")],
            &[],
        ),
        Peer::external(
            CNPG_OPERATOR,
            Some("cnpg-system"),
            &[("app.kubernetes.io/name", "cloudnative-pg")],
            &[],
        ),
        Peer::external(
            COLLECTOR,
            Some("observability"),
            &[("app.kubernetes.io/name", "opentelemetry-collector")],
            &[4317],
        ),
        Peer::external(API_SERVER, None, &[], &[443, 6443]),
        Peer::external(OTHER_POD, Some("default"), &[("app", "anything")], &[]),
        Peer::external(OUTSIDE, None, &[], &[]),
    ]
}

/// CloudNativePG's instance pods: its instance manager's status port, Postgres, and
/// the metrics exporter.
const CNPG_PORTS: [u16; 3] = [8000, 5432, 9187];

/// Every peer: the render's pod templates and CloudNativePG instances, then the
/// outside ones.
pub fn peers(objects: &[Value]) -> Vec<Peer> {
    let mut peers = Vec::new();
    for object in objects {
        if let Some(spec) = pod_spec(object) {
            let ports = containers(spec)
                .flat_map(|c| array(&c["ports"]))
                .map(|p| {
                    (
                        u16::try_from(p["containerPort"].as_u64().unwrap()).unwrap(),
                        p["name"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            peers.push(Peer {
                name: format!("{}/{}", kind(object), name(object)),
                namespace: Some(NAMESPACE.to_owned()),
                labels: pod_labels(object),
                ports,
                in_render: true,
            });
        }
    }
    for cluster in of_kind(objects, "Cluster") {
        peers.push(Peer {
            name: format!("Cluster/{}", name(cluster)),
            namespace: Some(NAMESPACE.to_owned()),
            labels: [("cnpg.io/cluster".to_owned(), name(cluster).to_owned())].into(),
            ports: CNPG_PORTS.iter().map(|p| (*p, None)).collect(),
            in_render: true,
        });
    }
    peers.extend(externals());
    peers
}

// ---- NetworkPolicy semantics -------------------------------------------------------------

/// Whether a label selector (`matchLabels`, `matchExpressions`) selects `labels`. An
/// empty selector selects everything.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector["matchLabels"].as_object().is_none_or(|wanted| {
        wanted
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    });
    let by_expression = array(&selector["matchExpressions"]).iter().all(|e| {
        let key = e["key"].as_str().unwrap();
        let values: Vec<&str> = array(&e["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let value = labels.get(key).map(String::as_str);
        match e["operator"].as_str().unwrap() {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    });
    by_label && by_expression
}

/// Whether one `from`/`to` entry of a policy in the shop's namespace names `peer`.
fn names_peer(entry: &Value, peer: &Peer) -> bool {
    if entry.get("ipBlock").is_some() {
        // Addresses outside the cluster: pod addresses are not what ipBlock is for
        // (Kubernetes leaves it to the network plugin whether they match).
        return peer.namespace.is_none();
    }
    let Some(namespace) = &peer.namespace else {
        return false;
    };
    let namespace_ok = match entry.get("namespaceSelector") {
        Some(selector) => selects(selector, &peer.namespace_labels()),
        None => namespace == NAMESPACE,
    };
    let pod_ok = entry
        .get("podSelector")
        .is_none_or(|selector| selects(selector, &peer.labels));
    namespace_ok && pod_ok
}

/// Whether a rule's `ports` cover `port` of `destination`.
fn covers_port(rule: &Value, destination: &Peer, port: u16) -> bool {
    let ports = array(&rule["ports"]);
    ports.is_empty()
        || ports.iter().any(|p| {
            // Every port modelled here is TCP but DNS, which is asked over UDP and TCP.
            if p["protocol"].as_str().unwrap_or("TCP") != "TCP" && port != 53 {
                return false;
            }
            let first = match &p["port"] {
                Value::Null => return true,
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Value::String(named) => destination.port_named(named),
                _ => None,
            };
            let Some(first) = first else { return false };
            let last = p["endPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(first);
            (first..=last).contains(&port)
        })
}

fn policy_types(policy: &Value) -> Vec<&str> {
    array(&policy["spec"]["policyTypes"])
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// Whether `direction` (`Ingress` or `Egress`) lets `this` pod reach or be reached by
/// `other` on `port` of `destination`.
fn direction_allows(
    policies: &[&Value],
    direction: &str,
    this: &Peer,
    other: &Peer,
    destination: &Peer,
    port: u16,
) -> bool {
    if !this.in_render {
        return true;
    }
    let (rules, peers_key) = match direction {
        "Ingress" => ("ingress", "from"),
        _ => ("egress", "to"),
    };
    let selecting: Vec<&&Value> = policies
        .iter()
        .filter(|p| policy_types(p).contains(&direction))
        .filter(|p| selects(&p["spec"]["podSelector"], &this.labels))
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|policy| {
        array(&policy["spec"][rules]).iter().any(|rule| {
            let peers = array(&rule[peers_key]);
            covers_port(rule, destination, port)
                && (peers.is_empty() || peers.iter().any(|entry| names_peer(entry, other)))
        })
    })
}

/// A connection from one peer to a port of another.
pub type Edge = (String, String, u16);

/// Every connection the render's policies allow between the peers, where at least one
/// end is a pod of the render.
pub fn allowed(objects: &[Value], peers: &[Peer]) -> BTreeSet<Edge> {
    let policies: Vec<&Value> = of_kind(objects, "NetworkPolicy").collect();
    let mut edges = BTreeSet::new();
    for source in peers {
        for destination in peers {
            if !(source.in_render || destination.in_render) {
                continue;
            }
            for port in destination.ports.keys() {
                if direction_allows(&policies, "Egress", source, destination, destination, *port)
                    && direction_allows(
                        &policies,
                        "Ingress",
                        destination,
                        source,
                        destination,
                        *port,
                    )
                {
                    edges.insert((source.name.clone(), destination.name.clone(), *port));
                }
            }
        }
    }
    edges
}

// ---- the edges the workloads are configured to use --------------------------------------

/// A setting's value in a container: `value`, a key of an `envFrom` ConfigMap, or a
/// `secretKeyRef` into a Secret of the render.
fn env_value(objects: &[Value], container: &Value, key: &str) -> Option<EnvValue> {
    for var in array(&container["env"]) {
        if var["name"] != key {
            continue;
        }
        if let Some(value) = var["value"].as_str() {
            return Some(EnvValue::Plain(value.to_owned()));
        }
        let secret = &var["valueFrom"]["secretKeyRef"];
        if let Some(secret_name) = secret["name"].as_str() {
            let field = secret["key"].as_str().unwrap_or_default();
            return Some(match find(objects, "Secret", secret_name) {
                Some(object) => EnvValue::Plain(secret_data(object, field).unwrap_or_default()),
                None => EnvValue::FromSecret(secret_name.to_owned(), field.to_owned()),
            });
        }
    }
    for source in array(&container["envFrom"]) {
        if let Some(map) = source["configMapRef"]["name"].as_str()
            && let Some(value) =
                find(objects, "ConfigMap", map).and_then(|m| m["data"][key].as_str())
        {
            return Some(EnvValue::Plain(value.to_owned()));
        }
    }
    None
}

enum EnvValue {
    Plain(String),
    /// A Secret the render does not hold (an operator makes it): its name and key.
    FromSecret(String, String),
}

/// One key of a Secret of the render, decoded.
pub fn secret_data(secret: &Value, key: &str) -> Option<String> {
    if let Some(text) = secret["stringData"][key].as_str() {
        return Some(text.to_owned());
    }
    secret["data"][key]
        .as_str()
        .map(|encoded| String::from_utf8(base64_decode(encoded)).unwrap())
}

/// The settings that name another party: where the binary connects.
fn is_address_setting(key: &str) -> bool {
    key.ends_with("_URL") || key == "OTEL_EXPORTER_OTLP_ENDPOINT"
}

/// The keys a container is given, from `env` and `envFrom` ConfigMaps.
fn env_keys(objects: &[Value], container: &Value) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = array(&container["env"])
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    for source in array(&container["envFrom"]) {
        if let Some(map) = source["configMapRef"]["name"].as_str()
            && let Some(data) = find(objects, "ConfigMap", map).and_then(|m| m["data"].as_object())
        {
            keys.extend(data.keys().cloned());
        }
    }
    keys
}

/// Where `address` leads in the render: the pods behind the Service its host names, and
/// the container port its port maps to; for a host in another namespace, the outside
/// peer that stands for it. `Err` says why it leads nowhere.
fn resolve(objects: &[Value], peers: &[Peer], address: &str) -> Result<Vec<(String, u16)>, String> {
    let (host, port) = host_port(address).ok_or_else(|| format!("`{address}` has no host:port"))?;
    let mut labels = host.split('.');
    let service_name = labels.next().unwrap_or_default();
    let second = labels.next();
    // A StatefulSet pod's own name under its headless Service: `nats-0.nats-headless`.
    if let Some(headless) = second
        && let Some(service) = find(objects, "Service", headless)
        && service["spec"]["clusterIP"] == "None"
    {
        return service_targets(peers, service, port, address);
    }
    let namespace = second.filter(|ns| *ns != "svc").unwrap_or(NAMESPACE);
    if namespace != NAMESPACE {
        return peers
            .iter()
            .find(|p| {
                !p.in_render
                    && p.namespace.as_deref() == Some(namespace)
                    && p.labels.get("app.kubernetes.io/name").map(String::as_str)
                        == Some(service_name)
            })
            .map(|p| vec![(p.name.clone(), port)])
            .ok_or_else(|| {
                format!("`{address}`: no known peer {service_name} in namespace {namespace}")
            });
    }
    if let Some(service) = find(objects, "Service", service_name) {
        return service_targets(peers, service, port, address);
    }
    // CloudNativePG's Services for a Cluster: <cluster>-rw (the primary), -ro, -r.
    for suffix in ["-rw", "-ro", "-r"] {
        if let Some(cluster) = service_name.strip_suffix(suffix)
            && find(objects, "Cluster", cluster).is_some()
        {
            return Ok(vec![(format!("Cluster/{cluster}"), port)]);
        }
    }
    Err(format!(
        "`{address}`: no Service {service_name} in the render"
    ))
}

fn service_targets(
    peers: &[Peer],
    service: &Value,
    port: u16,
    address: &str,
) -> Result<Vec<(String, u16)>, String> {
    let spec = &service["spec"];
    let service_port = array(&spec["ports"])
        .iter()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .ok_or_else(|| format!("`{address}`: Service {} has no port {port}", name(service)))?;
    let selector = labels(&spec["selector"]);
    let targets: Vec<(String, u16)> = peers
        .iter()
        .filter(|p| {
            p.in_render
                && !selector.is_empty()
                && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        })
        .filter_map(|p| {
            let target = match &service_port["targetPort"] {
                Value::Number(n) => u16::try_from(n.as_u64()?).ok(),
                Value::String(named) => p.port_named(named),
                _ => Some(port),
            }?;
            p.ports
                .contains_key(&target)
                .then(|| (p.name.clone(), target))
        })
        .collect();
    if targets.is_empty() {
        Err(format!(
            "`{address}`: Service {} selects no pod listening on its port {port}",
            name(service)
        ))
    } else {
        Ok(targets)
    }
}

/// Where the render's workloads are configured to connect, with the setting that says
/// so; and the addresses that lead nowhere.
pub fn configured(objects: &[Value], peers: &[Peer]) -> (BTreeMap<Edge, String>, Vec<String>) {
    let mut edges = BTreeMap::new();
    let mut problems = Vec::new();
    let peer_of = |object: &Value| format!("{}/{}", kind(object), name(object));
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        let source = peer_of(object);
        // Every pod resolves names.
        edges.insert(
            (source.clone(), DNS.to_owned(), 53),
            "the cluster's DNS".to_owned(),
        );
        for container in containers(spec) {
            for key in env_keys(objects, container) {
                if key == "METRICS_LISTEN_ADDR" {
                    let value = match env_value(objects, container, &key) {
                        Some(EnvValue::Plain(v)) => v,
                        _ => continue,
                    };
                    if let Some((_, port)) = host_port(&value) {
                        edges.insert(
                            (PROMETHEUS.to_owned(), source.clone(), port),
                            format!("{source}: {key}"),
                        );
                    }
                    continue;
                }
                if !is_address_setting(&key) {
                    continue;
                }
                let why = format!("{source}: {key}");
                match env_value(objects, container, &key) {
                    Some(EnvValue::Plain(address)) => match resolve(objects, peers, &address) {
                        Ok(targets) => {
                            for (target, port) in targets {
                                edges.insert((source.clone(), target, port), why.clone());
                            }
                        }
                        Err(e) => problems.push(format!("{why}: {e}")),
                    },
                    // CloudNativePG's <cluster>-app Secret: `uri` leads to <cluster>-rw:5432.
                    Some(EnvValue::FromSecret(secret, field)) => {
                        match secret.strip_suffix("-app").filter(|c| find(objects, "Cluster", c).is_some()) {
                            Some(cluster) if field == "uri" => {
                                edges.insert((source.clone(), format!("Cluster/{cluster}"), 5432), why);
                            }
                            _ => problems.push(format!(
                                "{why}: from Secret {secret} (key {field}), which neither the render \
                                 nor an operator of it makes"
                            )),
                        }
                    }
                    None => {}
                }
            }
        }
        // NATS cluster routes, from the configuration the broker mounts.
        for config in mounted_config_maps(objects, spec) {
            for text in config["data"]
                .as_object()
                .into_iter()
                .flat_map(|d| d.values())
            {
                for route in text.as_str().unwrap_or_default().split_whitespace() {
                    if let Some(address) = route.strip_prefix("nats-route://") {
                        match resolve(objects, peers, address) {
                            Ok(targets) => {
                                for (target, port) in targets {
                                    edges.insert(
                                        (source.clone(), target, port),
                                        format!("{source}: cluster route {address}"),
                                    );
                                }
                            }
                            Err(e) => problems.push(format!("{source}: route: {e}")),
                        }
                    }
                }
            }
        }
    }
    // What CloudNativePG needs (its networking documentation): the operator reaches
    // every instance on 8000 and 5432, the instances reach each other, and each
    // instance manager the Kubernetes API.
    for cluster in of_kind(objects, "Cluster") {
        let peer = format!("Cluster/{}", name(cluster));
        edges.insert(
            (peer.clone(), DNS.to_owned(), 53),
            "the cluster's DNS".to_owned(),
        );
        for port in [8000, 5432] {
            let why = "CloudNativePG: operator and replication".to_owned();
            edges.insert((CNPG_OPERATOR.to_owned(), peer.clone(), port), why.clone());
            edges.insert((peer.clone(), peer.clone(), port), why);
        }
        for port in [443, 6443] {
            edges.insert(
                (peer.clone(), API_SERVER.to_owned(), port),
                "CloudNativePG: instance manager".to_owned(),
            );
        }
    }
    (edges, problems)
}

// ---- the access table -------------------------------------------------------------------

/// A rule of the access table: `(service, who)`, `None` meaning any peer.
pub type Rule = (String, Option<Vec<String>>);

/// The table of platform/src/security/access.rs, by service, methods folded together.
pub fn access_table() -> Vec<Rule> {
    use platform::security::access::{Allow, RULES};
    RULES
        .iter()
        .map(|(service, _, allow)| {
            (
                (*service).to_owned(),
                match allow {
                    Allow::AnyPeer => None,
                    Allow::Only(who) => Some(who.iter().map(|p| p.name().to_owned()).collect()),
                },
            )
        })
        .collect()
}

/// The gRPC services each server of the shop serves, besides health and reflection.
/// Every shop service of the access table must be served by someone here (checked), so
/// a new service cannot be missed.
pub const SERVES: &[(&str, &[&str])] = &[
    (
        "orchestrator",
        &[
            "shop.checkout.v1.CheckoutService",
            "shop.operations.v1.DeadLetterService",
            "shop.events.v1.EventAdminService",
        ],
    ),
    (
        "order-svc",
        &[
            "shop.order.v1.OrderService",
            "shop.events.v1.EventAdminService",
        ],
    ),
    (
        "payment-svc",
        &[
            "shop.payment.v1.PaymentService",
            "shop.events.v1.EventAdminService",
        ],
    ),
    (
        "inventory-svc",
        &[
            "shop.inventory.v1.InventoryService",
            "shop.events.v1.EventAdminService",
        ],
    ),
    (
        "shipping-svc",
        &[
            "shop.shipping.v1.ShippingService",
            "shop.events.v1.EventAdminService",
        ],
    ),
];

fn serves(server: &str) -> &'static [&'static str] {
    SERVES
        .iter()
        .find(|(s, _)| *s == server)
        .map_or(&[], |(_, services)| services)
}

/// Whether the table lets `caller` (a principal, or `None` for a peer without a
/// certificate of the shop) call anything of `server` beyond health and reflection; and
/// whether that is open to any peer (a front door).
fn table_allows(table: &[Rule], server: &str, caller: Option<&str>) -> (bool, bool) {
    let rules: Vec<&Rule> = table
        .iter()
        .filter(|(service, _)| serves(server).contains(&service.as_str()))
        .collect();
    let open = rules.iter().any(|(_, who)| who.is_none());
    let allowed = open
        || caller.is_some_and(|caller| {
            rules.iter().any(|(_, who)| {
                who.as_ref()
                    .is_some_and(|who| who.iter().any(|w| w == caller))
            })
        });
    (allowed, open)
}

/// Every way the policies of `objects` differ from what the workloads are configured to
/// use, or the configured edges from what `table` allows; empty when the three agree.
pub fn problems(objects: &[Value], table: &[Rule]) -> Vec<String> {
    let peers = peers(objects);
    let by_name: BTreeMap<&str, &Peer> = peers.iter().map(|p| (p.name.as_str(), p)).collect();
    let (mut intended, mut problems) = configured(objects, &peers);

    // The table's services each have a server, so none escapes the check below.
    for (service, _) in table {
        if service.starts_with("shop.")
            && !SERVES.iter().any(|(_, s)| s.contains(&service.as_str()))
        {
            problems.push(format!(
                "the access table has rules for {service}, which no server in SERVES serves: add it"
            ));
        }
    }

    // A server's gRPC port (its container port named `grpc`) and who may call it.
    let grpc_port = |peer: &Peer| peer.port_named("grpc");
    for peer in &peers {
        let (Some(server), Some(port)) = (peer.principal(), grpc_port(peer)) else {
            continue;
        };
        // A front door takes calls from anyone: every peer outside the render may
        // connect (pods of the render only where they are configured to).
        if table_allows(table, server, None).1 {
            for outside in peers.iter().filter(|p| !p.in_render) {
                intended.insert(
                    (outside.name.clone(), peer.name.clone(), port),
                    format!("{server} serves a front door the access table opens to any peer"),
                );
            }
        }
    }

    // Every configured call of a server's gRPC port is one the table allows.
    for ((source, target, port), why) in &intended {
        let (source, target) = (by_name[source.as_str()], by_name[target.as_str()]);
        let Some(server) = target.principal() else {
            continue;
        };
        if grpc_port(target) != Some(*port) || !source.in_render {
            continue;
        }
        if !table_allows(table, server, source.principal()).0 {
            problems.push(format!(
                "{} ({}) is configured to call {server} ({why}), but the access table allows it \
                 nothing there",
                source.name,
                source.principal().unwrap_or("no principal"),
            ));
        }
    }

    // Each pod's network name is the name of the certificate it presents.
    for object in objects {
        let Some(spec) = pod_spec(object) else {
            continue;
        };
        let label = pod_labels(object).get("shop/principal").cloned();
        for container in containers(spec) {
            if let Some(EnvValue::Plain(cert)) = env_value(objects, container, "TLS_CERT_FILE") {
                let stem = cert
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(".pem");
                if label.as_deref() != Some(stem) {
                    problems.push(format!(
                        "{}: presents the certificate of {stem} but is labelled shop/principal={label:?}",
                        super::support::id(object)
                    ));
                }
            }
        }
    }

    // The policies allow exactly the intended edges.
    let allowed = allowed(objects, &peers);
    for (edge, why) in &intended {
        if !allowed.contains(edge) {
            problems.push(format!(
                "{} -> {}:{} is used ({why}) but the NetworkPolicies block it",
                edge.0, edge.1, edge.2
            ));
        }
    }
    for edge in &allowed {
        if !intended.contains_key(edge) {
            problems.push(format!(
                "{} -> {}:{} is open in the NetworkPolicies but nothing is configured to use it",
                edge.0, edge.1, edge.2
            ));
        }
    }
    // Every pod of the render is under a policy that denies by default.
    let default_deny = of_kind(objects, "NetworkPolicy").any(|p| {
        p["spec"]["podSelector"]
            .as_object()
            .is_some_and(serde_json::Map::is_empty)
            && policy_types(p) == ["Ingress", "Egress"]
            && array(&p["spec"]["ingress"]).is_empty()
            && array(&p["spec"]["egress"]).is_empty()
    });
    if !default_deny {
        problems.push("no default-deny NetworkPolicy (every pod, both directions, no rule)".into());
    }
    problems
}
