//! Behaviour of the Helm chart (charts/modelarts-operator) that users and the end-to-end tests rely
//! on, asserted on real `helm template` output: least-privilege RBAC, the restricted Pod Security
//! Standard, the flags the Deployment passes, and the image reference.
//!
//! Run: `cargo test --test chart`. helm is found via `$HELM`, the tools cache that `hack/tools.sh helm`
//! fills, or PATH. Without helm each test prints a `SKIPPED` line and passes, unless
//! `MODELARTS_REQUIRE_CLUSTER=1` (set in CI), which makes a missing helm a failure.
//! Lint and the CRD-copy diff are in hack/check-chart.sh.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const REQUIRE_ENV: &str = "MODELARTS_REQUIRE_CLUSTER";
const NS: &str = "modelarts-system";
const CI_VALUES: &str = "ci/namespaced-values.yaml";
const CRD_FILE: &str = "modelartsnodepools.modelarts-operator.io.yaml";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts/modelarts-operator")
}

/// The helm binary, or `None` after printing `SKIPPED` (panics instead under MODELARTS_REQUIRE_CLUSTER=1).
fn helm_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        // An explicit HELM that does not exist is a misconfiguration, never a reason to skip.
        let h = PathBuf::from(h);
        assert!(
            h.is_file() || which(&h).is_some(),
            "{test}: HELM={} does not exist",
            h.display()
        );
        return Some(h);
    }
    // Same cache location as hack/tools.sh.
    let cache = std::env::var_os("MODELARTS_OPERATOR_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("modelarts-operator/tools"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/modelarts-operator/tools"))
        });
    if let Some(h) = cache.map(|c| c.join("bin/helm")).filter(|h| h.is_file()) {
        return Some(h);
    }
    if let Some(h) = which(Path::new("helm")) {
        return Some(h);
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if required {
        panic!("{test}: {REQUIRE_ENV}=1 but helm was not found; run `hack/tools.sh helm`");
    }
    // Straight to fd 2: libtest captures eprintln! of passing tests, and a skip must be visible.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: helm not found (set HELM or run hack/tools.sh helm)"
    );
    None
}

fn which(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return None;
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `helm template` on the chart and returns every rendered object, or helm's stderr on failure.
fn try_render(helm: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let out = Command::new(helm)
        .args(["template", "modelarts-operator"])
        .arg(chart_dir())
        .args(["--namespace", NS])
        .args(args)
        .current_dir(chart_dir())
        .output()
        .expect("cannot run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(parse_docs(
        &String::from_utf8(out.stdout).expect("helm output is UTF-8"),
    ))
}

fn render(helm: &Path, args: &[&str]) -> Vec<Value> {
    try_render(helm, args).unwrap_or_else(|e| panic!("helm template {args:?} failed: {e}"))
}

fn parse_docs(text: &str) -> Vec<Value> {
    // Empty documents (a template rendering to nothing) are skipped by from_multiple.
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"))
}

fn kinds(objs: &[Value]) -> BTreeSet<String> {
    objs.iter().map(|o| str_at(o, "/kind").to_owned()).collect()
}

