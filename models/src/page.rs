//! Cursor (keyset) pagination: stable under inserts, cheap at any depth.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ModelError, Result};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A page of results and the cursor for the next one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A position in a list ordered by (created_at DESC, id DESC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id.simple())
    }

    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = || {
            ModelError::invalid(
                "cursor",
                "malformed cursor; pass next_cursor from a previous page",
            )
        };
        let (micros, id) = s.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Cursor { at, id })
    }
}

/// A position in a list ordered by something other than creation time (a
/// name, a search rank …): the last row's sort key and its id, the unique
/// tiebreaker. Encoded as hex of a JSON array, so any key survives a URL
/// unchanged; a cursor of another list's shape does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCursor<K> {
    pub key: K,
    pub id: Uuid,
}

impl<K: Serialize + DeserializeOwned> KeyCursor<K> {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&(&self.key, self.id)).unwrap_or_default();
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<KeyCursor<K>> {
        let bad = || {
            ModelError::invalid(
                "cursor",
                "malformed cursor; pass next_cursor from a previous page of the same list",
            )
        };
        if s.len() % 2 != 0 || s.len() > 8192 {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let (key, id): (K, Uuid) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        Ok(KeyCursor { key, id })
    }
}

/// Clamps a requested page size into 1..=MAX_LIMIT.
pub fn limit(requested: Option<i64>) -> Result<i64> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ModelError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Builds a page from `limit + 1` fetched rows.
pub fn paginate<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| key(r).encode())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Builds a page from `limit + 1` fetched rows, `cursor` encoding the
/// position after a row (for lists with a [`KeyCursor`]).
pub fn paginate_by<T>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(cursor) } else { None };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_732_460_000_123_456).expect("ts"),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
        assert!(Cursor::decode("nope").is_err());
        assert!(Cursor::decode("12.zz").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn key_cursor_roundtrip_and_garbage() {
        let c = KeyCursor {
            key: (2i16, 0.060_793_53f32, "Pump \"Ø\" 1/2 & co".to_string()),
            id: Uuid::new_v4(),
        };
        let s = c.encode();
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
        assert_eq!(KeyCursor::decode(&s).ok(), Some(c.clone()));
        // Another list's cursor shape, a time cursor, and garbage.
        assert!(KeyCursor::<String>::decode(&s).is_err());
        let time = Cursor {
            at: Utc::now(),
            id: Uuid::new_v4(),
        };
        assert!(KeyCursor::<String>::decode(&time.encode()).is_err());
        let named = KeyCursor {
            key: "a".to_string(),
            id: c.id,
        };
        assert!(Cursor::decode(&named.encode()).is_err());
        for junk in ["", "zz", "5b", "5", "é5", &s[..s.len() - 2]] {
            assert!(KeyCursor::<String>::decode(junk).is_err(), "{junk}");
        }
    }
}
