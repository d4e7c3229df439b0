//! On-disk store-and-forward outbox: an append-only log of (topic, payload) records in segment
//! files, an ack cursor persisted atomically, bounded size with a drop-oldest or block policy,
//! and crash recovery (torn tails are truncated, unacknowledged records are replayed in order).
//!
//! Layout of the outbox directory:
//!
//! * `seg-000001.log`, `seg-000002.log`, … — segments, oldest first. Each record is
//!   `len: u32 LE | crc32(payload): u32 LE | payload`, where
//!   `payload = topic_len: u16 LE | topic | message bytes`.
//! * `ack.cursor` — `v1 <segment> <offset>`: everything before that position was PUBACKed by
//!   the broker. Written to `ack.cursor.tmp`, fsynced, then renamed over the old file.
//!
//! Writes go straight to the kernel (`write(2)`, no user-space buffer), so a killed process
//! (`kill -9`) loses nothing an [`Outbox::append`] returned for. The [`FsyncPolicy`] decides
//! what survives a power loss or kernel crash.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::fault::{format_duration, parse_duration};
use crate::metrics::EdgeStatus;
use crate::EdgeError;

/// Default bound on the outbox size on disk.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Largest segment file (smaller outboxes use an eighth of their bound).
pub const MAX_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Default fsync interval.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
/// How often the ack cursor is persisted while acknowledgements arrive (and on close).
pub const CURSOR_PERSIST_INTERVAL: Duration = Duration::from_millis(250);

const HEADER: u64 = 8;
const CURSOR_FILE: &str = "ack.cursor";
const CURSOR_TMP: &str = "ack.cursor.tmp";

/// What to do when appending would exceed the size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Delete the oldest segment (acknowledged or not) and count its unacknowledged records as
    /// dropped: the newest data wins.
    #[default]
    DropOldest,
    /// The producer waits until acknowledgements free space: nothing is dropped, the source is
    /// slowed down (a simulator or replay simply pauses).
    Block,
}

impl FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop-oldest" => Ok(Self::DropOldest),
            "block" => Ok(Self::Block),
            _ => Err(format!("expected `drop-oldest` or `block`, got `{s}`")),
        }
    }
}

impl fmt::Display for FullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DropOldest => "drop-oldest",
            Self::Block => "block",
        })
    }
}

/// When appended records are forced to stable storage.
///
/// * `Always`: fsync after every append — a record survives power loss once `append` returns;
///   costs one disk flush per message (hundreds to a few thousand per second on SSDs, far less
///   on SD cards, and it wears flash).
/// * `Interval(d)`: fsync at most every `d` (checked on append and by the forwarder's tick) —
///   throughput is bounded by the disk's bandwidth, and a power loss or kernel crash may lose
///   up to `d` of the newest readings. A killed *process* loses nothing either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    Interval(Duration),
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval(DEFAULT_FSYNC_INTERVAL)
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "always" {
            return Ok(Self::Always);
        }
        parse_duration(s)
            .map(Self::Interval)
            .map_err(|e| format!("expected `always` or a duration: {e}"))
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(d) => f.write_str(&format_duration(*d)),
        }
    }
}

/// Where the outbox lives and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxConfig {
    pub dir: PathBuf,
    /// Bound on the total size of the segment files.
    pub max_bytes: u64,
    /// Segment size; `None` = `max_bytes / 8`, at most [`MAX_SEGMENT_BYTES`].
    pub segment_bytes: Option<u64>,
    pub full: FullPolicy,
    pub fsync: FsyncPolicy,
    /// How long a finishing run waits for the broker to acknowledge what is buffered; what is
    /// left stays on disk for the next run.
    pub drain_timeout: Duration,
    /// Where the agent's `/metrics` page reads the counters (`--metrics-listen`).
    pub status: Option<Arc<EdgeStatus>>,
}

impl OutboxConfig {
    /// Defaults: 256 MiB, drop-oldest, fsync every 100 ms, 30 s drain timeout.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
            segment_bytes: None,
            full: FullPolicy::default(),
            fsync: FsyncPolicy::default(),
            drain_timeout: crate::publisher::DRAIN_TIMEOUT,
            status: None,
        }
    }

    fn segment_bytes(&self) -> u64 {
        self.segment_bytes
            .unwrap_or(self.max_bytes / 8)
            .clamp(1, MAX_SEGMENT_BYTES)
    }

    fn validate(&self) -> Result<(), EdgeError> {
        if self.max_bytes < 4096 {
            return Err(EdgeError::Config("outbox max bytes must be at least 4096".into()));
        }
        if self.segment_bytes() > self.max_bytes / 4 {
            return Err(EdgeError::Config(
                "outbox segment size must be at most a quarter of its bound".into(),
            ));
        }
        Ok(())
    }
}