fn all_of<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    match all_of(objs, kind).as_slice() {
        [o] => o,
        other => panic!("expected exactly one {kind}, found {}", other.len()),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// The least-privilege grant, as (apiGroup, resource, verb) triples. Anything more is a bug: in
/// particular `list`/`watch` on Secrets would let the operator read every Secret it can reach.
fn expected_grants() -> BTreeSet<(String, String, String)> {
    [
        (
            "modelarts-operator.io",
            "modelartsnodepools",
            &["get", "list", "watch"][..],
        ),
        (
            "modelarts-operator.io",
            "modelartsnodepools/status",
            &["get", "patch", "update"],
        ),
        ("", "secrets", &["get"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ]
    .iter()
    .flat_map(|(g, r, verbs)| {
        verbs
            .iter()
            .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
    })
    .collect()
}

/// Flattens a (Cluster)Role's rules into triples, rejecting anything the triples cannot express
/// (resourceNames, nonResourceURLs) so the comparison with `expected_grants` is exact.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let strings = |rule: &Value, key: &str| -> Vec<String> {
        rule[key]
            .as_array()
            .unwrap_or_else(|| panic!("rule without {key}: {rule}"))
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let keys: BTreeSet<&str> = rule
            .as_object()
            .expect("rule")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["apiGroups", "resources", "verbs"]),
            "unexpected rule fields: {rule}"
        );
        for g in strings(rule, "apiGroups") {
            for r in strings(rule, "resources") {
                for v in strings(rule, "verbs") {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

fn container(objs: &[Value]) -> &Value {
    let deploy = one(objs, "Deployment");
    match deploy
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
    {
        Some(cs) if cs.len() == 1 => &cs[0],
        _ => panic!("expected one container in {deploy}"),
    }
}

fn args(objs: &[Value]) -> Vec<String> {
    container(objs)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

fn env<'a>(objs: &'a [Value], name: &str) -> Option<&'a Value> {
    container(objs)["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

/// The binding must point at the role that was rendered and at the ServiceAccount the pod runs as.
fn assert_binding(objs: &[Value], role: &Value, binding: &Value) {
    assert_eq!(binding["roleRef"]["kind"], role["kind"]);
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    let sa = one(objs, "ServiceAccount");
    let pod_sa = str_at(one(objs, "Deployment"), "/spec/template/spec/serviceAccountName");
    assert_eq!(str_at(sa, "/metadata/name"), pod_sa);
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": pod_sa, "namespace": NS}])
    );
}

#[test]
fn default_values_grant_exactly_the_least_privilege_cluster_rbac() {
    let Some(helm) = helm_or_skip("default_values_grant_exactly_the_least_privilege_cluster_rbac") else {
        return;
    };
    let objs = without_lease_rbac(render(&helm, &[]));
    assert!(all_of(&objs, "Role").is_empty() && all_of(&objs, "RoleBinding").is_empty());
    let role = one(&objs, "ClusterRole");
    assert_eq!(grants(role), expected_grants());
    // Spelled out as well, because this is the promise users audit: Secrets are get-only.
    let secret_verbs: BTreeSet<_> = grants(role)
        .into_iter()
        .filter(|(_, r, _)| r == "secrets")
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(secret_verbs, BTreeSet::from(["get".to_owned()]));
    assert_binding(&objs, role, one(&objs, "ClusterRoleBinding"));
    // RBAC names carry the release namespace: releases of the same name in two namespaces must not
    // overwrite each other's binding.
    assert_eq!(str_at(role, "/metadata/name"), format!("{NS}-modelarts-operator"));
    // The default watches all namespaces, matching the ClusterRole.
    assert!(!args(&objs).iter().any(|a| a.starts_with("--namespace")));
}

#[test]
fn namespaced_values_use_a_role_in_the_watched_namespace_only() {
    let Some(helm) = helm_or_skip("namespaced_values_use_a_role_in_the_watched_namespace_only") else {
        return;
    };
    let values = chart_dir().join(CI_VALUES);
    let objs = without_lease_rbac(render(&helm, &["-f", values.to_str().unwrap()]));
    assert!(
        all_of(&objs, "ClusterRole").is_empty(),
        "namespaced install rendered a ClusterRole"
    );
    assert!(all_of(&objs, "ClusterRoleBinding").is_empty());
    let role = one(&objs, "Role");
    let binding = one(&objs, "RoleBinding");
    assert_eq!(str_at(role, "/metadata/namespace"), "team-a");
    assert_eq!(str_at(binding, "/metadata/namespace"), "team-a");
    // Two releases watching team-a from different namespaces get distinct Roles and bindings.
    assert_eq!(str_at(role, "/metadata/name"), format!("{NS}-modelarts-operator"));
    assert_eq!(grants(role), expected_grants());
    assert_binding(&objs, role, binding);

    let a = args(&objs);
    assert!(a.contains(&"--namespace=team-a".to_owned()), "{a:?}");
    assert!(a.contains(&"--label-selector=shard in (a,b)".to_owned()), "{a:?}");
    assert!(a.contains(&"--allow-default-credentials".to_owned()), "{a:?}");
    let suffixes: Vec<_> = a
        .iter()
        .filter(|x| x.starts_with("--allowed-endpoint-suffix="))
        .collect();
    assert_eq!(
        suffixes,
        [
            "--allowed-endpoint-suffix=.myhuaweicloud.com",
            "--allowed-endpoint-suffix=.example.internal"
        ]
    );

    // Default credentials come from the existing Secret through the kubelet; only the STS token is
    // optional (long-lived AK/SK have none).
    for (var, key, optional) in [
        ("HUAWEICLOUD_SDK_AK", "accessKey", false),
        ("HUAWEICLOUD_SDK_SK", "secretKey", false),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "securityToken", true),
    ] {
        let e = env(&objs, var).unwrap_or_else(|| panic!("{var} not set"));
        let r = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(r["name"], "modelarts-default-credentials", "{e}");
        assert_eq!(r["key"], key, "{e}");
        assert_eq!(r["optional"].as_bool().unwrap_or(false), optional, "{e}");
    }

    let sm = one(&objs, "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");

    // The PrometheusRule: selected by the same release label, every alert with the extra
    // labels, a severity and a runbook, and selecting the job the ServiceMonitor produces.
    let rule = one(&objs, "PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let alerts: Vec<&serde_json::Value> = rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect();
    assert_eq!(alerts.len(), 7);
    for a in alerts {
        assert_eq!(a["labels"]["team"], "ml-platform", "{a}");
        assert!(a["labels"]["severity"].is_string(), "{a}");
        assert!(
            a["annotations"]["runbook"].as_str().is_some_and(|r| r.len() > 40),
            "{a}"
        );
        assert!(
            a["expr"].as_str().unwrap_or("").contains(&format!(
                "job=\"{}\"",
                sm["metadata"]["name"].as_str().unwrap_or("?")
            )),
            "{a}"
        );
    }
}

#[test]
fn deployment_meets_the_restricted_pod_security_standard() {
    let Some(helm) = helm_or_skip("deployment_meets_the_restricted_pod_security_standard") else {
        return;
    };
    for extra in [&[][..], &["-f", CI_VALUES][..]] {
        let objs = render(&helm, extra);
        let pod = &one(&objs, "Deployment")["spec"]["template"]["spec"];
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[host].as_bool() != Some(true), "{host} set");
        }
        assert!(
            pod.get("volumes").is_none(),
            "unexpected volumes: {}",
            pod["volumes"]
        );
        let psc = &pod["securityContext"];
        let all = pod["containers"].as_array().into_iter().flatten();
        let init = pod["initContainers"].as_array().into_iter().flatten();
        for c in all.chain(init) {
            let sc = &c["securityContext"];
            // A container-level field overrides the pod-level one, so check the effective value.
            let eff = |k: &str| if sc.get(k).is_some() { &sc[k] } else { &psc[k] };
            assert_eq!(eff("runAsNonRoot"), true, "runAsNonRoot in {c}");
            assert_ne!(eff("runAsUser").as_i64(), Some(0), "runs as root: {c}");
            assert_eq!(eff("seccompProfile")["type"], "RuntimeDefault", "seccomp in {c}");
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "allowPrivilegeEscalation in {c}"
            );
            assert_eq!(
                sc["readOnlyRootFilesystem"], true,
                "readOnlyRootFilesystem in {c}"
            );
            assert_ne!(sc["privileged"], true, "privileged: {c}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "drop ALL in {c}"
            );
            assert!(sc["capabilities"].get("add").is_none(), "capabilities added: {c}");
        }
    }
}

#[test]
fn deployment_serves_metrics_and_probes_on_all_interfaces() {
    let Some(helm) = helm_or_skip("deployment_serves_metrics_and_probes_on_all_interfaces") else {
        return;
    };
    let objs = render(&helm, &[]);
    let a = args(&objs);
    assert_eq!(a.first().map(String::as_str), Some("run"), "{a:?}");
    // The binary's default is 127.0.0.1:8080, unreachable for the kubelet and Prometheus.
    assert!(a.contains(&"--metrics-addr=0.0.0.0:8080".to_owned()), "{a:?}");
    for flag in [
        "--log-format=json",
        "--concurrency=4",
        "--modelarts-qps=5",
        "--modelarts-burst=10",
        "--status-heartbeat=5m",
    ] {
        assert!(a.contains(&flag.to_owned()), "missing {flag} in {a:?}");
    }
    // Off by default: otherwise any CR author could use the operator's own cloud credentials.
    assert!(!a.iter().any(|x| x == "--allow-default-credentials"), "{a:?}");
    assert!(env(&objs, "HUAWEICLOUD_SDK_AK").is_none());

    let c = container(&objs);
    assert_eq!(
        c["ports"],
        serde_json::json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        serde_json::json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        serde_json::json!({"path": "/readyz", "port": "metrics"})
    );
    let pod_name = env(&objs, "POD_NAME").expect("POD_NAME");
    assert_eq!(pod_name["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    let pod_ns = env(&objs, "POD_NAMESPACE").expect("POD_NAMESPACE");
    assert_eq!(pod_ns["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(env(&objs, "RUST_LOG").expect("RUST_LOG")["value"], "info");

    // The metrics Service must select the pod and expose the named port.
    let svc = one(&objs, "Service");
    let pod_labels = &one(&objs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&pod_labels[k], v, "Service selector {k} does not match the pod");
    }
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(
        all_of(&objs, "ServiceMonitor").is_empty(),
        "ServiceMonitor must be opt-in"
    );
    assert!(
        all_of(&objs, "PrometheusRule").is_empty(),
        "PrometheusRule must be opt-in"
    );

    // A changed port moves the listener, the container port and the Service together.
    let objs = render(&helm, &["--set", "metrics.port=9090"]);
    assert!(args(&objs).contains(&"--metrics-addr=0.0.0.0:9090".to_owned()));
    assert_eq!(container(&objs)["ports"][0]["containerPort"], 9090);
    assert_eq!(one(&objs, "Service")["spec"]["ports"][0]["port"], 9090);
}

#[test]
fn image_tag_defaults_to_the_chart_app_version() {
    let Some(helm) = helm_or_skip("image_tag_defaults_to_the_chart_app_version") else {
        return;
    };
    let chart_yaml = std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_saphyr::from_str(&chart_yaml).expect("Chart.yaml parses");
    let app_version = str_at(&chart, "/appVersion");
    let repo = "ghcr.io/modelarts-operator/modelarts-operator";

    let image = |args: &[&str]| str_at(container(&render(&helm, args)), "/image").to_owned();
    assert_eq!(image(&[]), format!("{repo}:{app_version}"));
    assert_eq!(image(&["--set", "image.tag=v9.9.9"]), format!("{repo}:v9.9.9"));
    let digest = format!("sha256:{}", "a".repeat(64));
    let by_digest = image(&[
        "--set",
        &format!("image.digest={digest}"),
        "--set",
        "image.tag=v9.9.9",
    ]);
    assert_eq!(
        by_digest,
        format!("{repo}@{digest}"),
        "a digest must win over the tag"
    );
}

#[test]
fn unsupported_settings_are_refused() {
    let Some(helm) = helm_or_skip("unsupported_settings_are_refused") else {
        return;
    };
    // Two replicas without leader election would both poll ModelArts and write status.
    let err = try_render(
        &helm,
        &["--set", "replicas=2", "--set", "leaderElection.enabled=false"],
    )
    .expect_err("replicas=2 without leader election rendered");
    assert!(err.contains("leaderElection.enabled"), "{err}");
    let err = try_render(&helm, &["--set", "replicas=-1"]).expect_err("replicas=-1 rendered");
    assert!(err.contains("/replicas"), "{err}");
    let err = try_render(&helm, &["--set", "leaderElection.leaseDuration=soon"])
        .expect_err("a lease duration that is no duration rendered");
    assert!(err.contains("leaseDuration"), "{err}");
    assert_eq!(
        one(&render(&helm, &["--set", "replicas=0"]), "Deployment")["spec"]["replicas"],
        0
    );
    let err = try_render(&helm, &["--set", "defaultCredentials.enabled=true"])
        .expect_err("default credentials without a Secret rendered");
    assert!(err.contains("existingSecret"), "{err}");
    // A misspelt value would otherwise be ignored silently and the default used.
    let err = try_render(&helm, &["--set", "concurency=8"]).expect_err("misspelt value accepted");
    assert!(err.contains("concurency"), "{err}");
}

#[test]
fn render_rbac_script_prints_only_the_service_account_and_rbac() {
    let Some(helm) = helm_or_skip("render_rbac_script_prints_only_the_service_account_and_rbac") else {
        return;
    };
    let run = |extra: &[&str]| {
        let out = Command::new("bash")
            .arg(repo().join("hack/render-rbac.sh"))
            .args(["e2e-ns", "e2e-operator"])
            .args(extra)
            .env("HELM", &helm)
            .output()
            .expect("run hack/render-rbac.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        parse_docs(&String::from_utf8(out.stdout).unwrap())
    };

    // The Lease Role and binding come along (leader election is on by default), so the e2e
    // tests run the operator with exactly the chart's RBAC for leader election too.
    let all = run(&[]);
    assert_eq!(all.len(), 5);
    let lease_role = one(&all, "Role");
    assert_eq!(str_at(lease_role, "/metadata/namespace"), "e2e-ns");
    assert!(grants_any(lease_role, "leases"));
    let objs = without_lease_rbac(all);
    assert_eq!(
        kinds(&objs),
        BTreeSet::from(["ClusterRole", "ClusterRoleBinding", "ServiceAccount"].map(String::from))
    );
    assert_eq!(objs.len(), 3);
    let sa = one(&objs, "ServiceAccount");
    assert_eq!(str_at(sa, "/metadata/name"), "e2e-operator");
    assert_eq!(str_at(sa, "/metadata/namespace"), "e2e-ns");
    let binding = one(&objs, "ClusterRoleBinding");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "e2e-operator", "namespace": "e2e-ns"}])
    );
    assert_eq!(grants(one(&objs, "ClusterRole")), expected_grants());

    let objs = without_lease_rbac(run(&["--set", "watchNamespace=e2e-ns"]));
    assert_eq!(
        kinds(&objs),
        BTreeSet::from(["Role", "RoleBinding", "ServiceAccount"].map(String::from))
    );
}

/// Helm installs the chart's crds/ copy, so it must be exactly what the code generates; a stale copy
/// would ship an old schema that Helm then never upgrades.
#[test]
fn chart_crd_is_the_generated_crd() {
    let generated = modelarts_operator::crd::crd_yaml().expect("generate CRD");
    for path in [
        repo().join("crds").join(CRD_FILE),
        chart_dir().join("crds").join(CRD_FILE),
    ] {
        let on_disk =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            on_disk == generated,
            "{} is stale; regenerate with `cargo run -q -- crd > crds/{CRD_FILE}` and copy it to \
             charts/modelarts-operator/crds/",
            path.display()
        );
    }
}

