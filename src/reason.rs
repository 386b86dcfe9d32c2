//! Condition reasons of failed syncs: one table from the ModelArts/APIG `error_code` to a
//! CamelCase reason, the HTTP status as the fallback, and the reasons of failures that
//! never reached ModelArts.
//!
//! Reasons are decided by codes, never by the wording of a message: gateways and
//! ModelArts reword messages, and a message mentioning "pool" says nothing about cause.

use crate::error::{CertificateProblem, CredentialsProblem, Error};

/// The credentials are wrong, expired or locked (APIG 401, ModelArts 0201–0206).
pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
/// Authenticated, but a policy or region setting denies the call.
pub const FORBIDDEN: &str = "Forbidden";
/// The credentials or token are for another project or region than `spec.projectId`.
pub const PROJECT_MISMATCH: &str = "ProjectMismatch";
/// ModelArts does not know the pool or node pool.
pub const NODE_POOL_NOT_FOUND: &str = "NodePoolNotFound";
/// The API gateway has no such API: wrong host, region or path.
pub const ENDPOINT_NOT_FOUND: &str = "EndpointNotFound";
/// ModelArts refused the request as malformed (e.g. an invalid node pool name).
pub const BAD_REQUEST: &str = "BadRequest";
/// Too many requests (APIGW.0308, HTTP 429).
pub const THROTTLED: &str = "Throttled";
/// ModelArts or its gateway failed, timed out, or could not be reached.
pub const MODELARTS_UNAVAILABLE: &str = "ModelArtsUnavailable";
/// An HTTP status no ModelArts API is documented to send.
pub const UNEXPECTED_RESPONSE: &str = "UnexpectedResponse";
/// The endpoint's certificate is not issued by a trusted CA (`--modelarts-ca-file`).
pub const CERTIFICATE_UNTRUSTED: &str = "CertificateUntrusted";
/// The endpoint's certificate has expired (or is not valid yet).
pub const CERTIFICATE_EXPIRED: &str = "CertificateExpired";
/// The endpoint's certificate does not name the endpoint's host.
pub const CERTIFICATE_HOST_MISMATCH: &str = "CertificateHostMismatch";
/// The endpoint's certificate was refused for another reason (revoked, malformed, ...).
pub const CERTIFICATE_INVALID: &str = "CertificateInvalid";
/// A 2xx answer that is not a usable node list, or a paging protocol violation.
pub const INVALID_RESPONSE: &str = "InvalidResponse";
/// The resource names no usable credentials (no Secret, no key, no default allowed).
pub const CREDENTIALS_NOT_FOUND: &str = "CredentialsNotFound";
/// The credentials exist but cannot be used (empty, not UTF-8, conflicting).
pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
/// The operator may not read the Secret the resource names.
pub const CREDENTIALS_FORBIDDEN: &str = "CredentialsForbidden";
/// No keyless credential source gave credentials (the message lists each source and why).
pub const CREDENTIAL_EXCHANGE_FAILED: &str = "CredentialExchangeFailed";
/// The spec cannot be used as it stands (endpoint, region).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The Kubernetes API failed while reading what the sync needs.
pub const KUBERNETES_ERROR: &str = "KubernetesError";
/// A local failure of the operator itself.
pub const INTERNAL_ERROR: &str = "InternalError";