/// A position in the log: segment id and byte offset. Ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// Counters of an outbox (also reported by the agent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Records stored but not yet acknowledged by the broker.
    pub buffered_records: u64,
    /// Size of the segment files on disk (what the bound applies to).
    pub buffered_bytes: u64,
    /// Unacknowledged records deleted by the drop-oldest policy (or lost to corruption).
    pub dropped_records: u64,
    /// Unacknowledged records found on disk at start-up (left by an earlier run) and replayed.
    pub replayed_records: u64,
    /// Records appended by this run.
    pub appended_records: u64,
    /// Records acknowledged by the broker in this run.
    pub acked_records: u64,
    /// Torn or corrupt bytes truncated at start-up.
    pub truncated_bytes: u64,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    len: u64,
}

struct Inner {
    dir: PathBuf,
    segment_bytes: u64,
    config: OutboxConfig,
    /// Oldest first; the last one is the active (append) segment.
    segments: VecDeque<Segment>,
    active: File,
    cursor: Pos,
    stats: OutboxStats,
    dirty: bool,
    last_sync: Instant,
    cursor_dirty: bool,
    last_cursor_persist: Instant,
}

/// The outbox; share it as `Arc<Outbox>` between the producer and the forwarder.
pub struct Outbox {
    inner: Mutex<Inner>,
    appended: Notify,
    freed: Notify,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EdgeError + '_ {
    move |source| EdgeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:06}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
}

/// Encodes one record (header + payload).
fn encode(topic: &str, payload: &[u8]) -> Result<Vec<u8>, EdgeError> {
    let topic_len = u16::try_from(topic.len())
        .map_err(|_| EdgeError::Config(format!("topic of {} bytes is too long", topic.len())))?;
    let body_len = 2 + topic.len() + payload.len();
    let len = u32::try_from(body_len).map_err(|_| EdgeError::PayloadTooLarge {
        size: body_len,
        max: u32::MAX as usize,
    })?;
    let mut buf = Vec::with_capacity(HEADER as usize + body_len);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&topic_len.to_le_bytes());
    buf.extend_from_slice(topic.as_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[HEADER as usize..]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// Why a record could not be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// End of data exactly at a record boundary.
    End,
    /// Incomplete header or body (a write cut short).
    Torn,
    /// Complete but the checksum or the framing is wrong.
    Corrupt,
}

/// Reads one record; `limit` = bytes available from the current position.
fn read_record(r: &mut impl Read, limit: u64) -> Result<(Record, u64), ReadError> {
    if limit == 0 {
        return Err(ReadError::End);
    }
    if limit < HEADER {
        return Err(ReadError::Torn);
    }
    let mut header = [0u8; HEADER as usize];
    r.read_exact(&mut header).map_err(|_| ReadError::Torn)?;
    let len = u64::from(u32::from_le_bytes([header[0], header[1], header[2], header[3]]));
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len < 2 {
        return Err(ReadError::Corrupt);
    }
    if HEADER + len > limit {
        return Err(ReadError::Torn);
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|_| ReadError::Torn)?;
    if crc32fast::hash(&body) != crc {
        return Err(ReadError::Corrupt);
    }
    let topic_len = usize::from(u16::from_le_bytes([body[0], body[1]]));
    if 2 + topic_len > body.len() {
        return Err(ReadError::Corrupt);
    }
    let topic = String::from_utf8(body[2..2 + topic_len].to_vec()).map_err(|_| ReadError::Corrupt)?;
    let payload = body.split_off(2 + topic_len);
    Ok((Record { topic, payload }, HEADER + len))
}

