//! A throwaway database for a bench run, migrated, with the bench's kind.

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

pub struct Scratch {
    admin: PgPool,
    pub name: String,
    pub options: PgConnectOptions,
    pub pool: PgPool,
}

impl Scratch {
    pub async fn create(url: &str) -> anyhow::Result<Self> {
        let base = crate::db::options(url, "DATABASE_URL")?;
        let admin = crate::db::connect(base.clone(), 1, "plan-worker bench admin")
            .await
            .context("bench: cannot connect to DATABASE_URL")?;
        // The name is generated here, never user input.
        let name = format!("plan_worker_bench_{}", Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("create database {name}")))
            .execute(&admin)
            .await?;
        let options = base.database(&name);
        let pool = crate::db::connect(options.clone(), 20, "plan-worker bench").await?;
        crate::db::migrate(&pool).await?;
        sqlx::query("insert into plan_job_kinds (kind, description) values ($1, 'bench no-op')")
            .bind(super::BENCH_KIND)
            .execute(&pool)
            .await?;
        Ok(Self {
            admin,
            name,
            options,
            pool,
        })
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!(
            "drop database if exists {} with (force)",
            self.name
        )))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}

impl Scratch {
    /// Starts a worker on this database and waits until it listens.
    pub async fn start_worker(
        &self,
        registry: crate::queue::Registry,
        settings: crate::config::WorkerSettings,
    ) -> anyhow::Result<crate::queue::WorkerHandle> {
        let worker =
            crate::queue::Worker::new(self.pool.clone(), self.options.clone(), registry, settings)?
                .spawn();
        if !worker
            .wait_listening(std::time::Duration::from_secs(10))
            .await
        {
            anyhow::bail!("bench: worker {} did not start listening", worker.id);
        }
        Ok(worker)
    }
}
