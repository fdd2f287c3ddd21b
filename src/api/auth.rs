//! Who is calling: a Supabase user (a JWT signed with HS256 and the
//! project's secret, or ES256/RS256 with a key of the project's JWKS) or
//! the operator (ADMIN_TOKEN). Anything else is refused before a handler
//! runs, so a refused request writes nothing.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

use super::ApiState;
use super::error::ApiError;
use super::jwks::Jwks;
use crate::config::{ApiSettings, Secret};

/// The caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    User(Uuid),
    /// An operator, by name: may read and cancel any job, owns none.
    Admin(&'static str),
}

impl Caller {
    /// Whether this caller may see a job or plan of `owner`.
    pub fn may_access(self, owner: Uuid) -> bool {
        match self {
            Caller::User(id) => id == owner,
            Caller::Admin(_) => true,
        }
    }

    /// The user, for calls that act as one (creating, listing own plans).
    pub fn user(self) -> Result<Uuid, ApiError> {
        match self {
            Caller::User(id) => Ok(id),
            Caller::Admin(_) => Err(ApiError::forbidden(
                "this call acts as a user; use the user's token",
            )),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token or unsupported algorithm")]
    Malformed,
    #[error("token header lists critical extensions (crit) that are not understood")]
    CriticalExtension,
    #[error("token algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(Algorithm),
    #[error("no key with this token's kid")]
    UnknownKey,
    #[error("the signing keys could not be fetched")]
    KeysUnavailable,
    #[error("the signing keys could not be refreshed, and the cached ones are too old")]
    KeysTooOld,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token role must be authenticated")]
    WrongRole,
    #[error("token sub is not a user id")]
    BadSubject,
    #[error("anonymous users may not use this API")]
    Anonymous,
}

/// The claims checked beyond what `jsonwebtoken` validates.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    role: Option<String>,
    /// Supabase's guest sessions: a user id, but no account behind it.
    #[serde(default)]
    is_anonymous: bool,
    /// Everything else, where TIER_CLAIM is looked up.
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// The string at `path` (claim names, outermost first), if any.
    fn string_at(&self, path: &[String]) -> Option<&str> {
        let (first, inner) = path.split_first()?;
        let mut value = self.rest.get(first)?;
        for name in inner {
            value = value.get(name)?;
        }
        value.as_str()
    }
}

/// A user's caller with the job priority their tier gives
/// (PRIORITY_BY_TIER): the extractor of the calls that create jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creator {
    pub caller: Caller,
    pub priority: i32,
}

/// Verifies bearer tokens.
pub struct Auth {
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    /// Operators' names (leaked once: a handful per process, for a
    /// `Copy` caller) and tokens.
    operators: Vec<(&'static str, String)>,
    allow_anonymous: bool,
    /// PRIORITY_BY_TIER, and TIER_CLAIM split at its dots.
    tiers: Vec<(String, i32)>,
    tier_claim: Vec<String>,
}

impl Auth {
    pub fn new(s: &ApiSettings, http: reqwest::Client) -> Self {
        let non_empty = |v: Option<&str>| v.filter(|s| !s.trim().is_empty()).map(str::to_owned);
        Auth {
            secret: non_empty(s.supabase_jwt_secret.as_ref().map(Secret::expose))
                .map(|k| DecodingKey::from_secret(k.as_bytes())),
            jwks: non_empty(s.supabase_jwks_url.as_deref()).map(|url| {
                Jwks::new(
                    url,
                    http,
                    Duration::from_secs(s.jwks_cache_seconds),
                    Duration::from_secs(s.jwks_max_stale_seconds),
                )
            }),
            issuer: non_empty(s.supabase_jwt_issuer.as_deref()),
            operators: s
                .operators()
                .unwrap_or_default()
                .into_iter()
                .map(|(name, token)| (&*Box::leak(name.into_boxed_str()), token))
                .collect(),
            allow_anonymous: s.allow_anonymous_users,
            // Validated at start (ApiSettings::validate).
            tiers: s.tier_priorities().unwrap_or_default(),
            tier_claim: s
                .tier_claim
                .split('.')
                .map(|c| c.trim().to_owned())
                .collect(),
        }
    }

    /// How soon a token with an unknown `kid` may refetch the JWKS (tests
    /// of key rotation use zero).
    pub fn with_jwks_min_refetch(mut self, d: Duration) -> Self {
        if let Some(j) = &mut self.jwks {
            j.min_refetch = d;
        }
        self
    }

    /// The caller of an `Authorization` header value.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        Ok(self.verify_creator(authorization).await?.caller)
    }

