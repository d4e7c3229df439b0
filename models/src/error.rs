//! The error type of the models crate, and the mapping of PostgreSQL errors onto it.

use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("cannot change status from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ModelError {
    /// A single-field validation error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The SQLSTATE of a database error, if this is one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Self::Database(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// True for errors worth retrying: lost connections, server shutdown,
    /// serialization failures and deadlocks.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => is_transient(e),
            _ => false,
        }
    }
}

/// True for sqlx errors worth retrying (connection loss, admin shutdown
/// 57P01, cannot-connect-now 57P03, serialization 40001, deadlock 40P01).
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57P01" | "57P02" | "57P03" | "40001" | "40P01" | "08000" | "08003" | "08006")
        ),
        _ => false,
    }
}

/// For lookups of a row a request refers to: "not found" (absent, or in
/// another organization) becomes a validation error on that field; any other
/// error, such as a lost database connection, passes through unchanged.
pub(crate) trait Referenced<T> {
    fn referenced(self, field: &str, message: &str) -> Result<T>;
}

impl<T> Referenced<T> for Result<T> {
    fn referenced(self, field: &str, message: &str) -> Result<T> {
        match self {
            Err(ModelError::NotFound(_)) => Err(ModelError::invalid(field, message)),
            other => other,
        }
    }
}

/// Maps a unique or foreign-key violation of the named constraint to a
/// friendlier error; anything else passes through.
pub(crate) fn on_constraint(
    e: sqlx::Error,
    constraint: &str,
    make: impl FnOnce() -> ModelError,
) -> ModelError {
    if let sqlx::Error::Database(db) = &e {
        if db.constraint() == Some(constraint) {
            return make();
        }
    }
    ModelError::Database(e)
}
