//! Smoke test for the loopback control plane (hack/control-plane.sh): proves that the API features the
//! operator relies on work against a real kube-apiserver with kube-rs.
//!
//! Run: `eval "$(hack/control-plane.sh up)" && MODELARTS_REQUIRE_CLUSTER=1 cargo test --test control_plane_smoke`
//! Without KUBECONFIG the test prints SKIPPED and passes (unless MODELARTS_REQUIRE_CLUSTER=1).

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::config::AuthInfo;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test]
async fn control_plane_smoke() {
    let test = "control_plane_smoke";
    let Some(config) = cluster::config_or_skip(test).await else {
        return;
    };
    let Some(admin) = cluster::client_or_skip(test).await else {
        return;
    };

    let id = cluster::unique_name("smoke");
    // A per-run API group keeps runs independent (CRDs are cluster-scoped; kinds must not clash).
    let group = format!("{id}.smoke.modelarts-operator.io");
    let crd_name = format!("widgets.{group}");

    let result = run(&admin, &config, &id, &group, &crd_name).await;

    // Cleanup runs even when a step failed. Without kube-controller-manager the namespace stays
    // Terminating (no namespace controller), which is harmless on a throwaway plane.
    let _ = Api::<Namespace>::all(admin.clone())
        .delete(&id, &DeleteParams::default())
        .await;
    let _ = Api::<CustomResourceDefinition>::all(admin.clone())
        .delete(&crd_name, &DeleteParams::default())
        .await;

    if let Err(e) = result {
        panic!("{test} failed: {e}");
    }
    eprintln!("{test}: all checks passed (namespace {id})");
}