/// Scans a segment: (valid length, records at or after `from`).
fn scan(path: &Path, from: u64) -> Result<(u64, u64, Option<ReadError>), EdgeError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::new(file);
    let (mut pos, mut after) = (0u64, 0u64);
    loop {
        match read_record(&mut r, size - pos) {
            Ok((_, n)) => {
                if pos >= from {
                    after += 1;
                }
                pos += n;
            }
            Err(ReadError::End) => return Ok((pos, after, None)),
            Err(e) => return Ok((pos, after, Some(e))),
        }
    }
}

fn sync_dir(dir: &Path) {
    // Directory fsync makes creates/renames/deletes durable; not supported everywhere.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_cursor(dir: &Path) -> Option<Pos> {
    let text = fs::read_to_string(dir.join(CURSOR_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    if parts.next()? != "v1" {
        return None;
    }
    let segment = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    Some(Pos { segment, offset })
}

impl Inner {
    fn path(&self, id: u64) -> PathBuf {
        segment_path(&self.dir, id)
    }

    fn total(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    fn active_segment(&self) -> Result<&Segment, EdgeError> {
        self.segments
            .back()
            .ok_or_else(|| EdgeError::Internal("outbox has no active segment".into()))
    }

    fn new_segment(&mut self, id: u64) -> Result<(), EdgeError> {
        let path = self.path(id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir);
        self.active = file;
        self.segments.push_back(Segment { id, len: 0 });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), EdgeError> {
        if self.dirty {
            let id = self.active_segment()?.id;
            self.active.sync_data().map_err(io_err(&self.path(id)))?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn roll(&mut self) -> Result<(), EdgeError> {
        self.sync()?;
        let next = self.active_segment()?.id + 1;
        self.new_segment(next)
    }

    fn persist_cursor(&mut self) -> Result<(), EdgeError> {
        let tmp = self.dir.join(CURSOR_TMP);
        let text = format!("v1 {} {}\n", self.cursor.segment, self.cursor.offset);
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        let dest = self.dir.join(CURSOR_FILE);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        sync_dir(&self.dir);
        self.cursor_dirty = false;
        self.last_cursor_persist = Instant::now();
        Ok(())
    }

    /// Deletes sealed segments the cursor has passed and moves the cursor onto live data.
    fn collect(&mut self) -> Result<bool, EdgeError> {
        let mut freed = false;
        while self.segments.len() > 1 {
            let Some(front) = self.segments.front() else { break };
            let done = front.id < self.cursor.segment
                || (front.id == self.cursor.segment && self.cursor.offset >= front.len);
            if !done {
                break;
            }
            let path = self.path(front.id);
            self.segments.pop_front();
            fs::remove_file(&path).map_err(io_err(&path))?;
            freed = true;
        }
        if let Some(front) = self.segments.front() {
            let start = Pos {
                segment: front.id,
                offset: 0,
            };
            if self.cursor < start {
                self.cursor = start;
                self.cursor_dirty = true;
            }
        }
        Ok(freed)
    }

    /// Deletes the oldest (sealed) segment, counting its unacknowledged records.
    fn drop_oldest(&mut self) -> Result<(), EdgeError> {
        if self.segments.len() < 2 {
            self.roll()?;
        }
        let Some(front) = self.segments.pop_front() else {
            return Ok(());
        };
        let path = self.path(front.id);
        let from = match self.cursor.segment.cmp(&front.id) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => self.cursor.offset,
            std::cmp::Ordering::Greater => u64::MAX,
        };
        let (_, lost, _) = scan(&path, from)?;
        fs::remove_file(&path).map_err(io_err(&path))?;
        self.stats.dropped_records += lost;
        self.stats.buffered_records = self.stats.buffered_records.saturating_sub(lost);
        warn!(
            segment = front.id,
            dropped = lost,
            dropped_total = self.stats.dropped_records,
            "outbox full: dropped the oldest segment"
        );
        self.collect()?;
        Ok(())
    }
}

/// What [`Outbox::try_append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Stored,
    /// Block policy and no room: nothing was written.
    Full,
}

impl Outbox {
    /// Opens (or creates) the outbox in `config.dir` and recovers it: scans every segment,
    /// truncates a torn or corrupt tail, skips what the ack cursor says was acknowledged, and
    /// starts a fresh active segment. Unacknowledged records will be read again, in order.
    pub fn open(config: OutboxConfig) -> Result<Self, EdgeError> {
        config.validate()?;
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let _ = fs::remove_file(dir.join(CURSOR_TMP));
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| parse_segment_name(&e.file_name().to_string_lossy()))
            .collect();
        ids.sort_unstable();
        let mut cursor = read_cursor(&dir).unwrap_or_default();
        let mut stats = OutboxStats::default();
        let mut segments = VecDeque::new();
        for &id in &ids {
            let path = segment_path(&dir, id);
            let from = match cursor.segment.cmp(&id) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => cursor.offset,
                std::cmp::Ordering::Greater => u64::MAX,
            };
            let (valid, pending, problem) = scan(&path, from)?;
            let size = fs::metadata(&path).map_err(io_err(&path))?.len();
            if let Some(problem) = problem {
                warn!(
                    segment = %path.display(),
                    valid_bytes = valid,
                    truncated_bytes = size - valid,
                    "outbox: {} record; truncating the segment there",
                    if problem == ReadError::Torn { "torn" } else { "corrupt" }
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(valid).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
                stats.truncated_bytes += size - valid;
            }
            if valid == 0 || (cursor.segment > id) || (cursor.segment == id && cursor.offset >= valid) {
                // Empty or fully acknowledged.
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            stats.buffered_records += pending;
            segments.push_back(Segment { id, len: valid });
        }
        if let Some(front) = segments.front() {
            let start = Pos {
                segment: front.id,
                offset: 0,
            };
            cursor = cursor.max(start);
        }
        stats.replayed_records = stats.buffered_records;
        let next_id = ids.last().map_or(1, |l| l + 1);
        let placeholder = segment_path(&dir, next_id);
        let active = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&placeholder)
            .map_err(io_err(&placeholder))?;
        segments.push_back(Segment { id: next_id, len: 0 });
        sync_dir(&dir);
        let mut inner = Inner {
            dir,
            segment_bytes: config.segment_bytes(),
            config,
            segments,
            active,
            cursor,
            stats,
            dirty: false,
            last_sync: Instant::now(),
            cursor_dirty: true,
            last_cursor_persist: Instant::now(),
        };
        inner.persist_cursor()?;
        inner.stats.buffered_bytes = inner.total();
        if inner.stats.buffered_records > 0 || inner.stats.truncated_bytes > 0 {
            info!(
                dir = %inner.dir.display(),
                replaying = inner.stats.buffered_records,
                bytes = inner.stats.buffered_bytes,
                truncated_bytes = inner.stats.truncated_bytes,
                "outbox recovered unacknowledged records from an earlier run"
            );
        }
        Ok(Self {
            inner: Mutex::new(inner),
            appended: Notify::new(),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the files inconsistent (recovery copes
        // with anything), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record unless the block policy says the outbox is full.
    pub fn try_append(&self, topic: &str, payload: &[u8]) -> Result<Appended, EdgeError> {
        let buf = encode(topic, payload)?;
        let size = buf.len() as u64;
        let mut g = self.lock();
        let max = g.config.max_bytes;
        if size > max / 2 {
            return Err(EdgeError::PayloadTooLarge {
                size: buf.len(),
                max: (max / 2) as usize,
            });
        }
        while g.total() + size > max {
            match g.config.full {
                FullPolicy::Block => return Ok(Appended::Full),
                FullPolicy::DropOldest => g.drop_oldest()?,
            }
        }
        let active_len = g.active_segment()?.len;
        if active_len > 0 && active_len + size > g.segment_bytes {
            g.roll()?;
        }
        let id = g.active_segment()?.id;
        if let Err(e) = g.active.write_all(&buf) {
            // Cut any partial write so the segment stays well-formed (recovery would cope too).
            let _ = g.active.set_len(active_len);
            let _ = g.active.seek(SeekFrom::Start(active_len));
            return Err(io_err(&g.path(id))(e));
        }
        if let Some(seg) = g.segments.back_mut() {
            seg.len += size;
        }
        g.dirty = true;
        g.stats.appended_records += 1;
        g.stats.buffered_records += 1;
        g.stats.buffered_bytes = g.total();
        let due = match g.config.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(d) => g.last_sync.elapsed() >= d,
        };
        if due {
            g.sync()?;
        }
        drop(g);
        self.appended.notify_waiters();
        Ok(Appended::Stored)
    }

    /// Appends one record; with the block policy waits for room. Returns `Ok(false)` if
    /// `shutdown` fired while waiting (the record was not stored).
    pub async fn append(
        &self,
        topic: &str,
        payload: &[u8],
        shutdown: &CancellationToken,
    ) -> Result<bool, EdgeError> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.try_append(topic, payload)? {
                Appended::Stored => return Ok(true),
                Appended::Full => {}
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(false),
                () = &mut freed => {}
                // Belt and braces against a missed wake-up.
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Marks everything before `end` as acknowledged (`records` = how many records that adds).
    /// Fully acknowledged segments are deleted; the cursor is persisted at most every
    /// [`CURSOR_PERSIST_INTERVAL`].
    pub fn ack(&self, end: Pos, records: u64) -> Result<(), EdgeError> {
        let mut g = self.lock();
        if end > g.cursor {
            g.cursor = end;
            g.cursor_dirty = true;
            g.stats.acked_records += records;
            g.stats.buffered_records = g.stats.buffered_records.saturating_sub(records);
        }
        let freed = g.collect()?;
        g.stats.buffered_bytes = g.total();
        if g.last_cursor_persist.elapsed() >= CURSOR_PERSIST_INTERVAL {
            g.persist_cursor()?;
        }
        drop(g);
        if freed {
            self.freed.notify_waiters();
        }
        Ok(())
    }

    /// Periodic work: fsync if the interval passed, persist a changed cursor.
    pub fn tick(&self) -> Result<(), EdgeError> {
        let mut g = self.lock();
        if let FsyncPolicy::Interval(d) = g.config.fsync {
            if g.dirty && g.last_sync.elapsed() >= d {
                g.sync()?;
            }
        }
        if g.cursor_dirty && g.last_cursor_persist.elapsed() >= CURSOR_PERSIST_INTERVAL {
            g.persist_cursor()?;
        }
        Ok(())
    }

    /// Forces data and cursor to disk (on shutdown).
    pub fn flush(&self) -> Result<(), EdgeError> {
        let mut g = self.lock();
        g.sync()?;
        if g.cursor_dirty {
            g.persist_cursor()?;
        }
        Ok(())
    }

    /// First unacknowledged position.
    pub fn cursor(&self) -> Pos {
        self.lock().cursor
    }

    /// Current counters.
    pub fn stats(&self) -> OutboxStats {
        self.lock().stats
    }

    /// How long a finishing run waits for the broker (from the configuration).
    pub fn drain_timeout(&self) -> Duration {
        self.lock().config.drain_timeout
    }

    /// The directory this outbox lives in.
    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }

    /// Resolves when something is appended after this call started (use with a re-check).
    pub(crate) fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// `Some(segment)` holding `pos` (or the first after it) with its length, `None` if `pos`
    /// is at the end of the log.
    fn locate(&self, pos: Pos) -> Option<(Pos, u64)> {
        let g = self.lock();
        for seg in &g.segments {
            if seg.id < pos.segment {
                continue;
            }
            let p = if seg.id == pos.segment {
                pos
            } else {
                Pos {
                    segment: seg.id,
                    offset: 0,
                }
            };
            if p.offset < seg.len {
                return Some((p, seg.len));
            }
        }
        None
    }
}

/// Sequential reader over the outbox (used by the forwarder; one per connection).
pub struct OutboxReader {
    pos: Pos,
    file: Option<(u64, BufReader<File>, u64)>,
}

impl OutboxReader {
    /// A reader starting at `pos` (normally [`Outbox::cursor`]).
    pub fn new(pos: Pos) -> Self {
        Self { pos, file: None }
    }

    /// The next record and the position just after it, or `None` when caught up.
    /// Records are read in append order; segments deleted under the reader (drop-oldest) are
    /// skipped.
    pub fn next(&mut self, outbox: &Outbox) -> Result<Option<(Record, Pos)>, EdgeError> {
        loop {
            let Some((pos, len)) = outbox.locate(self.pos) else {
                return Ok(None);
            };
            self.pos = pos;
            let path = segment_path(&outbox.dir(), pos.segment);
            let reopen = !matches!(&self.file, Some((id, _, at)) if *id == pos.segment && *at == pos.offset);
            if reopen {
                let mut f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // Dropped meanwhile: move on to the next segment.
                        self.pos = Pos {
                            segment: pos.segment + 1,
                            offset: 0,
                        };
                        self.file = None;
                        continue;
                    }
                    Err(e) => return Err(io_err(&path)(e)),
                };
                f.seek(SeekFrom::Start(pos.offset)).map_err(io_err(&path))?;
                self.file = Some((pos.segment, BufReader::new(f), pos.offset));
            }
            let Some((_, reader, at)) = self.file.as_mut() else {
                continue;
            };
            match read_record(reader, len - pos.offset) {
                Ok((record, n)) => {
                    *at += n;
                    self.pos.offset += n;
                    return Ok(Some((record, self.pos)));
                }
                Err(e) => {
                    // Cannot happen for data written by this process; skip the segment.
                    warn!(segment = %path.display(), offset = pos.offset, error = ?e,
                        "outbox: unreadable record; skipping the rest of the segment");
                    self.pos = Pos {
                        segment: pos.segment + 1,
                        offset: 0,
                    };
                    self.file = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(dir: &Path) -> OutboxConfig {
        OutboxConfig {
            max_bytes: 64 * 1024,
            segment_bytes: Some(1024),
            ..OutboxConfig::new(dir)
        }
    }

    fn read_all(outbox: &Outbox) -> Vec<(Record, Pos)> {
        let mut r = OutboxReader::new(outbox.cursor());
        let mut out = Vec::new();
        while let Some(x) = r.next(outbox).unwrap() {
            out.push(x);
        }
        out
    }

    fn payloads(records: &[(Record, Pos)]) -> Vec<String> {
        records
            .iter()
            .map(|(r, _)| String::from_utf8(r.payload.clone()).unwrap())
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        let mut ids: Vec<u64> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| parse_segment_name(&e.unwrap().file_name().to_string_lossy()))
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn append_read_ack_recover() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(config(tmp.path())).unwrap();
        for i in 0..10 {
            outbox.try_append("t/a", format!("m{i}").as_bytes()).unwrap();
        }
        let all = read_all(&outbox);
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].0.topic, "t/a");
        assert_eq!(payloads(&all)[9], "m9");
        outbox.ack(all[3].1, 4).unwrap();
        assert_eq!(outbox.stats().buffered_records, 6);
        outbox.flush().unwrap();
        drop(outbox);

        let outbox = Outbox::open(config(tmp.path())).unwrap();
        assert_eq!(outbox.stats().replayed_records, 6);
        let rest = read_all(&outbox);
        assert_eq!(payloads(&rest), ["m4", "m5", "m6", "m7", "m8", "m9"]);
        // New records go after the recovered ones.
        outbox.try_append("t/a", b"m10").unwrap();
        assert_eq!(payloads(&read_all(&outbox)).last().unwrap(), "m10");
    }

    #[test]
    fn torn_last_record_is_truncated() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(config(tmp.path())).unwrap();
        for i in 0..3 {
            outbox.try_append("t", format!("m{i}").as_bytes()).unwrap();
        }
        drop(outbox);
        let id = *segment_files(tmp.path()).last().unwrap();
        let path = segment_path(tmp.path(), id);
        let full = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 3).unwrap();
        drop(f);

        let outbox = Outbox::open(config(tmp.path())).unwrap();
        let stats = outbox.stats();
        assert_eq!(stats.replayed_records, 2);
        assert!(stats.truncated_bytes > 0);
        assert_eq!(payloads(&read_all(&outbox)), ["m0", "m1"]);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            full - stats.truncated_bytes - 3
        );
    }

    #[test]
    fn crc_mismatch_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(config(tmp.path())).unwrap();
        for i in 0..3 {
            outbox.try_append("t", format!("m{i}").as_bytes()).unwrap();
        }
        drop(outbox);
        let id = *segment_files(tmp.path()).last().unwrap();
        let path = segment_path(tmp.path(), id);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff; // flip the last payload byte of m2
        fs::write(&path, &bytes).unwrap();
        let mut r = bytes.as_slice();
        assert!(read_record(&mut r, bytes.len() as u64).is_ok());

        let outbox = Outbox::open(config(tmp.path())).unwrap();
        assert_eq!(payloads(&read_all(&outbox)), ["m0", "m1"]);
        assert!(outbox.stats().truncated_bytes > 0);

        let good = encode("t", b"hello").unwrap();
        let mut bad = good.clone();
        bad[10] ^= 1;
        assert_eq!(
            read_record(&mut bad.as_slice(), bad.len() as u64).unwrap_err(),
            ReadError::Corrupt
        );
        assert_eq!(
            read_record(&mut &good[..good.len() - 1], good.len() as u64 - 1).unwrap_err(),
            ReadError::Torn
        );
    }

    #[test]
    fn segments_roll_over_and_acked_ones_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(config(tmp.path())).unwrap();
        let payload = vec![b'x'; 200];
        for _ in 0..20 {
            outbox.try_append("t", &payload).unwrap();
        }
        let files = segment_files(tmp.path());
        assert!(files.len() >= 4, "rolled into several segments: {files:?}");
        let all = read_all(&outbox);
        assert_eq!(all.len(), 20);
        // Ack the first 10: the segments holding only those disappear.
        outbox.ack(all[9].1, 10).unwrap();
        let after = segment_files(tmp.path());
        assert!(after.len() < files.len());
        assert!(after[0] >= all[9].1.segment);
        assert_eq!(read_all(&outbox).len(), 10);
        // Ack everything: only the active segment is left.
        outbox.ack(all[19].1, 10).unwrap();
        assert_eq!(segment_files(tmp.path()).len(), 1);
        assert_eq!(outbox.stats().buffered_records, 0);
        assert_eq!(outbox.stats().acked_records, 20);
    }

    #[test]
    fn drop_oldest_counts_drops_and_keeps_order() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = OutboxConfig {
            max_bytes: 8 * 1024,
            segment_bytes: Some(1024),
            ..OutboxConfig::new(tmp.path())
        };
        let outbox = Outbox::open(cfg).unwrap();
        let n = 200;
        for i in 0..n {
            let payload = format!("{i:0100}");
            assert_eq!(
                outbox.try_append("t", payload.as_bytes()).unwrap(),
                Appended::Stored
            );
        }
        let stats = outbox.stats();
        assert!(stats.dropped_records > 0);
        assert!(stats.buffered_bytes <= 8 * 1024);
        let rest = read_all(&outbox);
        assert_eq!(rest.len() as u64 + stats.dropped_records, n);
        assert_eq!(stats.buffered_records, rest.len() as u64);
        let numbers: Vec<u64> = payloads(&rest).iter().map(|p| p.parse().unwrap()).collect();
        let first = numbers[0];
        assert_eq!(first, stats.dropped_records);
        assert_eq!(numbers, (first..n).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn block_waits_for_acks() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = OutboxConfig {
            max_bytes: 4096,
            segment_bytes: Some(1024),
            full: FullPolicy::Block,
            ..OutboxConfig::new(tmp.path())
        };
        let outbox = std::sync::Arc::new(Outbox::open(cfg).unwrap());
        let payload = vec![b'y'; 500];
        let mut stored = 0;
        while outbox.try_append("t", &payload).unwrap() == Appended::Stored {
            stored += 1;
        }
        assert!(stored >= 4);
        let never = CancellationToken::new();
        // Nothing acknowledged: the producer waits.
        let waited =
            tokio::time::timeout(Duration::from_millis(100), outbox.append("t", &payload, &never)).await;
        assert!(waited.is_err(), "append must block while full");
        // Acknowledge the first segment from another task: the producer gets through.
        let acker = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let all = read_all(&outbox);
                outbox.ack(all[1].1, 2).unwrap();
            })
        };
        let ok = tokio::time::timeout(Duration::from_secs(5), outbox.append("t", &payload, &never))
            .await
            .unwrap()
            .unwrap();
        assert!(ok);
        acker.await.unwrap();
        assert_eq!(outbox.stats().dropped_records, 0);
        // A shutdown while blocked gives up without storing.
        while outbox.try_append("t", &payload).unwrap() == Appended::Stored {}
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(!outbox.append("t", &payload, &stop).await.unwrap());
    }

    #[test]
    fn policies_parse() {
        assert_eq!("block".parse::<FullPolicy>().unwrap(), FullPolicy::Block);
        assert_eq!(
            "drop-oldest".parse::<FullPolicy>().unwrap(),
            FullPolicy::DropOldest
        );
        assert!("x".parse::<FullPolicy>().is_err());
        assert_eq!("always".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Always);
        assert_eq!(
            "250ms".parse::<FsyncPolicy>().unwrap(),
            FsyncPolicy::Interval(Duration::from_millis(250))
        );
    }
}
