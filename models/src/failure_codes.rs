//! Failure codes: the organization's catalog of problems (what was wrong),
//! causes (why) and remedies (what was done), ISO 14224-flavoured. Every
//! new organization starts with a default catalog (a database trigger, see
//! migrations/0011_work_order_details.sql); managers add codes and
//! deactivate the ones they no longer want. Codes are never deleted, so a
//! work order keeps the codes it was closed with.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Result};
use crate::events;

/// Which of the three lists a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// What was wrong (the symptom): VIB high vibration, LEK leakage, …
    Problem,
    /// Why it went wrong: WEA wear, MIS misalignment, …
    Cause,
    /// What was done about it: REP replace, ADJ adjust, NON no action needed, …
    Remedy,
}

impl CodeKind {
    pub const ALL: [CodeKind; 3] = [CodeKind::Problem, CodeKind::Cause, CodeKind::Remedy];

    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Problem => "problem",
            CodeKind::Cause => "cause",
            CodeKind::Remedy => "remedy",
        }
    }
}

impl fmt::Display for CodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodeKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        CodeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::invalid("kind", format!("'{s}' is not one of problem, cause, remedy")))
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureCode {
    pub id: Uuid,
    pub kind: CodeKind,
    /// Upper-case, unique per organization and kind (e.g. `VIB`).
    pub code: String,
    pub description: String,
    /// Inactive codes stay on the work orders that use them but cannot be
    /// given to a work order any more.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    code: String,
    description: String,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for FailureCode {
    type Error = ModelError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(FailureCode {
            id: r.id,
            kind: r.kind.parse()?,
            code: r.code,
            description: r.description,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, kind, code, description, active, created_at, updated_at";

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewFailureCode {
    pub kind: CodeKind,
    /// 1-16 characters of A-Z, 0-9, `_` and `-`, starting with a letter or
    /// digit; stored upper-case.
    pub code: String,
    /// 1-200 characters.
    pub description: String,
}

/// A change to a code: its description, or activating / deactivating it.
/// The code and its kind never change (work orders refer to them).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureCodePatch {
    pub description: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailureCodeFilter {
    /// problem | cause | remedy
    pub kind: Option<CodeKind>,
    /// true: only codes that may be given to work orders; false: only deactivated ones.
    pub active: Option<bool>,
}

/// Normalizes a code as typed (trimmed, upper-case) and checks its form.
pub fn normalize_code(field: &str, code: &str) -> Result<String> {
    let code = code.trim().to_uppercase();
    let mut chars = code.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && code.len() <= 16;
    if ok {
        Ok(code)
    } else {
        Err(ModelError::invalid(
            field,
            "1-16 characters of A-Z, 0-9, '_' and '-', starting with a letter or digit",
        ))
    }
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) {
    let n = description.trim().chars().count();
    if n == 0 || n > 200 {
        errors.push(FieldError::new("description", "must be 1-200 characters"));
    }
}

/// The organization's codes, by kind then code.
pub async fn list(tx: &mut Tx, filter: &FailureCodeFilter) -> Result<Vec<FailureCode>> {
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM failure_codes
         WHERE ($1::text IS NULL OR kind = $1) AND ($2::boolean IS NULL OR active = $2)
         ORDER BY CASE kind WHEN 'problem' THEN 0 WHEN 'cause' THEN 1 ELSE 2 END, code"
    ))
    .bind(filter.kind.map(CodeKind::as_str))
    .bind(filter.active)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(FailureCode::try_from)
    .collect()
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<FailureCode> {
    sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM failure_codes WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("failure code"))?
        .try_into()
}

/// Adds a code to the catalog (active).
pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewFailureCode) -> Result<FailureCode> {
    let mut errors = Vec::new();
    let code = match normalize_code("code", &new.code) {
        Ok(c) => Some(c),
        Err(ModelError::Validation(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(e) => return Err(e),
    };
    check_description(&new.description, &mut errors);
    let Some(code) = code.filter(|_| errors.is_empty()) else {
        return Err(ModelError::Validation(errors));
    };
    let fc: FailureCode = sqlx::query_as::<_, Row>(&format!(
        "INSERT INTO failure_codes (id, organization_id, kind, code, description)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(new.kind.as_str())
    .bind(&code)
    .bind(new.description.trim())
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "failure_codes_code_key", || {
            ModelError::Conflict(format!("there already is a {} code '{code}'", new.kind))
        })
    })?
    .try_into()?;
    events::emit(tx, tenant, "failure_code.created", Some(fc.id), &fc).await?;
    Ok(fc)
}

/// Changes a code's description or (de)activates it.
pub async fn update(tx: &mut Tx, tenant: &Tenant, id: Uuid, patch: FailureCodePatch) -> Result<FailureCode> {
    let mut errors = Vec::new();
    if let Some(d) = &patch.description {
        check_description(d, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let fc: FailureCode = sqlx::query_as::<_, Row>(&format!(
        "UPDATE failure_codes SET description = coalesce($2, description), active = coalesce($3, active),
                updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(patch.description.as_deref().map(str::trim))
    .bind(patch.active)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("failure code"))?
    .try_into()?;
    events::emit(tx, tenant, "failure_code.updated", Some(fc.id), &fc).await?;
    Ok(fc)
}

/// The id of the active `kind` code `code` of this organization, for a work
/// order's `field`; an unknown, inactive or other-kind code is a validation
/// error on that field.
pub(crate) async fn resolve(tx: &mut Tx, kind: CodeKind, field: &str, code: &str) -> Result<Uuid> {
    let code = normalize_code(field, code)?;
    let found: Option<(Uuid, bool)> =
        sqlx::query_as("SELECT id, active FROM failure_codes WHERE kind = $1 AND code = $2")
            .bind(kind.as_str())
            .bind(&code)
            .fetch_optional(&mut **tx)
            .await?;
    match found {
        Some((id, true)) => Ok(id),
        Some((_, false)) => Err(ModelError::invalid(
            field,
            format!("the {kind} code '{code}' is deactivated"),
        )),
        None => Err(ModelError::invalid(field, format!("no {kind} code '{code}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalized_and_checked() {
        assert_eq!(normalize_code("code", " vib ").ok().as_deref(), Some("VIB"));
        assert_eq!(normalize_code("code", "x-1_a").ok().as_deref(), Some("X-1_A"));
        for bad in ["", " ", "-AB", "A B", "ÄÖ", "ABCDEFGHIJKLMNOPQ"] {
            assert!(normalize_code("code", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_parse() {
        for k in CodeKind::ALL {
            assert_eq!(k.as_str().parse::<CodeKind>().ok(), Some(k));
        }
        assert!("symptom".parse::<CodeKind>().is_err());
    }
}