/// `error_code` → reason, from the code tables in the ModelArts and APIG references.
const BY_CODE: &[(&str, &str)] = &[
    ("APIGW.0301", AUTHENTICATION_FAILED),
    ("APIGW.0305", AUTHENTICATION_FAILED),
    ("APIGW.0307", AUTHENTICATION_FAILED),
    ("ModelArts.0201", AUTHENTICATION_FAILED),
    ("ModelArts.0202", AUTHENTICATION_FAILED),
    ("ModelArts.0203", AUTHENTICATION_FAILED),
    ("ModelArts.0204", AUTHENTICATION_FAILED),
    ("ModelArts.0206", AUTHENTICATION_FAILED),
    ("ModelArts.0207", PROJECT_MISMATCH),
    ("ModelArts.0210", PROJECT_MISMATCH),
    ("ModelArts.0212", PROJECT_MISMATCH),
    ("ModelArts.0108", FORBIDDEN),
    ("ModelArts.0112", FORBIDDEN),
    ("APIGW.0302", FORBIDDEN),
    ("APIGW.0306", FORBIDDEN),
    ("APIGW.0310", FORBIDDEN),
    ("APIGW.0801", FORBIDDEN),
    ("APIGW.0802", FORBIDDEN),
    ("ModelArts.50015001", NODE_POOL_NOT_FOUND),
    ("APIGW.0101", ENDPOINT_NOT_FOUND),
    ("ModelArts.50004000", BAD_REQUEST),
    ("ModelArts.50004100", BAD_REQUEST),
    ("APIGW.0308", THROTTLED),
    ("ModelArts.0010", MODELARTS_UNAVAILABLE),
    ("APIGW.0201", MODELARTS_UNAVAILABLE),
    ("APIGW.0601", MODELARTS_UNAVAILABLE),
    ("APIGW.0613", MODELARTS_UNAVAILABLE),
];

/// The reason for an error answer: its code when the table knows it, else its status.
pub fn for_answer(status: u16, code: Option<&str>) -> &'static str {
    if let Some(code) = code
        && let Some((_, reason)) = BY_CODE.iter().find(|(c, _)| *c == code)
    {
        return reason;
    }
    match status {
        401 => AUTHENTICATION_FAILED,
        403 => FORBIDDEN,
        404 => NODE_POOL_NOT_FOUND,
        400 | 422 => BAD_REQUEST,
        429 => THROTTLED,
        500..=599 => MODELARTS_UNAVAILABLE,
        _ => UNEXPECTED_RESPONSE,
    }
}