async fn run(admin: &Client, config: &Config, ns: &str, group: &str, crd_name: &str) -> Result<(), BoxError> {
    let pp = PostParams::default();

    // 1. Namespace.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(&pp, &serde_json::from_value(json!({"metadata": {"name": ns}}))?)
        .await?;
    eprintln!("created namespace {ns}");

    // 2. CRD, applied and waited for Established.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "observedSize": {"type": "integer"}
                        }}
                    }
                }}
            }]
        }
    }))?;
    crds.patch(
        crd_name,
        &PatchParams::apply("smoke-test").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::timeout(
        TIMEOUT,
        await_condition(crds.clone(), crd_name, conditions::is_crd_established()),
    )
    .await
    .map_err(|_| format!("CRD {crd_name} not Established within {TIMEOUT:?}"))??;
    eprintln!("CRD {crd_name} is Established");

    // 3. Custom resource; SSA on /status; the change is observed through a watch.
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns, &ar);
    let mut widget = DynamicObject::new("w1", &ar).within(ns);
    widget.data = json!({"spec": {"size": 3}});
    // The CRD is Established, but discovery/storage for the new group can lag a moment; retry briefly.
    retry("create Widget", || widgets.create(&pp, &widget)).await?;

    let wc = watcher::Config::default().fields("metadata.name=w1");
    let mut stream = watcher(widgets.clone(), wc).applied_objects().boxed();
    // First event: the object as created, without status.
    let first = tokio::time::timeout(TIMEOUT, stream.try_next())
        .await
        .map_err(|_| "watch produced no initial event")??
        .ok_or("watch stream ended")?;
    if first.data.get("status").is_some_and(|s| !s.is_null()) {
        return Err(format!("new Widget unexpectedly has status: {:?}", first.data["status"]).into());
    }

    let status_patch = json!({
        "apiVersion": format!("{group}/v1"),
        "kind": "Widget",
        "status": {"phase": "Ready", "observedSize": 3}
    });
    widgets
        .patch_status(
            "w1",
            &PatchParams::apply("smoke-test").force(),
            &Patch::Apply(&status_patch),
        )
        .await?;
    let seen = tokio::time::timeout(TIMEOUT, async {
        while let Some(obj) = stream.try_next().await? {
            if obj.data["status"]["phase"] == "Ready" {
                return Ok::<_, BoxError>(obj);
            }
        }
        Err("watch stream ended before the status change".into())
    })
    .await
    .map_err(|_| "status change not observed by the watch")??;
    if seen.data["status"]["observedSize"] != 3 || seen.data["spec"]["size"] != 3 {
        return Err(format!("unexpected Widget after status apply: {:?}", seen.data).into());
    }
    drop(stream);
    eprintln!("server-side-applied Widget status observed via watch");

    // 4. events.k8s.io/v1 Event and coordination.k8s.io/v1 Lease.
    let now = k8s_openapi::jiff::Timestamp::now();
    let events: Api<Event> = Api::namespaced(admin.clone(), ns);
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": format!("w1.{}", now.as_nanosecond())},
        "eventTime": now.to_string(),
        "reportingController": "modelarts-operator.io/smoke-test",
        "reportingInstance": "smoke-test-0",
        "action": "Reconcile",
        "reason": "SmokeTest",
        "type": "Normal",
        "note": "control plane smoke test",
        "regarding": {"apiVersion": format!("{group}/v1"), "kind": "Widget", "namespace": ns, "name": "w1"}
    }))?;
    events.create(&pp, &ev).await?;
    let listed = events.list(&ListParams::default()).await?;
    if !listed
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some("SmokeTest"))
    {
        return Err("created Event not listed".into());
    }

    let leases: Api<Lease> = Api::namespaced(admin.clone(), ns);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "smoke-leader"},
        "spec": {
            "holderIdentity": "smoke-test-0",
            "leaseDurationSeconds": 15,
            "acquireTime": now.to_string(),
            "renewTime": now.to_string()
        }
    }))?;
    leases.create(&pp, &lease).await?;
    let got = leases.get("smoke-leader").await?;
    if got.spec.and_then(|s| s.holder_identity).as_deref() != Some("smoke-test-0") {
        return Err("Lease holderIdentity not stored".into());
    }
    eprintln!("created events.k8s.io/v1 Event and coordination.k8s.io/v1 Lease");

    // 5. RBAC with a TokenRequest-minted ServiceAccount token.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    sas.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "reader"}}))?,
    )
    .await?;
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "configmap-getter"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
            }))?,
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "reader-configmap-getter"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-getter"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]
            }))?,
        )
        .await?;
    Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "visible"}, "data": {"k": "v"}}))?,
        )
        .await?;

    let tr = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = sas
        .create_token_request("reader", &pp, &tr)
        .await?
        .status
        .ok_or("TokenRequest returned no status")?
        .token;
    if token.split('.').count() != 3 {
        return Err("TokenRequest did not return a JWT".into());
    }

    // Same server URL and CA as the admin kubeconfig, but authenticated only by the bearer token.
    let mut sa_config = config.clone();
    sa_config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let sa_client = Client::try_from(sa_config)?;

    // Allowed: get configmaps. The RBAC authorizer learns new bindings through an informer; retry briefly.
    let sa_cms: Api<ConfigMap> = Api::namespaced(sa_client.clone(), ns);
    let cm = retry("SA get configmap", || sa_cms.get("visible")).await?;
    if cm.data.and_then(|d| d.get("k").cloned()).as_deref() != Some("v") {
        return Err("SA read wrong ConfigMap data".into());
    }
    // Denied: list secrets (and list configmaps, since the Role grants only get).
    expect_forbidden(
        "list secrets",
        Api::<Secret>::namespaced(sa_client.clone(), ns)
            .list(&ListParams::default())
            .await,
    )?;
    expect_forbidden("list configmaps", sa_cms.list(&ListParams::default()).await)?;
    eprintln!("TokenRequest token: get configmaps allowed, list secrets/configmaps denied with 403");

    Ok(())
}

fn expect_forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) -> Result<(), BoxError> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(()),
        Err(e) => Err(format!("{what}: expected 403 Forbidden, got error {e}").into()),
        Ok(v) => Err(format!("{what}: expected 403 Forbidden, but it was allowed: {v:?}").into()),
    }
}

/// Retries `f` for up to 10 s on 403/404 (RBAC cache and CRD storage warm-up), then returns its last result.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(s))
                if (s.code == 403 || s.code == 404) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("{what}: {e}").into()),
        }
    }
}
