//! Work-order attachments: what files are accepted (type sniffed from the
//! bytes, size and count limits, a safe filename) and their storage.
//!
//! A file's type is decided by its first bytes, never by the name or the
//! client's `Content-Type`: PNG, JPEG, GIF, WebP, PDF, and UTF-8 text (plain
//! or CSV) that does not start like markup. The stored filename always ends
//! in an extension of that type, so a downloaded file cannot open as
//! something else (an "image" saved as `page.html`). Metadata and bytes are
//! stored in two tables (`attachments`, `attachment_blobs`); listing never
//! reads the bytes, and only the metadata row is audited.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Permission;
use crate::db::{Actor, Tenant, Tx};
use crate::error::{ModelError, Result};
use crate::{events, work_orders};

/// Longest stored filename, in characters.
pub const MAX_FILENAME_CHARS: usize = 200;
/// Default largest file: 10 MiB.
pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Default most attachments on one work order.
pub const DEFAULT_MAX_PER_WORK_ORDER: u32 = 50;

/// The kinds of file accepted, recognized by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    /// UTF-8 text without NUL bytes that does not start with `<`.
    Text,
    /// Text (as above) whose name ends in `.csv`.
    Csv,
}

impl FileType {
    pub const ALL: [FileType; 7] = [
        FileType::Png,
        FileType::Jpeg,
        FileType::Gif,
        FileType::Webp,
        FileType::Pdf,
        FileType::Text,
        FileType::Csv,
    ];

    /// The `Content-Type` the file is stored and served with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Gif => "image/gif",
            FileType::Webp => "image/webp",
            FileType::Pdf => "application/pdf",
            FileType::Text => "text/plain; charset=utf-8",
            FileType::Csv => "text/csv; charset=utf-8",
        }
    }

    /// Filename extensions (lower case) that fit the type; the first is
    /// appended to names that carry none of them.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileType::Png => &["png"],
            FileType::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            FileType::Gif => &["gif"],
            FileType::Webp => &["webp"],
            FileType::Pdf => &["pdf"],
            FileType::Text => &["txt", "text", "log", "md", "tsv"],
            FileType::Csv => &["csv"],
        }
    }

    /// A name for people, as in "allowed: PNG, JPEG, …".
    pub fn label(self) -> &'static str {
        match self {
            FileType::Png => "PNG",
            FileType::Jpeg => "JPEG",
            FileType::Gif => "GIF",
            FileType::Webp => "WebP",
            FileType::Pdf => "PDF",
            FileType::Text => "plain text",
            FileType::Csv => "CSV",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What uploads are accepted (the API's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest file in bytes (default 10 MiB).
    pub max_bytes: usize,
    /// Accepted types (default all of [`FileType::ALL`]).
    pub allowed: Vec<FileType>,
    /// Most attachments on one work order (default 50).
    pub max_per_work_order: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            allowed: FileType::ALL.to_vec(),
            max_per_work_order: DEFAULT_MAX_PER_WORK_ORDER,
        }
    }
}

impl Limits {
    /// Whether the limits can accept any file at all.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.max_bytes == 0 {
            return Err("attachment max_bytes must be positive".into());
        }
        if self.allowed.is_empty() {
            return Err("attachment allowed types must not be empty".into());
        }
        if self.max_per_work_order == 0 {
            return Err("attachment max_per_work_order must be positive".into());
        }
        Ok(())
    }
}

/// Why an uploaded file was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the file is empty")]
    Empty,
    #[error("the file exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported file type (recognized from its content); allowed: {}", labels(.allowed))]
    Unsupported { allowed: Vec<FileType> },
}

fn labels(types: &[FileType]) -> String {
    types.iter().map(|t| t.label()).collect::<Vec<_>>().join(", ")
}

/// Recognizes a file by its first bytes. Text is UTF-8 without NUL bytes
/// whose first non-blank character (after a byte-order mark) is not `<`:
/// HTML, SVG and XML are refused even when they claim to be something else.
/// Always [`FileType::Text`] for text; see [`check`] for CSV.
pub fn sniff(data: &[u8]) -> Option<FileType> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if data.starts_with(PNG) {
        return Some(FileType::Png);
    }
    if data.starts_with(b"\xFF\xD8\xFF") {
        return Some(FileType::Jpeg);
    }
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        return Some(FileType::Gif);
    }
    if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        return Some(FileType::Webp);
    }
    if data.starts_with(b"%PDF-") {
        return Some(FileType::Pdf);
    }
    is_plain_text(data).then_some(FileType::Text)
}

fn is_plain_text(data: &[u8]) -> bool {
    if data.contains(&0) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    !text.trim_start().starts_with('<')
}

