//! `plan-worker token`: an HS256 user token shaped like Supabase's, for
//! trying the API locally (never for production users).

use clap::Args;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (sub claim) [default: a new random id].
    #[arg(long)]
    pub user: Option<Uuid>,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
    #[arg(long, env = "SUPABASE_JWT_SECRET", hide_env_values = true)]
    pub secret: crate::config::Secret,
    /// iss claim (SUPABASE_JWT_ISSUER, when the API checks it).
    #[arg(long, env = "SUPABASE_JWT_ISSUER")]
    pub issuer: Option<String>,
}

/// The signed token.
pub fn user_token(args: &TokenArgs) -> anyhow::Result<String> {
    Ok(crate::api::auth::user_token(
        args.secret.expose(),
        args.user.unwrap_or_else(Uuid::new_v4),
        args.ttl_seconds,
        args.issuer.as_deref(),
    )?)
}
