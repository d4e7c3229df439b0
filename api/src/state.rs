//! The state every handler shares: the database, the configuration and the token keys.

use std::fmt;
use std::sync::Arc;

use maintainpro_models::{Db, Tx};

use crate::access::AccessTable;
use crate::auth::{AuthUser, JwtKeys};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<ApiConfig>,
    pub jwt: Arc<JwtKeys>,
    /// Who may call which operation (see [`crate::access`]).
    pub access: &'static AccessTable,
    /// HTTP counters and the sources `/metrics` renders (see [`crate::metrics`]).
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(db: Db, config: ApiConfig) -> Self {
        let jwt = Arc::new(JwtKeys::new(&config));
        let metrics = Arc::new(Metrics::new(config.metrics_sources.clone()));
        Self {
            db,
            config: Arc::new(config),
            jwt,
            access: AccessTable::api(),
            metrics,
        }
    }

    /// Begins a transaction acting for the caller's organization (row-level
    /// security hides every other organization's rows).
    pub async fn tenant_tx(&self, auth: &AuthUser) -> Result<Tx, ApiError> {
        Ok(self.db.tenant_for(&auth.tenant).await?)
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