/// Characters removed from filenames besides control characters:
/// bidirectional overrides (which make `gpj.exe` display as `exe.jpg`) and
/// invisible zero-width characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// A filename safe to store and to offer for download: the last path
/// segment only, without control or invisible characters, characters that
/// file systems reject replaced by `_`, no leading dots, at most
/// [`MAX_FILENAME_CHARS`] characters, and ending in an extension of
/// `file_type` (appended when the name has another or none).
pub fn sanitize_filename(raw: &str, file_type: FileType) -> String {
    let mut name = clean_name(raw);
    let suffix = match extension(&name) {
        Some(ext) if file_type.extensions().contains(&ext.to_lowercase().as_str()) => {
            // Keep the name's own spelling (e.g. `.JPEG`) through truncation.
            let suffix = format!(".{ext}");
            name.truncate(name.len() - suffix.len());
            suffix
        }
        _ => format!(".{}", file_type.extensions().first().copied().unwrap_or("bin")),
    };
    if name.is_empty() {
        name = "attachment".into();
    }
    let room = MAX_FILENAME_CHARS.saturating_sub(suffix.chars().count());
    let stem: String = name.chars().take(room).collect();
    format!("{}{suffix}", stem.trim_end())
}

/// The last path segment of `raw` without control or invisible characters,
/// characters file systems reject replaced by `_`, and no leading dots (no
/// hidden files, no `..`) or trailing dots and spaces (which Windows drops).
fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| match c {
            '"' | '<' | '>' | ':' | '*' | '?' | '|' => '_',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    cleaned
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_string()
}

/// The extension of a cleaned name (`None` for `name` or `.name`).
fn extension(name: &str) -> Option<&str> {
    name.rsplit_once('.')
        .filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
        .map(|(_, ext)| ext)
}

/// An upload that passed [`check`]: its type, its safe name and its bytes.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    file_type: FileType,
    filename: String,
    data: Vec<u8>,
}

impl CheckedFile {
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    pub fn filename(&self) -> &str {
        &self.filename
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Checks an upload against `limits`: not empty, not too large, of an
/// allowed type (sniffed from `data`); text named `*.csv` is CSV. The
/// client's filename is only a name: it is sanitized and never decides the
/// type.
pub fn check(filename: Option<&str>, data: Vec<u8>, limits: &Limits) -> Result<CheckedFile, Refused> {
    if data.is_empty() {
        return Err(Refused::Empty);
    }
    if data.len() > limits.max_bytes {
        return Err(Refused::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let unsupported = || Refused::Unsupported {
        allowed: limits.allowed.clone(),
    };
    let mut file_type = sniff(&data).ok_or_else(unsupported)?;
    let raw_name = filename.unwrap_or_default();
    if file_type == FileType::Text
        && extension(&clean_name(raw_name)).is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        file_type = FileType::Csv;
    }
    if !limits.allowed.contains(&file_type) {
        return Err(unsupported());
    }
    Ok(CheckedFile {
        file_type,
        filename: sanitize_filename(raw_name, file_type),
        data,
    })
}

/// An attachment's metadata (the bytes are downloaded separately).
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Uuid,
    pub work_order_id: Uuid,
    /// Sanitized; ends in an extension of the content type.
    pub filename: String,
    /// Recognized from the file's content, e.g. `image/png`.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Absent when a service uploaded the file.
    pub uploaded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, work_order_id, filename, content_type, size_bytes, sha256, uploaded_by, created_at";

/// Whether `tenant` may attach another file to the work order: it is
/// visible to them and below the count limit. [`add`] checks again; this
/// lets the API refuse before receiving a file.
pub async fn can_attach(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, limits: &Limits) -> Result<()> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    below_count_limit(tx, work_order_id, limits).await
}

async fn below_count_limit(tx: &mut Tx, work_order_id: Uuid, limits: &Limits) -> Result<()> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM attachments WHERE work_order_id = $1")
        .bind(work_order_id)
        .fetch_one(&mut **tx)
        .await?;
    if count >= i64::from(limits.max_per_work_order) {
        return Err(ModelError::Conflict(format!(
            "a work order holds at most {} attachments; delete one first",
            limits.max_per_work_order
        )));
    }
    Ok(())
}

/// Stores a checked file on a work order `tenant` may see, and records
/// `work_order.attachment_added`. Uploads to one work order are serialized
/// so the count limit holds under concurrency.
pub async fn add(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    file: CheckedFile,
    limits: &Limits,
) -> Result<Attachment> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    // NO KEY UPDATE: serializes uploads to this work order without blocking
    // rows that merely reference it (comments, time logs).
    sqlx::query("SELECT 1 FROM work_orders WHERE id = $1 FOR NO KEY UPDATE")
        .bind(work_order_id)
        .execute(&mut **tx)
        .await?;
    below_count_limit(tx, work_order_id, limits).await?;
    // One statement: the bytes go to the server once; size and SHA-256 are
    // computed there from the very bytes stored.
    let attachment = sqlx::query_as::<_, Attachment>(&format!(
        "WITH a AS (
             INSERT INTO attachments (id, organization_id, work_order_id, filename, content_type, size_bytes,
                                      sha256, uploaded_by)
             VALUES ($1, $2, $3, $4, $5, octet_length($6), encode(sha256($6), 'hex'), $7)
             RETURNING {COLUMNS}
         ), b AS (
             INSERT INTO attachment_blobs (attachment_id, organization_id, data) SELECT id, $2, $6 FROM a
         )
         SELECT {COLUMNS} FROM a"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(&file.filename)
    .bind(file.file_type.content_type())
    .bind(&file.data)
    .bind(tenant.actor.user_id())
    .fetch_one(&mut **tx)
    .await?;
    events::emit(
        tx,
        tenant,
        "work_order.attachment_added",
        Some(work_order_id),
        &attachment,
    )
    .await?;
    Ok(attachment)
}

/// A visible work order's attachments, oldest first (metadata only).
pub async fn list(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid) -> Result<Vec<Attachment>> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    Ok(sqlx::query_as::<_, Attachment>(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE work_order_id = $1 ORDER BY created_at, id"
    ))
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// One attachment of a visible work order.
pub async fn get(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, id: Uuid) -> Result<Attachment> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    sqlx::query_as::<_, Attachment>(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE id = $1 AND work_order_id = $2"
    ))
    .bind(id)
    .bind(work_order_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("attachment"))
}

