//! Roles, the permission matrix (the one source of truth every service
//! checks), and password hashing.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ModelError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Technician,
    Requester,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Technician, Role::Requester];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Technician => "technician",
            Role::Requester => "requester",
        }
    }

    /// Whether this role holds `permission`.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Manager => !matches!(permission, UsersManage | OrganizationManage | AuditView),
            Role::Technician => matches!(
                permission,
                WorkOrdersView
                    | WorkOrdersCreate
                    | WorkOrdersUpdate
                    | EquipmentView
                    | SensorsView
                    | ReadingsView
                    | AnomaliesView
                    | UsersView
                    | PartsView
                    | PartsIssue
            ),
            Role::Requester => matches!(permission, WorkOrdersView | WorkOrdersCreate | EquipmentView),
        }
    }

    /// Every permission this role holds, as strings (for tokens and `/me`).
    pub fn permissions(self) -> Vec<&'static str> {
        Permission::ALL
            .iter()
            .filter(|p| self.can(**p))
            .map(|p| p.as_str())
            .collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ModelError::invalid("role", format!("unknown role '{s}'")))
    }
}

/// What a role may do, named as `resource:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    WorkOrdersView,
    WorkOrdersCreate,
    WorkOrdersUpdate,
    WorkOrdersDelete,
    WorkOrdersAssign,
    EquipmentView,
    EquipmentCreate,
    EquipmentUpdate,
    EquipmentDelete,
    SensorsView,
    SensorsManage,
    DevicesManage,
    ReadingsView,
    AnomaliesView,
    UsersView,
    UsersManage,
    OrganizationManage,
    PartsView,
    PartsManage,
    PartsIssue,
    WebhooksManage,
    AuditView,
    RequestsApprove,
    PmManage,
    ReportsView,
    /// Add, describe and (de)activate the organization's failure codes.
    FailureCodesManage,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::WorkOrdersView,
        Permission::WorkOrdersCreate,
        Permission::WorkOrdersUpdate,
        Permission::WorkOrdersDelete,
        Permission::WorkOrdersAssign,
        Permission::EquipmentView,
        Permission::EquipmentCreate,
        Permission::EquipmentUpdate,
        Permission::EquipmentDelete,
        Permission::SensorsView,
        Permission::SensorsManage,
        Permission::DevicesManage,
        Permission::ReadingsView,
        Permission::AnomaliesView,
        Permission::UsersView,
        Permission::UsersManage,
        Permission::OrganizationManage,
        Permission::PartsView,
        Permission::PartsManage,
        Permission::PartsIssue,
        Permission::WebhooksManage,
        Permission::AuditView,
        Permission::RequestsApprove,
        Permission::PmManage,
        Permission::ReportsView,
        Permission::FailureCodesManage,
    ];

    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            WorkOrdersView => "work_orders:view",
            WorkOrdersCreate => "work_orders:create",
            WorkOrdersUpdate => "work_orders:update",
            WorkOrdersDelete => "work_orders:delete",
            WorkOrdersAssign => "work_orders:assign",
            EquipmentView => "equipment:view",
            EquipmentCreate => "equipment:create",
            EquipmentUpdate => "equipment:update",
            EquipmentDelete => "equipment:delete",
            SensorsView => "sensors:view",
            SensorsManage => "sensors:manage",
            DevicesManage => "devices:manage",
            ReadingsView => "readings:view",
            AnomaliesView => "anomalies:view",
            UsersView => "users:view",
            UsersManage => "users:manage",
            OrganizationManage => "organization:manage",
            PartsView => "parts:view",
            PartsManage => "parts:manage",
            PartsIssue => "parts:issue",
            WebhooksManage => "webhooks:manage",
            AuditView => "audit:view",
            RequestsApprove => "requests:approve",
            PmManage => "pm:manage",
            ReportsView => "reports:view",
            FailureCodesManage => "failure_codes:manage",
        }
    }
}

impl FromStr for Permission {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ModelError::invalid("permission", format!("unknown permission '{s}'")))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hashes a password with argon2id (blocking: call from `spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ModelError::PasswordHash(e.to_string()))
}

/// Checks a password against a stored hash (blocking).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a password policy: at least 8 characters.
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(ModelError::invalid("password", "must be at least 8 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_has_everything_requester_little() {
        for &p in Permission::ALL {
            assert!(Role::Admin.can(p));
        }
        assert!(!Role::Requester.can(Permission::WorkOrdersUpdate));
        assert!(!Role::Technician.can(Permission::EquipmentCreate));
        assert!(!Role::Manager.can(Permission::UsersManage));
        assert!(Role::Manager.can(Permission::WorkOrdersAssign));
    }

    #[test]
    fn password_roundtrip() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn role_parse() {
        assert_eq!("manager".parse::<Role>().ok(), Some(Role::Manager));
        assert!("root".parse::<Role>().is_err());
    }
}
