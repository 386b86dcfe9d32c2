#!/usr/bin/env python3
"""Pages through ListNodePoolNodes with the official Huawei Cloud Python SDK.

Usage: sdk_list_nodes.py ENDPOINT PROJECT_ID POOL NODEPOOL LIMIT
Credentials come from HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and, for temporary
credentials, HUAWEICLOUD_SDK_SECURITY_TOKEN (the names the SDKs and the operator read).

Calls ModelArtsClient.list_node_pool_nodes with `limit` and `_continue` until the
response's metadata.continue is empty, then prints one JSON line:
  {"names": [node names in order], "pages": n,
   "remaining": [metadata.remainingItemCount of each page]}
Used by tests/interop_sdk.rs against the operator's simulator; not part of the operator.
An SDK error exits non-zero with the error (status, code, message) on stderr.
"""
import json
import os
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmodelarts.v1 import ListNodePoolNodesRequest, ModelArtsClient

MAX_PAGES = 10000


def client(endpoint, project_id):
    creds = BasicCredentials(os.environ["HUAWEICLOUD_SDK_AK"], os.environ["HUAWEICLOUD_SDK_SK"], project_id)
    token = os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN")
    if token:
        creds = creds.with_security_token(token)
    config = HttpConfig.get_default_config()
    # A plain-http loopback endpoint: the builder keeps an explicit http:// scheme, and
    # no region is set, so the SDK never asks IAM for anything. TLS verification stays
    # irrelevant over http; it is turned off only so that an https simulator with a
    # self-signed certificate would work too.
    config.ignore_ssl_verification = True
    config.timeout = (5, 60)
    config.retry_times = 0
    return (
        ModelArtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(creds)
        .with_endpoint(endpoint)
        .build()
    )


def main():
    endpoint, project_id, pool, nodepool, limit = sys.argv[1:6]
    c = client(endpoint, project_id)
    names, remaining, seen = [], [], set()
    token = None
    pages = 0
    while True:
        req = ListNodePoolNodesRequest(pool_name=pool, nodepool_name=nodepool, limit=limit)
        if token:
            req._continue = token
        try:
            resp = c.list_node_pool_nodes(req)
        except SdkException as e:
            sys.stderr.write("list_node_pool_nodes failed on page %d: %s\n" % (pages + 1, e))
            sys.exit(2)
        pages += 1
        names.extend(n.metadata.name for n in (resp.items or []))
        meta = resp.metadata
        remaining.append(meta.remaining_item_count if meta else None)
        token = meta._continue if meta else None
        if not token:
            break
        if token in seen or pages >= MAX_PAGES:
            sys.stderr.write("paging did not terminate: page %d, token %r\n" % (pages, token))
            sys.exit(3)
        seen.add(token)
    json.dump({"names": names, "pages": pages, "remaining": remaining}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
