#!/usr/bin/env python3
"""Lists a node pool with the official Python SDK using its own keyless credential providers.

Usage: sdk_keyless.py SOURCE ENDPOINT PROJECT_ID POOL NODEPOOL
SOURCE is one of:
  pod-identity  PodIdentityCredentialProvider (HC_CONTAINER_CREDENTIALS_FULL_URI,
                HC_CONTAINER_AUTHORIZATION_TOKEN_FILE)
  oidc          EnvCredentialProvider with HUAWEICLOUD_SDK_IDP_ID/_ID_TOKEN_FILE and
                HUAWEICLOUD_SDK_IAM_ENDPOINT (FederalAccessor: id-token exchange, then securitytokens)
  metadata      MetadataCredentialProvider; its endpoint is a class constant
                (http://169.254.169.254) which the caller replaces through METADATA_ENDPOINT,
                so no request ever goes to the real metadata address.
Prints one JSON line: {"names": [...], "temporary": true if a security token was used}.
Used by tests/interop_sdk.rs against the operator's simulator.
"""
import json
import os
import sys

from huaweicloudsdkcore.auth import internal
from huaweicloudsdkcore.auth.provider import (
    EnvCredentialProvider,
    MetadataCredentialProvider,
    PodIdentityCredentialProvider,
)
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmodelarts.v1 import ListNodePoolNodesRequest, ModelArtsClient


def credentials(source, project_id):
    if source == "pod-identity":
        creds = PodIdentityCredentialProvider.get_basic().get_credentials()
    elif source == "oidc":
        creds = EnvCredentialProvider.get_basic().get_credentials()
    elif source == "metadata":
        endpoint = os.environ["METADATA_ENDPOINT"]
        if "169.254" in endpoint:
            sys.exit("refusing to use the real metadata address in a test")
        internal.MetadataAccessor._METADATA_ENDPOINT = endpoint
        creds = MetadataCredentialProvider.get_basic().get_credentials()
    else:
        sys.exit("unknown source %r" % source)
    return creds.with_project_id(project_id)


def main():
    source, endpoint, project_id, pool, nodepool = sys.argv[1:6]
    creds = credentials(source, project_id)
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.timeout = (5, 30)
    config.retry_times = 0
    client = (
        ModelArtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(creds)
        .with_endpoint(endpoint)
        .build()
    )
    try:
        resp = client.list_node_pool_nodes(ListNodePoolNodesRequest(pool_name=pool, nodepool_name=nodepool, limit=500))
    except SdkException as e:
        sys.stderr.write("list_node_pool_nodes failed: %s\n" % e)
        sys.exit(2)
    names = [n.metadata.name for n in (resp.items or [])]
    json.dump({"names": names, "temporary": bool(creds.security_token)}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