#[test]
fn a_ca_bundle_is_mounted_as_a_directory_and_passed_to_the_operator() {
    let Some(helm) = helm_or_skip("a_ca_bundle_is_mounted_as_a_directory_and_passed_to_the_operator") else {
        return;
    };
    let plain = render(&helm, &[]);
    assert!(args(&plain).contains(&"--modelarts-trust-roots=public".to_string()));
    assert!(!args(&plain).iter().any(|a| a.starts_with("--modelarts-ca-file")));
    assert!(container(&plain).get("volumeMounts").is_none());

    for (kind, value) in [("secret", "secretName"), ("configMap", "configMapName")] {
        let objs = render(
            &helm,
            &[
                "--set",
                &format!("modelarts.caBundle.{value}=corp-ca"),
                "--set",
                "modelarts.caBundle.key=bundle.pem",
                "--set",
                "modelarts.trustRoots=platform",
                "--set",
                "modelarts.regionDomain=hcs.example.com",
            ],
        );
        let a = args(&objs);
        for want in [
            "--modelarts-ca-file=/etc/modelarts-operator/ca/bundle.pem",
            "--modelarts-trust-roots=platform",
            "--region-domain=hcs.example.com",
        ] {
            assert!(a.contains(&want.to_string()), "{want} missing from {a:?}");
        }
        let mount = &container(&objs)["volumeMounts"][0];
        assert_eq!(mount["mountPath"], "/etc/modelarts-operator/ca");
        // A subPath mount would never see the kubelet's updates of the object.
        assert!(mount.get("subPath").is_none(), "{mount}");
        let volume = &one(&objs, "Deployment")["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(volume["name"], mount["name"]);
        let name = if kind == "secret" { "secretName" } else { "name" };
        assert_eq!(volume[kind][name], "corp-ca", "{volume}");
    }
    let err = try_render(
        &helm,
        &[
            "--set",
            "modelarts.caBundle.secretName=a",
            "--set",
            "modelarts.caBundle.configMapName=b",
        ],
    )
    .expect_err("both a Secret and a ConfigMap rendered");
    assert!(err.contains("not both"), "{err}");
    let err = try_render(&helm, &["--set", "modelarts.trustRoots=all"]).expect_err("bad trustRoots rendered");
    assert!(err.contains("trustRoots"), "{err}");
}

/// Leader election is on by default: the binary gets the flags, the Lease has a Role in the
/// release namespace only, and a rollout surges a standby before removing the leader.
#[test]
fn leader_election_is_on_by_default_with_a_namespaced_lease_role() {
    let Some(helm) = helm_or_skip("leader_election_is_on_by_default_with_a_namespaced_lease_role") else {
        return;
    };
    let objs = render(&helm, &[]);
    let a = args(&objs);
    assert!(a.contains(&"--leader-elect".to_owned()), "{a:?}");
    assert!(
        a.contains(&"--leader-election-lease-name=modelarts-operator".to_owned()),
        "{a:?}"
    );
    assert!(
        a.contains(&"--leader-election-lease-duration=15s".to_owned()),
        "{a:?}"
    );

    let lease_roles: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "Role" && str_at(o, "/metadata/name").ends_with("-leader-election"))
        .collect();
    assert_eq!(lease_roles.len(), 1, "one lease Role");
    let role = lease_roles[0];
    assert_eq!(str_at(role, "/metadata/namespace"), NS);
    let want: BTreeSet<(String, String, String)> = ["get", "create", "update", "patch"]
        .iter()
        .map(|v| {
            (
                "coordination.k8s.io".to_owned(),
                "leases".to_owned(),
                v.to_string(),
            )
        })
        .collect();
    assert_eq!(grants(role), want);
    let binding = objs
        .iter()
        .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["name"] == role["metadata"]["name"])
        .expect("lease RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], NS);
    // No other object grants anything on leases.
    let lease_grants = objs
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .filter(|o| grants(o).iter().any(|(_, r, _)| r == "leases"))
        .count();
    assert_eq!(lease_grants, 1);

    let deploy = one(&objs, "Deployment");
    assert_eq!(
        deploy["spec"]["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    );
    assert!(
        !kinds(&objs).contains("PodDisruptionBudget"),
        "no PDB for one replica"
    );

    // Off: no lease Role, no flag, and Recreate (a surge pod would be a second writer).
    let objs = render(&helm, &["--set", "leaderElection.enabled=false"]);
    assert!(!args(&objs).iter().any(|x| x.starts_with("--leader-elect")));
    assert!(!objs.iter().any(|o| grants_any(o, "leases")));
    assert_eq!(one(&objs, "Deployment")["spec"]["strategy"]["type"], "Recreate");
}

/// Two replicas: allowed with leader election, with a PodDisruptionBudget and a default spread.
#[test]
fn several_replicas_get_a_disruption_budget_and_spread() {
    let Some(helm) = helm_or_skip("several_replicas_get_a_disruption_budget_and_spread") else {
        return;
    };
    let objs = render(&helm, &["--set", "replicas=2"]);
    let deploy = one(&objs, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pdb = one(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    let spread = deploy["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .expect("default topologySpreadConstraints");
    let keys: Vec<&str> = spread.iter().filter_map(|c| c["topologyKey"].as_str()).collect();
    assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    for c in spread {
        assert_eq!(c["whenUnsatisfiable"], "ScheduleAnyway");
        assert_eq!(
            c["labelSelector"]["matchLabels"],
            deploy["spec"]["selector"]["matchLabels"]
        );
    }

    // A user's own constraints replace the default.
    let objs = render(
        &helm,
        &[
            "--set",
            "replicas=3",
            "--set",
            "topologySpreadConstraints[0].topologyKey=rack",
            "--set",
            "topologySpreadConstraints[0].maxSkew=2",
            "--set",
            "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
        ],
    );
    let spread = &one(&objs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().map(Vec::len), Some(1));
    assert_eq!(spread[0]["topologyKey"], "rack");
}

fn grants_any(obj: &Value, resource: &str) -> bool {
    (obj["kind"] == "Role" || obj["kind"] == "ClusterRole")
        && grants(obj).iter().any(|(_, r, _)| r == resource)
}

/// Drops the leader-election Role and RoleBinding, for the tests that audit the main RBAC.
fn without_lease_rbac(objs: Vec<Value>) -> Vec<Value> {
    objs.into_iter()
        .filter(|o| {
            !o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-leader-election"))
        })
        .collect()
}

/// The Lease is part of the release, so `helm uninstall` removes it; it is the one the operator
/// is told to use, and it carries no spec for Helm to reset under a running leader on upgrade.
#[test]
fn the_leader_election_lease_belongs_to_the_release() {
    let Some(helm) = helm_or_skip("the_leader_election_lease_belongs_to_the_release") else {
        return;
    };
    let objs = render(&helm, &[]);
    let lease = one(&objs, "Lease");
    assert_eq!(str_at(lease, "/metadata/name"), "modelarts-operator");
    assert!(
        lease.get("spec").is_none(),
        "the chart must not own the Lease's spec: {lease}"
    );
    assert!(args(&objs).contains(&"--leader-election-lease-name=modelarts-operator".to_owned()));
    let named = render(&helm, &["--set", "leaderElection.leaseName=custom"]);
    assert_eq!(str_at(one(&named, "Lease"), "/metadata/name"), "custom");
    assert!(args(&named).contains(&"--leader-election-lease-name=custom".to_owned()));
    let off = render(&helm, &["--set", "leaderElection.enabled=false"]);
    assert!(
        all_of(&off, "Lease").is_empty(),
        "no Lease without leader election"
    );
}

/// Each keyless mode renders what the operator and the official SDKs read: OIDC a projected
/// ServiceAccount token with the identity provider's audience and the SDK variables, a
/// credentials file a whole-Secret mount, metadata its flag; all allow default credentials.
#[test]
fn keyless_values_render_the_sdk_environment_and_volumes() {
    let Some(helm) = helm_or_skip("keyless_values_render_the_sdk_environment_and_volumes") else {
        return;
    };
    let objs = render(
        &helm,
        &[
            "--set",
            "keyless.oidc.enabled=true",
            "--set",
            "keyless.oidc.idpId=cce-oidc",
            "--set",
            "keyless.oidc.audience=client-123",
            "--set",
            "keyless.credentialsFile.secretName=hc-profile",
            "--set",
            "keyless.metadata.enabled=true",
        ],
    );
    let a = args(&objs);
    assert!(a.contains(&"--allow-default-credentials".to_owned()), "{a:?}");
    assert!(a.contains(&"--metadata-credentials".to_owned()), "{a:?}");
    assert_eq!(
        env(&objs, "HUAWEICLOUD_SDK_IDP_ID").expect("idp env")["value"],
        "cce-oidc"
    );
    let token_file = str_at(
        env(&objs, "HUAWEICLOUD_SDK_ID_TOKEN_FILE").expect("token env"),
        "/value",
    )
    .to_owned();
    let profile = str_at(
        env(&objs, "HUAWEICLOUD_SDK_CREDENTIALS_FILE").expect("file env"),
        "/value",
    )
    .to_owned();
    let deploy = one(&objs, "Deployment");
    let volumes = deploy["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    let projected = volumes
        .iter()
        .find(|v| v["name"] == "oidc-token")
        .expect("oidc volume");
    let sat = &projected["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(sat["audience"], "client-123");
    let mounts = container(&objs)["volumeMounts"].as_array().expect("mounts");
    let mount_of = |name: &str| {
        str_at(
            mounts.iter().find(|m| m["name"] == name).expect("mount"),
            "/mountPath",
        )
        .to_owned()
    };
    assert_eq!(
        token_file,
        format!("{}/{}", mount_of("oidc-token"), str_at(sat, "/path"))
    );
    assert_eq!(profile, format!("{}/credentials", mount_of("credentials-file")));
    let file = volumes
        .iter()
        .find(|v| v["name"] == "credentials-file")
        .expect("file volume");
    assert_eq!(file["secret"]["secretName"], "hc-profile");
    assert!(
        file["secret"].get("items").is_none(),
        "a whole-Secret mount, so rotations arrive"
    );

    let err =
        try_render(&helm, &["--set", "keyless.oidc.enabled=true"]).expect_err("OIDC without an IdP rendered");
    assert!(err.contains("keyless.oidc.idpId"), "{err}");
    let pod_identity = render(&helm, &["--set", "keyless.podIdentity.enabled=true"]);
    assert!(args(&pod_identity).contains(&"--allow-default-credentials".to_owned()));
}
