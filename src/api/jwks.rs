//! The Supabase project's JWKS: the keys that sign ES256/RS256 tokens.
//! Cached for the TTL and fetched again sooner, when a token names a `kid`
//! the cache lacks (keys rotate), but never more often than the throttle
//! allows, counting failed fetches too: unknown kids must not turn into
//! outbound traffic, least of all while the endpoint fails. One fetch runs
//! at a time and the requests that waited for it take its result. While
//! fetches fail, the cached keys stay trusted up to a maximum age.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::auth::AuthError;

/// Unknown kids may not make us fetch more often than this.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Jwks {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    pub(super) min_refetch: Duration,
    /// Keys fetched longer ago than this are refused, whatever the TTL.
    max_stale: Duration,
    cache: RwLock<KeyCache>,
    /// Held by the one fetch in flight.
    fetch: Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    /// The last successful fetch.
    fetched: Option<Instant>,
    /// The last fetch, failed or not: the throttle counts from here.
    attempted: Option<Instant>,
    /// Fetches so far, so a request that waited knows one ran meanwhile.
    attempts: u64,
    /// Whether the last fetch failed.
    failing: bool,
}

impl KeyCache {
    fn age(&self) -> Option<Duration> {
        self.fetched.map(|t| t.elapsed())
    }

    /// The key for `kid`, checked against the token's algorithm.
    fn get(&self, kid: &str, alg: Algorithm) -> Option<Result<DecodingKey, AuthError>> {
        let (key_alg, key) = self.keys.get(kid)?;
        Some(if *key_alg == alg {
            Ok(key.clone())
        } else {
            Err(AuthError::Invalid(
                "algorithm does not match the key".into(),
            ))
        })
    }
}

impl Jwks {
    pub fn new(url: String, http: reqwest::Client, ttl: Duration, max_stale: Duration) -> Self {
        Jwks {
            url,
            http,
            ttl,
            min_refetch: MIN_REFETCH,
            max_stale,
            cache: RwLock::new(KeyCache::default()),
            fetch: Mutex::new(()),
        }
    }

    /// The key a token with `kid` and `alg` must be signed with.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let seen = {
            let cache = self.cache.read().await;
            if cache
                .age()
                .is_some_and(|a| a < self.ttl.min(self.max_stale))
                && let Some(hit) = cache.get(kid, alg)
            {
                return hit;
            }
            cache.attempts
        };
        let _one = match self.fetch.try_lock() {
            Ok(one) => one,
            Err(_) => {
                // A fetch is in flight: a key it may replace, but that is
                // still within its age, need not wait for it.
                if let Ok(key) = self.answer(kid, alg).await {
                    return Ok(key);
                }
                self.fetch.lock().await
            }
        };
        let due = {
            let cache = self.cache.read().await;
            // A fetch that ran while this request waited is its answer.
            cache.attempts == seen
                && cache
                    .attempted
                    .is_none_or(|t| t.elapsed() >= self.min_refetch)
        };
        if due {
            self.refresh().await;
        }
        self.answer(kid, alg).await
    }

    /// What the cache says of `kid` now.
    async fn answer(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let cache = self.cache.read().await;
        match cache.age() {
            Some(age) if age >= self.max_stale => Err(AuthError::KeysTooOld),
            Some(_) => cache.get(kid, alg).unwrap_or(Err(if cache.failing {
                // The kid may be new: the fetch that would know failed.
                AuthError::KeysUnavailable
            } else {
                AuthError::UnknownKey
            })),
            // Never fetched: the first fetch failed or is still running.
            None => Err(AuthError::KeysUnavailable),
        }
    }

    async fn refresh(&self) {
        let fetched = self.fetch_keys().await;
        let mut cache = self.cache.write().await;
        let now = Instant::now();
        cache.attempts += 1;
        cache.attempted = Some(now);
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = Some(now);
                cache.failing = false;
            }
            Err(err) => {
                cache.failing = true;
                tracing::warn!(
                    url = %self.url,
                    error = %err,
                    retry_in_seconds = self.min_refetch.as_secs_f64(),
                    "JWKS fetch failed"
                );
            }
        }
    }

    async fn fetch_keys(&self) -> anyhow::Result<HashMap<String, (Algorithm, DecodingKey)>> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), key_algorithm(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (alg, key));
            }
        }
        Ok(keys)
    }
}

/// The algorithm a JWK is for: its `alg`, else what its key type implies.
fn key_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    match jwk.common.key_algorithm {
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(_) => None,
        None => match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Some(Algorithm::ES256)
            }
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            _ => None,
        },
    }
}