    /// The caller and, for a user, the priority of their tier (0 for an
    /// operator, a tier not listed, or none).
    pub async fn verify_creator(&self, authorization: Option<&str>) -> Result<Creator, AuthError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        // Every token is compared, so the time taken says nothing of which.
        let mut operator = None;
        for (name, t) in &self.operators {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                operator = Some(*name);
            }
        }
        if let Some(name) = operator {
            return Ok(Creator {
                caller: Caller::Admin(name),
                priority: 0,
            });
        }
        // An `alg` this crate does not know (such as "none") fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        // jsonwebtoken reads `crit` but does not act on it. We understand
        // no extension, so any listed one must fail (RFC 7515 4.1.11), and
        // an empty list is malformed in itself.
        if header.crit.is_some() {
            return Err(AuthError::CriticalExtension);
        }
        let key = match header.alg {
            Algorithm::HS256 => self
                .secret
                .clone()
                .ok_or(AuthError::AlgorithmNotAllowed(header.alg))?,
            Algorithm::ES256 | Algorithm::RS256 => {
                let jwks = self
                    .jwks
                    .as_ref()
                    .ok_or(AuthError::AlgorithmNotAllowed(header.alg))?;
                let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
                jwks.key(kid, header.alg).await?
            }
            other => return Err(AuthError::AlgorithmNotAllowed(other)),
        };
        let mut v = Validation::new(header.alg);
        v.leeway = 30;
        v.validate_nbf = true;
        v.set_audience(&["authenticated"]);
        let mut required = vec!["exp", "sub", "aud"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| AuthError::Invalid(describe(&e)))?;
        if data.claims.role.as_deref() != Some("authenticated") {
            return Err(AuthError::WrongRole);
        }
        let user = Uuid::parse_str(&data.claims.sub).map_err(|_| AuthError::BadSubject)?;
        if data.claims.is_anonymous && !self.allow_anonymous {
            return Err(AuthError::Anonymous);
        }
        let tier = data.claims.string_at(&self.tier_claim);
        let priority = tier
            .and_then(|tier| self.tiers.iter().find(|(t, _)| t == tier))
            .map_or(0, |(_, p)| *p);
        Ok(Creator {
            caller: Caller::User(user),
            priority,
        })
    }
}

/// An HS256 user token shaped like Supabase's, signed with `secret`: for
/// trying the API (`plan-worker token`) and for `plan-worker smoke`'s
/// throwaway user, never for real users.
pub fn user_token(
    secret: &str,
    user: Uuid,
    ttl_seconds: u64,
    issuer: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = serde_json::json!({
        "sub": user,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + ttl_seconds,
        "session_id": Uuid::new_v4(),
        "is_anonymous": false,
    });
    if let Some(iss) = issuer {
        claims["iss"] = serde_json::json!(iss);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet (nbf)".into(),
        K::InvalidSignature => "bad signature".into(),
        K::InvalidAudience => "audience must contain authenticated".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        K::InvalidAlgorithm => "algorithm does not match the key".into(),
        _ => "malformed".into(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        Ok(Creator::from_request_parts(parts, state).await?.caller)
    }
}

impl FromRequestParts<ApiState> for Creator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.auth.verify_creator(header).await.map_err(|e| {
            crate::telemetry::metrics::api_auth_failure(auth_failure_reason(&e));
            match e {
                AuthError::KeysUnavailable => ApiError::internal(e),
                AuthError::KeysTooOld => {
                    tracing::error!(error = %e, "refusing tokens: JWKS_MAX_STALE_SECONDS passed");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        "Sign-in keys could not be refreshed for too long, and the cached ones \
                         are too old to trust. Please try again later.",
                    )
                }
                // Authenticated, but not allowed: 403, so the app can ask
                // the guest to sign up rather than sign in again.
                AuthError::Anonymous => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "ANONYMOUS_USER",
                    "Please create an account or sign in to use this.",
                ),
                other => ApiError::unauthorized(other.to_string()),
            }
        })
    }
}

