//! The webhook's own identity in the local cluster: the Namespace, ServiceAccount, ClusterRole
//! and ClusterRoleBinding of `deploy/base` (compiled in, so the harness always uses what ships),
//! and a kubeconfig with a token of that ServiceAccount from the TokenRequest API. The webhook
//! then runs with exactly the permissions `deploy/` grants, not as the admin.

use std::path::Path;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;

use crate::error::{HarnessError, Result};

const NAMESPACE_YAML: &str = include_str!("../../deploy/base/namespace.yaml");
const SERVICE_ACCOUNT_YAML: &str = include_str!("../../deploy/base/serviceaccount.yaml");
const RBAC_YAML: &str = include_str!("../../deploy/base/rbac.yaml");

/// The ServiceAccount `deploy/base` runs the webhook as: (namespace, name).
pub const WEBHOOK_SERVICE_ACCOUNT: (&str, &str) = ("sts-webhook", "sts-webhook");

/// The objects of one kind in a multi-document YAML text.
fn documents<K: DeserializeOwned>(yaml: &str, kind: &str) -> Result<Vec<K>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| HarnessError::setup("reading deploy/base YAML", e.to_string()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(kind) {
            out.push(serde_yaml::from_value(value).map_err(|e| {
                HarnessError::setup(format!("reading a {kind} of deploy/base"), e.to_string())
            })?);
        }
    }
    Ok(out)
}

async fn apply<K>(api: Api<K>, object: &K) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply("sts-e2e").force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| HarnessError::kube(format!("applying {name} from deploy/base"), e))?;
    Ok(())
}

/// Applies deploy/base's identity objects with the admin `client` and writes to `path` a
/// kubeconfig for the API server at `server` (serving certificate signed by `ca_pem`) that
/// authenticates with a 24-hour token of the webhook's ServiceAccount.
pub async fn webhook_kubeconfig(
    client: &kube::Client,
    ca_pem: &str,
    server: &str,
    path: &Path,
) -> Result<()> {
    for ns in documents::<Namespace>(NAMESPACE_YAML, "Namespace")? {
        apply(Api::all(client.clone()), &ns).await?;
    }
    let (namespace, name) = WEBHOOK_SERVICE_ACCOUNT;
    for sa in documents::<ServiceAccount>(SERVICE_ACCOUNT_YAML, "ServiceAccount")? {
        apply(Api::namespaced(client.clone(), namespace), &sa).await?;
    }
    for role in documents::<ClusterRole>(RBAC_YAML, "ClusterRole")? {
        apply(Api::all(client.clone()), &role).await?;
    }
    for binding in documents::<ClusterRoleBinding>(RBAC_YAML, "ClusterRoleBinding")? {
        apply(Api::all(client.clone()), &binding).await?;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(24 * 3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| HarnessError::kube(format!("requesting a token for {namespace}/{name}"), e))?
        .status
        .map(|s| s.token)
        .ok_or_else(|| HarnessError::setup("the TokenRequest", "no token in its status"))?;
    crate::cluster::write_kubeconfig_as(
        path,
        server,
        ca_pem,
        &format!("{namespace}-{name}"),
        &format!("token: {token}"),
        namespace,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_base_holds_the_identity_objects() {
        let roles: Vec<ClusterRole> = documents(RBAC_YAML, "ClusterRole").unwrap();
        let bindings: Vec<ClusterRoleBinding> = documents(RBAC_YAML, "ClusterRoleBinding").unwrap();
        assert_eq!(roles.len(), 1);
        assert_eq!(bindings.len(), 1);
        let subject = &bindings[0].subjects.as_ref().unwrap()[0];
        assert_eq!(
            (subject.namespace.as_deref().unwrap(), subject.name.as_str()),
            WEBHOOK_SERVICE_ACCOUNT
        );
        let sa: Vec<ServiceAccount> = documents(SERVICE_ACCOUNT_YAML, "ServiceAccount").unwrap();
        assert_eq!(
            sa[0].metadata.name.as_deref(),
            Some(WEBHOOK_SERVICE_ACCOUNT.1)
        );
    }
}
