#!/usr/bin/env python3
"""Signs request cases with the official Huawei Cloud Python SDK signer.

Reads a JSON list of cases on stdin and writes a JSON list of results on stdout,
one per case, in order. Used by tests/interop_sdk.rs; not part of the operator.

A case:
  {"name": str, "ak": str, "sk": str, "security_token": str | null,
   "project_id": str, "host": str, "method": str,
   "path": str,                      # the path as sent (segments already percent-encoded)
   "query": [[key, value], ...],     # raw, unescaped pairs
   "sdk_date": "YYYYMMDDTHHMMSSZ"}

The request goes through the SDK's own credential path, exactly as
ModelArtsClient requests do: BasicCredentials.sign_request adds X-Project-Id
and (for temporary credentials) X-Security-Token, then the default Signer adds
Host, signs every header present and rewrites the URI with its canonical query.
The only header the case presets is X-Sdk-Date (fixed, so the result is
deterministic), so the signed set is host;x-project-id;x-sdk-date[;x-security-token]:
the same set the operator signs.

A result:
  {"name": str, "authorization": str, "uri": str,   # the path?query the SDK sends
   "canonical_request": str, "signed_headers": str, "sent_headers": {name: value}}
"""
import json
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def new_request(case):
    return SdkRequest(
        method=case["method"],
        schema="https",
        host=case["host"],
        resource_path=case["path"],
        query_params=[(k, v) for k, v in case["query"]],
        header_params={"X-Sdk-Date": case["sdk_date"]},
        body=None,
    )


def credentials(case):
    creds = BasicCredentials(case["ak"], case["sk"], case["project_id"])
    if case.get("security_token") is not None:
        creds = creds.with_security_token(case["security_token"])
    return creds


def sign(case):
    creds = credentials(case)
    signed = creds.sign_request(new_request(case))

    # The canonical request, for readable diffs: the same private steps Signer.sign
    # runs, on a fresh request prepared with the same headers the credential adds.
    probe = new_request(case)
    probe.header_params["X-Project-Id"] = case["project_id"]
    if case.get("security_token") is not None:
        probe.header_params["X-Security-Token"] = case["security_token"]
    signer = Signer(creds)
    Signer._process_header_host(probe)
    names = Signer._process_signed_headers(probe)
    canonical = signer._process_canonical_request(probe, names)

    return {
        "name": case["name"],
        "authorization": signed.header_params["Authorization"],
        "uri": signed.uri,
        "canonical_request": canonical,
        "signed_headers": ";".join(names),
        "sent_headers": dict(signed.header_params),
    }


def main():
    cases = json.load(sys.stdin)
    json.dump([sign(c) for c in cases], sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
