//! `plan-worker purge`: the retention pass of the maintenance tick, run by
//! hand until nothing due is left (or, `--dry-run`, only counted).

use std::time::Duration;

use anyhow::bail;

use super::PurgeArgs;
use crate::config::DbSettings;
use crate::db::pool;
use crate::queue::store::{self, Purged};

pub async fn execute(db: &DbSettings, args: PurgeArgs) -> anyhow::Result<()> {
    let days = match args.older_than_days {
        Some(d) => d,
        // JOB_RETENTION_DAYS=0 means "keep jobs": never read it as "delete
        // every finished job".
        None if args.job_retention_days > 0.0 => args.job_retention_days,
        None => bail!(
            "older_than_days: JOB_RETENTION_DAYS is 0 (jobs are kept); \
             give --older-than-days to purge anyway"
        ),
    };
    if !days.is_finite() || days < 0.0 {
        bail!("older_than_days: must be 0 or more, got {days}");
    }
    if !(1..=100_000).contains(&args.limit) {
        bail!("limit: must be from 1 to 100000, got {}", args.limit);
    }
    let older_than = Duration::from_secs_f64(days * 86_400.0);
    let pool = pool(db, 2).await?;
    if args.dry_run {
        let p = store::purge(&pool, older_than, 0, true).await?;
        print_counts("would delete", &p);
        return Ok(());
    }
    let mut total = Purged {
        skipped: false,
        jobs: 0,
        attempts: 0,
        idempotency_keys: 0,
        outbox: 0,
    };
    // A batch per transaction, as the tick does, so that no lock is held
    // long; done when a batch finds nothing.
    loop {
        let p = store::purge(&pool, older_than, args.limit, false).await?;
        if p.skipped {
            total.skipped = true;
            break;
        }
        total.jobs += p.jobs;
        total.attempts += p.attempts;
        total.idempotency_keys += p.idempotency_keys;
        total.outbox += p.outbox;
        if p.jobs == 0 {
            break;
        }
    }
    print_counts("deleted", &total);
    if total.skipped {
        println!(
            "skipped: another worker is purging now (it holds the retention lock); \
             what is left goes on its passes, or run this again"
        );
    }
    Ok(())
}

fn print_counts(what: &str, p: &Purged) {
    println!("{what}:");
    println!("  jobs              {}", p.jobs);
    println!("  attempts          {}", p.attempts);
    println!("  idempotency_keys  {}", p.idempotency_keys);
    println!("  outbox            {}", p.outbox);
}