/// The `Synced` condition reason for a failed sync.
pub fn for_error(err: &Error) -> &'static str {
    match err {
        Error::Credentials { problem, .. } => match problem {
            CredentialsProblem::Missing => CREDENTIALS_NOT_FOUND,
            CredentialsProblem::Invalid => CREDENTIALS_INVALID,
            CredentialsProblem::Forbidden => CREDENTIALS_FORBIDDEN,
            CredentialsProblem::ExchangeFailed => CREDENTIAL_EXCHANGE_FAILED,
        },
        Error::InvalidInput { .. } => INVALID_SPEC,
        Error::Api(e) => for_answer(e.status, e.code.as_deref()),
        Error::Transport { .. } => MODELARTS_UNAVAILABLE,
        Error::Certificate { problem, .. } => match problem {
            CertificateProblem::Untrusted => CERTIFICATE_UNTRUSTED,
            CertificateProblem::Expired => CERTIFICATE_EXPIRED,
            CertificateProblem::HostMismatch => CERTIFICATE_HOST_MISMATCH,
            CertificateProblem::Invalid => CERTIFICATE_INVALID,
        },
        Error::InvalidResponse(_) => INVALID_RESPONSE,
        Error::Kube(_) | Error::StatusWrite { .. } | Error::Lease(_) => KUBERNETES_ERROR,
        Error::Io { .. } => INTERNAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    /// Every documented (status, code) pair with the reason a user should see; literal
    /// strings, so a changed constant cannot make the table agree with itself.
    #[test]
    fn documented_codes_row_by_row() {
        let rows: &[(u16, &str, &str)] = &[
            (401, "APIGW.0301", "AuthenticationFailed"),
            (401, "APIGW.0305", "AuthenticationFailed"),
            (401, "APIGW.0307", "AuthenticationFailed"),
            (401, "ModelArts.0201", "AuthenticationFailed"),
            (401, "ModelArts.0202", "AuthenticationFailed"),
            (401, "ModelArts.0203", "AuthenticationFailed"),
            (401, "ModelArts.0204", "AuthenticationFailed"),
            (401, "ModelArts.0207", "ProjectMismatch"),
            (401, "ModelArts.0212", "ProjectMismatch"),
            (403, "ModelArts.0108", "Forbidden"),
            (403, "ModelArts.0112", "Forbidden"),
            (403, "ModelArts.0203", "AuthenticationFailed"),
            (403, "ModelArts.0206", "AuthenticationFailed"),
            (403, "ModelArts.0210", "ProjectMismatch"),
            (403, "APIGW.0302", "Forbidden"),
            (403, "APIGW.0306", "Forbidden"),
            (403, "APIGW.0310", "Forbidden"),
            (403, "APIGW.0801", "Forbidden"),
            (403, "APIGW.0802", "Forbidden"),
            (404, "ModelArts.50015001", "NodePoolNotFound"),
            (404, "APIGW.0101", "EndpointNotFound"),
            (400, "ModelArts.50004000", "BadRequest"),
            (400, "ModelArts.50004100", "BadRequest"),
            (429, "APIGW.0308", "Throttled"),
            (500, "ModelArts.0010", "ModelArtsUnavailable"),
            (502, "APIGW.0201", "ModelArtsUnavailable"),
            (504, "APIGW.0201", "ModelArtsUnavailable"),
            (500, "APIGW.0601", "ModelArtsUnavailable"),
            (503, "APIGW.0613", "ModelArtsUnavailable"),
        ];
        for (status, code, want) in rows {
            assert_eq!(for_answer(*status, Some(code)), *want, "{status} {code}");
        }
        assert_eq!(rows.len(), BY_CODE.len() + 2, "every table row is tested");
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status() {
        for (status, want) in [
            (401, "AuthenticationFailed"),
            (403, "Forbidden"),
            (404, "NodePoolNotFound"),
            (400, "BadRequest"),
            (422, "BadRequest"),
            (429, "Throttled"),
            (500, "ModelArtsUnavailable"),
            (503, "ModelArtsUnavailable"),
            (405, "UnexpectedResponse"),
            (302, "UnexpectedResponse"),
        ] {
            assert_eq!(for_answer(status, None), want, "{status}");
            assert_eq!(for_answer(status, Some("ModelArts.9999")), want, "{status}");
        }
    }

    #[test]
    fn a_message_never_decides_the_reason() {
        let err = Error::Api(ApiError {
            status: 400,
            code: Some("ModelArts.50004000".into()),
            message: Some("Bad request. invalid nodepool name".into()),
            request_id: None,
            retry_after: None,
        });
        assert_eq!(for_error(&err), "BadRequest");
    }

    #[test]
    fn failures_before_modelarts() {
        assert_eq!(for_error(&Error::credentials_missing("x")), "CredentialsNotFound");
        assert_eq!(for_error(&Error::credentials_invalid("x")), "CredentialsInvalid");
        let forbidden = Error::Credentials {
            problem: CredentialsProblem::Forbidden,
            message: "x".into(),
        };
        assert_eq!(for_error(&forbidden), "CredentialsForbidden");
        assert_eq!(
            for_error(&Error::invalid("spec.endpoint", "x", "y")),
            "InvalidSpec"
        );
        assert_eq!(for_error(&Error::InvalidResponse("x".into())), "InvalidResponse");
        let transport = Error::Transport {
            endpoint: "https://x".into(),
            reason: "timed out after 30s".into(),
        };
        assert_eq!(for_error(&transport), "ModelArtsUnavailable");
        for (problem, want) in [
            (CertificateProblem::Untrusted, "CertificateUntrusted"),
            (CertificateProblem::Expired, "CertificateExpired"),
            (CertificateProblem::HostMismatch, "CertificateHostMismatch"),
            (CertificateProblem::Invalid, "CertificateInvalid"),
        ] {
            let err = Error::Certificate {
                endpoint: "https://x".into(),
                problem,
                detail: "d".into(),
            };
            assert_eq!(for_error(&err), want);
        }
    }
}
