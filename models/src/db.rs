//! Connection pools, migrations, and the tenant transaction: the one place
//! where a unit of work is bound to an organization.
//!
//! The runtime pool acts as the role `maintainpro_app`, which owns nothing
//! and cannot bypass row-level security: either it connects as a login role
//! given by `app_url`, or it connects with the owner's URL and switches with
//! `SET ROLE maintainpro_app` on every new connection. Every tenant query
//! then runs inside [`Db::tenant`], a transaction that sets `app.org_id`;
//! the database itself refuses to show or write another organization's rows.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::auth::Role;
use crate::error::Result;

/// A transaction bound to one organization (or none, for system lookups).
pub type Tx = Transaction<'static, Postgres>;

/// The embedded migrations (`migrations/` at the workspace root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The runtime role of every service.
pub const APP_ROLE: &str = "maintainpro_app";

/// Who acts in a tenant transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User { id: Uuid, role: Role },
    /// A background service (ingest, analytics, scheduler).
    System(&'static str),
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::System(_) => None,
        }
    }
}

/// An organization and who acts for it: the context of every tenant operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    pub org_id: Uuid,
    pub actor: Actor,
}

impl Tenant {
    pub fn system(org_id: Uuid, service: &'static str) -> Self {
        Self {
            org_id,
            actor: Actor::System(service),
        }
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// Owner connection: runs migrations; also the runtime connection
    /// (switched to `maintainpro_app`) when `app_url` is not given.
    pub url: String,
    /// Optional direct login as a non-owner role without BYPASSRLS.
    pub app_url: Option<String>,
    pub max_connections: u32,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            app_url: None,
            max_connections: 16,
        }
    }
}

/// The runtime database handle shared by every service.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Runs the embedded migrations as the owner.
    pub async fn migrate(url: &str) -> Result<()> {
        let opts: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.log_statements(tracing::log::LevelFilter::Debug))
            .await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Opens the runtime pool (as `maintainpro_app`).
    pub async fn connect(config: &DbConfig) -> Result<Db> {
        let switch_role = config.app_url.is_none();
        let url = config.app_url.as_deref().unwrap_or(&config.url);
        let opts: PgConnectOptions = url.parse()?;
        let opts = opts
            .application_name("maintainpro")
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if switch_role {
                        conn.execute("SET ROLE maintainpro_app").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Db { pool })
    }

    /// The pool, for queries that need no organization (health checks and
    /// the SECURITY DEFINER lookups).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a transaction acting for `org_id`: row-level security then
    /// shows and accepts only that organization's rows.
    pub async fn tenant(&self, org_id: Uuid) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        set_org(&mut tx, org_id).await?;
        Ok(tx)
    }

    /// Begins a transaction acting for `tenant`'s organization and recording
    /// its actor (user or service) for the audit log.
    pub async fn tenant_for(&self, tenant: &Tenant) -> Result<Tx> {
        let mut tx = self.tenant(tenant.org_id).await?;
        let (user, actor) = match tenant.actor {
            Actor::User { id, role } => (id.to_string(), format!("user:{role}")),
            Actor::System(service) => (String::new(), service.to_string()),
        };
        sqlx::query("SELECT set_config('app.user_id', $1, true), set_config('app.actor', $2, true)")
            .bind(user)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Begins a transaction acting for no organization: tenant tables look
    /// empty; only cross-organization lookup functions answer.
    pub async fn system(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Every organization's id, for background jobs that visit each in turn.
    pub async fn organization_ids(&self) -> Result<Vec<Uuid>> {
        let ids = sqlx::query_scalar::<_, Uuid>("SELECT mp_organization_ids()")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Switches the current transaction to act for `org_id`.
pub async fn set_org(tx: &mut Tx, org_id: Uuid) -> Result<()> {
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(org_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