/// An attachment of a visible work order with its bytes.
pub async fn download(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    id: Uuid,
) -> Result<(Attachment, Vec<u8>)> {
    let attachment = get(tx, tenant, work_order_id, id).await?;
    let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM attachment_blobs WHERE attachment_id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("attachment"))?;
    Ok((attachment, data))
}

/// Whether `actor` may delete an attachment uploaded by `uploaded_by`: the
/// uploader, a role with `work_orders:delete`, or a service.
pub fn may_delete(actor: &Actor, uploaded_by: Option<Uuid>) -> bool {
    match actor {
        Actor::User { id, role } => uploaded_by == Some(*id) || role.can(Permission::WorkOrdersDelete),
        Actor::System(_) => true,
    }
}

/// Deletes an attachment (and its bytes) and records
/// `work_order.attachment_removed`; see [`may_delete`] for who may.
pub async fn delete(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, id: Uuid) -> Result<Attachment> {
    let attachment = get(tx, tenant, work_order_id, id).await?;
    if !may_delete(&tenant.actor, attachment.uploaded_by) {
        return Err(ModelError::Forbidden(
            "only the uploader or a role with work_orders:delete may delete an attachment".into(),
        ));
    }
    sqlx::query("DELETE FROM attachments WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    events::emit(
        tx,
        tenant,
        "work_order.attachment_removed",
        Some(work_order_id),
        &attachment,
    )
    .await?;
    Ok(attachment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(PNG), Some(FileType::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(FileType::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(FileType::Gif));
        assert_eq!(sniff(b"GIF87a"), Some(FileType::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(FileType::Webp));
        assert_eq!(sniff(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n"), Some(FileType::Pdf));
        assert_eq!(
            sniff("temp,pressure\n21.5,1.2\n".as_bytes()),
            Some(FileType::Text)
        );
        assert_eq!(sniff("Lager getauscht – läuft".as_bytes()), Some(FileType::Text));
        assert_eq!(sniff("\u{feff}a;b\n".as_bytes()), Some(FileType::Text));
    }

    #[test]
    fn refuses_executables_markup_and_binary() {
        assert_eq!(sniff(b"\x7FELF\x02\x01\x01\0"), None, "ELF (has NUL)");
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None, "PE .exe");
        assert_eq!(sniff(b"<html><script>alert(1)</script></html>"), None);
        assert_eq!(sniff(b"  \n<!DOCTYPE html>"), None);
        assert_eq!(sniff("\u{feff}<svg onload=alert(1)>".as_bytes()), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>"), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None, "RIFF but not WebP");
        assert_eq!(sniff(b"text\xFF\xFEnot utf-8"), None);
        assert_eq!(sniff(b"\x89PNG"), None, "truncated signature, and not UTF-8 text");
    }

    #[test]
    fn filenames_are_sanitized() {
        let png = |s: &str| sanitize_filename(s, FileType::Png);
        assert_eq!(png("pump.png"), "pump.png");
        assert_eq!(png("C:\\Users\\eve\\pump.PNG"), "pump.PNG");
        assert_eq!(png("../../etc/passwd"), "passwd.png");
        assert_eq!(png("..png"), "png.png");
        assert_eq!(png("a\u{0}b\r\nc\t.png"), "abc.png");
        assert_eq!(
            png("photo\u{202E}gnp.exe"),
            "photognp.exe.png",
            "RTL override removed"
        );
        assert_eq!(png("page.html"), "page.html.png", "extension follows the content");
        assert_eq!(png("a\"b<c>d|e?.png"), "a_b_c_d_e_.png");
        assert_eq!(png(""), "attachment.png");
        assert_eq!(png("   "), "attachment.png");
        assert_eq!(png("/"), "attachment.png");
        assert_eq!(png(".png"), "png.png");
        assert_eq!(png("name. . ."), "name.png");
        assert_eq!(sanitize_filename("scan.JPEG", FileType::Jpeg), "scan.JPEG");
        assert_eq!(
            sanitize_filename("Prüfbericht.pdf", FileType::Pdf),
            "Prüfbericht.pdf"
        );
        let long = format!("{}.pdf", "ä".repeat(500));
        let name = sanitize_filename(&long, FileType::Pdf);
        assert_eq!(name.chars().count(), MAX_FILENAME_CHARS);
        assert!(name.ends_with("ää.pdf"));
        let long_ext = format!("x.{}", "e".repeat(300));
        let name = sanitize_filename(&long_ext, FileType::Text);
        assert_eq!(name.chars().count(), MAX_FILENAME_CHARS);
        assert!(name.ends_with(".txt"));
    }

    #[test]
    fn checks_size_type_and_csv() {
        let limits = Limits::default();
        let file = check(Some("pump.png"), PNG.to_vec(), &limits).expect("png");
        assert_eq!((file.file_type(), file.filename()), (FileType::Png, "pump.png"));
        let csv = check(Some("readings.CSV"), b"t,v\n1,2\n".to_vec(), &limits).expect("csv");
        assert_eq!((csv.file_type(), csv.filename()), (FileType::Csv, "readings.CSV"));
        let text = check(Some("notes"), b"all good".to_vec(), &limits).expect("text");
        assert_eq!((text.file_type(), text.filename()), (FileType::Text, "notes.txt"));
        // The name never decides the type: a PNG called .csv stays a PNG.
        let png = check(Some("x.csv"), PNG.to_vec(), &limits).expect("png");
        assert_eq!((png.file_type(), png.filename()), (FileType::Png, "x.csv.png"));
        assert_eq!(check(None, Vec::new(), &limits).err(), Some(Refused::Empty));
        assert!(matches!(
            check(Some("a.png"), b"<html>".to_vec(), &limits),
            Err(Refused::Unsupported { .. })
        ));

        let small = Limits {
            max_bytes: 4,
            allowed: vec![FileType::Png, FileType::Text],
            ..Limits::default()
        };
        assert_eq!(
            check(None, b"12345".to_vec(), &small).err(),
            Some(Refused::TooLarge { limit: 4 })
        );
        assert!(check(None, b"1234".to_vec(), &small).is_ok());
        let refused = check(Some("a.csv"), b"a,b".to_vec(), &small).expect_err("csv not allowed");
        assert_eq!(
            refused.to_string(),
            "unsupported file type (recognized from its content); allowed: PNG, plain text"
        );
    }

    #[test]
    fn limits_validate() {
        assert!(Limits::default().validate().is_ok());
        for bad in [
            Limits {
                max_bytes: 0,
                ..Limits::default()
            },
            Limits {
                allowed: Vec::new(),
                ..Limits::default()
            },
            Limits {
                max_per_work_order: 0,
                ..Limits::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn who_may_delete() {
        let uploader = Uuid::now_v7();
        let other = Uuid::now_v7();
        let user = |id, role| Actor::User { id, role };
        assert!(may_delete(&user(uploader, Role::Technician), Some(uploader)));
        assert!(!may_delete(&user(other, Role::Technician), Some(uploader)));
        assert!(may_delete(&user(other, Role::Manager), Some(uploader)));
        assert!(may_delete(&user(other, Role::Admin), None));
        assert!(!may_delete(&user(other, Role::Requester), Some(uploader)));
        assert!(may_delete(&Actor::System("analytics"), Some(uploader)));
    }
}