fn auth_failure_reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::Missing => "missing",
        AuthError::Malformed => "malformed",
        AuthError::CriticalExtension => "critical_extension",
        AuthError::AlgorithmNotAllowed(_) => "algorithm",
        AuthError::UnknownKey => "unknown_key",
        AuthError::KeysUnavailable => "keys_unavailable",
        AuthError::KeysTooOld => "keys_too_old",
        AuthError::Invalid(_) => "invalid",
        AuthError::WrongRole => "role",
        AuthError::BadSubject => "subject",
        AuthError::Anonymous => "anonymous",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "test-secret-with-enough-length-000";

    fn auth() -> Auth {
        Auth::new(
            &ApiSettings {
                supabase_jwt_secret: Some(SECRET.into()),
                supabase_jwt_issuer: Some("https://ref.supabase.co/auth/v1".into()),
                admin_token: Some("operator-token-0123456789".into()),
                ..ApiSettings::default()
            },
            reqwest::Client::new(),
        )
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn claims(user: Uuid) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "sub": user.to_string(), "role": "authenticated", "aud": "authenticated",
            "iss": "https://ref.supabase.co/auth/v1", "exp": now + 600, "iat": now,
        })
    }

    async fn verify(a: &Auth, t: &str) -> Result<Caller, AuthError> {
        a.verify(Some(&format!("Bearer {t}"))).await
    }

    #[tokio::test]
    async fn a_good_token_names_its_user_and_each_bad_claim_is_refused() {
        let a = auth();
        let user = Uuid::new_v4();
        assert_eq!(
            verify(&a, &token(claims(user))).await,
            Ok(Caller::User(user))
        );

        let mut c = claims(user);
        c["aud"] = json!(["other", "authenticated"]);
        assert_eq!(verify(&a, &token(c)).await, Ok(Caller::User(user)));

        let cases: [(&str, serde_json::Value); 6] = [
            ("aud", json!("anon")),
            ("role", json!("anon")),
            ("sub", json!("not-a-uuid")),
            ("iss", json!("https://evil.example/auth/v1")),
            ("exp", json!(jsonwebtoken::get_current_timestamp() - 3600)),
            ("nbf", json!(jsonwebtoken::get_current_timestamp() + 3600)),
        ];
        for (claim, value) in cases {
            let mut c = claims(user);
            c[claim] = value;
            assert!(verify(&a, &token(c)).await.is_err(), "{claim} accepted");
        }
        let mut c = claims(user);
        c.as_object_mut().unwrap().remove("exp");
        assert!(verify(&a, &token(c)).await.is_err(), "no exp accepted");
    }

    #[tokio::test]
    async fn missing_tokens_none_and_unconfigured_algorithms_are_refused() {
        let a = auth();
        assert_eq!(a.verify(None).await, Err(AuthError::Missing));
        assert_eq!(a.verify(Some("Basic abc")).await, Err(AuthError::Missing));
        // {"alg":"none","typ":"JWT"} with a valid body and no signature.
        let body = token(claims(Uuid::new_v4()));
        let payload = body.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(verify(&a, &none).await, Err(AuthError::Malformed));
        // HS384 is a valid JWT algorithm, but not one Supabase signs with.
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(Uuid::new_v4()),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verify(&a, &hs384).await,
            Err(AuthError::AlgorithmNotAllowed(Algorithm::HS384))
        );
        // ES256 without a JWKS configured.
        let es = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln";
        assert_eq!(
            verify(&a, es).await,
            Err(AuthError::AlgorithmNotAllowed(Algorithm::ES256))
        );
    }

    #[tokio::test]
    async fn a_token_naming_any_critical_header_extension_is_refused() {
        let a = auth();
        let user = Uuid::new_v4();
        // None of these is understood here, so each must fail (RFC 7515
        // section 4.1.11); the empty list is malformed in itself.
        for crit in [
            vec!["b64"],
            vec!["exp"],
            vec!["http://example.com/x"],
            vec![],
        ] {
            let mut header = Header::new(Algorithm::HS256);
            header.crit = Some(crit.iter().map(|c| c.to_string()).collect());
            let t = jsonwebtoken::encode(
                &header,
                &claims(user),
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap();
            let refused = verify(&a, &t).await.expect_err("crit accepted");
            assert!(refused.to_string().contains("crit"), "{crit:?}: {refused}");
        }
        assert_eq!(
            verify(&a, &token(claims(user))).await,
            Ok(Caller::User(user))
        );
    }

    #[tokio::test]
    async fn the_operator_token_is_the_admin_and_a_near_miss_is_not() {
        let a = auth();
        assert_eq!(
            verify(&a, "operator-token-0123456789").await,
            Ok(Caller::Admin("admin"))
        );
        assert_eq!(
            verify(&a, "operator-token-0123456788").await,
            Err(AuthError::Malformed)
        );
        assert!(Caller::Admin("admin").may_access(Uuid::new_v4()));
        assert!(Caller::Admin("admin").user().is_err());
    }
}
