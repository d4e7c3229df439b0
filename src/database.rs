//! Which PostgreSQL to use: `DATABASE_URL` when given, otherwise a local
//! cluster that MaintAInPro initializes, starts and stops itself.

use std::path::PathBuf;

use anyhow::Context;
use maintainpro_models::cluster::{ClusterOptions, LocalCluster};
use sqlx::migrate::MigrateDatabase;

/// The database name inside a self-managed cluster.
pub const MANAGED_DB: &str = "maintainpro";

/// A database ready for migrations, and the cluster if we manage it.
pub struct Database {
    pub url: String,
    pub app_url: Option<String>,
    pub cluster: Option<LocalCluster>,
}

impl Database {
    /// Uses `url` if given; otherwise starts (initializing on first use) a
    /// persistent cluster in `data_dir/postgres`.
    pub async fn open(
        url: Option<String>,
        app_url: Option<String>,
        data_dir: PathBuf,
    ) -> anyhow::Result<Database> {
        if let Some(url) = url {
            return Ok(Database {
                url,
                app_url,
                cluster: None,
            });
        }
        let dir = data_dir.join("postgres");
        tracing::info!(data_dir = %dir.display(), "no DATABASE_URL: starting a local PostgreSQL");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let dir = std::fs::canonicalize(&data_dir)?.join("postgres");
        let cluster = LocalCluster::start(ClusterOptions {
            data_dir: dir,
            port: None,
            persistent: true,
        })
        .await
        .context("cannot start the local PostgreSQL (set DATABASE_URL to use an existing server)")?;
        let url = cluster.url(MANAGED_DB);
        if !sqlx::Postgres::database_exists(&url).await? {
            sqlx::Postgres::create_database(&url).await?;
        }
        tracing::info!(port = cluster.port(), "local PostgreSQL is up");
        Ok(Database {
            url,
            app_url,
            cluster: Some(cluster),
        })
    }

    pub async fn stop(self) {
        if let Some(c) = self.cluster {
            if let Err(e) = c.stop().await {
                tracing::warn!(error = %e, "local PostgreSQL did not stop cleanly");
            }
        }
    }
}
