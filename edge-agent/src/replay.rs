//! CSV replay: reads `ts,device,metric,value` (or NAB `timestamp,value`) files and publishes
//! them as telemetry messages, optionally paced relative to the first timestamp.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use csv::StringRecord;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::message::{parse_timestamp, telemetry_topic, truncate_to_millis, validate_topic_level, Message};
use crate::outbox::{OutboxConfig, OutboxStats};
use crate::publisher::DRAIN_TIMEOUT;
use crate::sim::send_batch;
use crate::uplink::Uplink;
use crate::{EdgeError, MqttTarget};

/// How to replay a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// `None`: as fast as possible; `Some(1.0)`: real time relative to the first row's
    /// timestamp; `Some(10.0)`: ten times faster.
    pub speed: Option<f64>,
    /// Messages per MQTT payload (per device); >1 publishes JSON arrays.
    pub batch: usize,
    /// Device name for files without a `device` column (NAB `timestamp,value`).
    pub device: Option<String>,
    /// Metric name for files without a `metric` column (NAB `timestamp,value`).
    pub metric: Option<String>,
    /// Store-and-forward through this on-disk outbox (`None`: publish directly).
    pub outbox: Option<OutboxConfig>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            speed: None,
            batch: 1,
            device: None,
            metric: None,
            outbox: None,
        }
    }
}

impl ReplayOptions {
    /// Checks speed, batch and the fixed device/metric names.
    pub fn validate(&self) -> Result<(), EdgeError> {
        if let Some(speed) = self.speed {
            if !(speed.is_finite() && speed > 0.0) {
                return Err(EdgeError::Config(format!("speed must be > 0, got {speed}")));
            }
        }
        if self.batch == 0 {
            return Err(EdgeError::Config("batch must be at least 1".into()));
        }
        if let Some(device) = &self.device {
            validate_topic_level("device", device)?;
        }
        if matches!(&self.metric, Some(m) if m.trim().is_empty()) {
            return Err(EdgeError::Config("metric must not be empty".into()));
        }
        Ok(())
    }
}

/// What [`replay`] did. Every counted message was acknowledged by the broker (with an outbox:
/// stored in it; `outbox` says how many still wait there).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    pub published_messages: u64,
    pub published_readings: u64,
    /// CSV data rows that went into published messages.
    pub rows: u64,
    pub first_ts: Option<DateTime<Utc>>,
    pub last_ts: Option<DateTime<Utc>>,
    /// Outbox counters at the end of the run (`None` without an outbox).
    pub outbox: Option<OutboxStats>,
}

/// One parsed CSV data row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// 1-based line number in the file.
    pub line: u64,
    pub ts: DateTime<Utc>,
    pub device: String,
    pub metric: String,
    pub value: f64,
}

/// Consecutive rows with the same device and timestamp, as one message.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGroup {
    pub device: String,
    pub message: Message,
    /// Number of CSV rows merged into `message`.
    pub rows: u64,
    /// Line of the group's first row.
    pub line: u64,
}

/// Streaming reader for telemetry CSV files.
///
/// Columns are found by header name (case-insensitive, any order, extra columns ignored):
/// `ts` (or `timestamp`/`time`) and `value` are required; `device` and `metric` may be
/// missing if [`ReplayOptions::device`]/[`ReplayOptions::metric`] supply them, which makes
/// the NAB corpus format `timestamp,value` work.
pub struct CsvTelemetryReader<R: Read> {
    reader: csv::Reader<LineTracker<R>>,
    source: String,
    ts: usize,
    value: usize,
    device: Result<usize, String>,
    metric: Result<usize, String>,
    width: usize,
    record: StringRecord,
    pending: Option<CsvRow>,
}

impl CsvTelemetryReader<BufReader<File>> {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path, opts: &ReplayOptions) -> Result<Self, EdgeError> {
        let file = File::open(path).map_err(|source| EdgeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(BufReader::new(file), &path.display().to_string(), opts)
    }
}

impl<R: Read> CsvTelemetryReader<R> {
    /// Reads the header of `input`; `source` names the input in error messages.
    pub fn new(input: R, source: &str, opts: &ReplayOptions) -> Result<Self, EdgeError> {
        let err = |line: u64, message: String| EdgeError::Csv {
            path: source.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(LineTracker::new(input));
        let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        if names.iter().all(String::is_empty) {
            return Err(err(
                1,
                "empty file (expected header `ts,device,metric,value` or `timestamp,value`)".into(),
            ));
        }
        let find = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
        let expected = "expected header `ts,device,metric,value` or `timestamp,value`";
        let ts = find(&["ts", "timestamp", "time"])
            .ok_or_else(|| err(1, format!("no `ts`/`timestamp` column ({expected})")))?;
        let value = find(&["value"]).ok_or_else(|| err(1, format!("no `value` column ({expected})")))?;
        let column = |name: &str, fixed: &Option<String>, flag: &str| match (find(&[name]), fixed) {
            (Some(idx), fixed) => {
                if fixed.is_some() {
                    warn!(source, "file has a `{name}` column; ignoring {flag}");
                }
                Ok(Ok(idx))
            }
            (None, Some(fixed)) => Ok(Err(fixed.clone())),
            (None, None) => Err(err(
                1,
                format!("no `{name}` column; pass {flag} (needed for `timestamp,value` files)"),
            )),
        };
        let device = column("device", &opts.device, "--device")?;
        let metric = column("metric", &opts.metric, "--metric")?;
        let width = [
            Some(ts),
            Some(value),
            device.as_ref().ok().copied(),
            metric.as_ref().ok().copied(),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        Ok(Self {
            reader,
            source: source.to_string(),
            ts,
            value,
            device,
            metric,
            width,
            record: StringRecord::new(),
            pending: None,
        })
    }

    fn err(&self, line: u64, message: String) -> EdgeError {
        EdgeError::Csv {
            path: self.source.clone(),
            line,
            message,
        }
    }

    /// Next data row, skipping blank lines; errors name the 1-based line number.
    pub fn next_row(&mut self) -> Result<Option<CsvRow>, EdgeError> {
        if let Some(row) = self.pending.take() {
            return Ok(Some(row));
        }
        loop {
            let more = match self.reader.read_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    let line = match e.position() {
                        Some(p) => self.reader.get_mut().line_at(p.byte()),
                        None => 0,
                    };
                    return Err(self.err(line, e.to_string()));
                }
            };
            if !more {
                return Ok(None);
            }
            let byte = self.record.position().map_or(0, csv::Position::byte);
            let line = self.reader.get_mut().line_at(byte);
            if self.record.iter().all(str::is_empty) {
                continue;
            }
            if self.record.len() < self.width {
                return Err(self.err(
                    line,
                    format!(
                        "expected at least {} fields, got {}",
                        self.width,
                        self.record.len()
                    ),
                ));
            }
            let ts = parse_timestamp(&self.record[self.ts]).map_err(|e| self.err(line, e))?;
            let raw_value = &self.record[self.value];
            let value: f64 = raw_value
                .parse()
                .map_err(|_| self.err(line, format!("value `{raw_value}` is not a number")))?;
            if !value.is_finite() {
                return Err(self.err(line, format!("value `{raw_value}` is not finite")));
            }
            let device = match &self.device {
                Ok(idx) => self.record[*idx].to_string(),
                Err(fixed) => fixed.clone(),
            };
            validate_topic_level("device", &device).map_err(|e| self.err(line, e.to_string()))?;
            let metric = match &self.metric {
                Ok(idx) => self.record[*idx].to_string(),
                Err(fixed) => fixed.clone(),
            };
            if metric.is_empty() {
                return Err(self.err(line, "empty metric name".into()));
            }
            return Ok(Some(CsvRow {
                line,
                ts: truncate_to_millis(ts),
                device,
                metric,
                value,
            }));
        }
    }

    /// Next message: consecutive rows sharing device and timestamp, merged.
    pub fn next_group(&mut self) -> Result<Option<RowGroup>, EdgeError> {
        let Some(first) = self.next_row()? else {
            return Ok(None);
        };
        let mut group = RowGroup {
            device: first.device,
            message: Message::new(first.ts),
            rows: 1,
            line: first.line,
        };
        group.message.metrics.insert(first.metric, first.value);
        while let Some(row) = self.next_row()? {
            if row.device == group.device && row.ts == group.message.ts {
                group.message.metrics.insert(row.metric, row.value);
                group.rows += 1;
            } else {
                self.pending = Some(row);
                break;
            }
        }
        Ok(Some(group))
    }
}

fn account(report: &mut ReplayReport, msgs: &[Message], rows: u64) {
    report.published_messages += 1;
    report.published_readings += msgs.iter().map(|m| m.metrics.len() as u64).sum::<u64>();
    report.rows += rows;
}

/// Wraps the CSV input and remembers where newlines are, because the csv crate's own line
/// numbers drift when the file contains blank lines. Only newlines the parser has not yet
/// passed are kept (bounded by the parser's read-ahead buffer).
struct LineTracker<R> {
    inner: R,
    offset: u64,
    prev_cr: bool,
    /// (byte offset of `\n`, preceded by `\r`)
    newlines: VecDeque<(u64, bool)>,
    /// Newlines before the last queried position.
    passed: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            prev_cr: false,
            newlines: VecDeque::new(),
            passed: 0,
        }
    }

    /// 1-based line of the record csv reports at `byte`. csv reports the position *before*
    /// any blank lines it skipped, so those are stepped over first. Call with non-decreasing
    /// positions.
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.newlines.front().is_some_and(|&(pos, _)| pos < byte) {
            self.newlines.pop_front();
            self.passed += 1;
        }
        let mut expected = byte;
        while let Some(&(pos, cr)) = self.newlines.front() {
            if pos == expected || (cr && pos == expected + 1) {
                self.newlines.pop_front();
                self.passed += 1;
                expected = pos + 1;
            } else {
                break;
            }
        }
        self.passed + 1
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                self.newlines.push_back((self.offset + i as u64, self.prev_cr));
            }
            self.prev_cr = b == b'\r';
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Parses a whole CSV file into messages (for tests and small files).
pub fn read_csv_messages(path: &Path, opts: &ReplayOptions) -> Result<Vec<RowGroup>, EdgeError> {
    let mut reader = CsvTelemetryReader::open(path, opts)?;
    let mut out = Vec::new();
    while let Some(group) = reader.next_group()? {
        out.push(group);
    }
    Ok(out)
}

/// Reads the whole file once so that a bad row fails before anything is published.
fn validate_file(path: &Path, opts: &ReplayOptions) -> Result<u64, EdgeError> {
    let mut reader = CsvTelemetryReader::open(path, opts)?;
    let mut rows = 0;
    while reader.next_row()?.is_some() {
        rows += 1;
    }
    Ok(rows)
}

/// Replays `csv_path` to `mp/v1/{org}/{device}/telemetry` at QoS 1. The file is validated
/// completely first (errors name the line), then published in file order; consecutive rows
/// with the same device and timestamp become one message. Returns after every publish has
/// been acknowledged (or the 30 s drain timeout expired, which is an error).
pub async fn replay(
    target: MqttTarget,
    org: &str,
    csv_path: &Path,
    opts: ReplayOptions,
    shutdown: CancellationToken,
) -> Result<ReplayReport, EdgeError> {
    validate_topic_level("org", org)?;
    opts.validate()?;
    let (path, o) = (csv_path.to_path_buf(), opts.clone());
    let total_rows = tokio::task::spawn_blocking(move || validate_file(&path, &o))
        .await
        .map_err(|e| EdgeError::Internal(format!("CSV validation task failed: {e}")))??;
    info!(file = %csv_path.display(), rows = total_rows, "CSV validated");

    let mut publisher = match Uplink::open(&target, opts.outbox.as_ref(), &shutdown).await {
        Ok(p) => p,
        Err(EdgeError::Cancelled) => return Ok(ReplayReport::default()),
        Err(e) => return Err(e),
    };
    let mut reader = CsvTelemetryReader::open(csv_path, &opts)?;
    let as_array = opts.batch > 1;
    let mut index: HashMap<String, usize> = HashMap::new();
    // (topic, buffered messages, buffered rows)
    let mut buffers: Vec<(String, Vec<Message>, u64)> = Vec::new();
    let mut report = ReplayReport::default();
    let t0 = tokio::time::Instant::now();

    'run: while !shutdown.is_cancelled() {
        let Some(group) = reader.next_group()? else {
            break;
        };
        let first = *report.first_ts.get_or_insert(group.message.ts);
        report.last_ts = Some(group.message.ts);
        if let Some(speed) = opts.speed {
            let offset_s = (group.message.ts - first).num_milliseconds() as f64 / 1000.0 / speed;
            if offset_s > 0.0 {
                let due = t0 + std::time::Duration::from_secs_f64(offset_s);
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break 'run,
                    () = tokio::time::sleep_until(due) => {}
                }
            }
        }
        let slot = *index.entry(group.device.clone()).or_insert_with(|| {
            buffers.push((
                telemetry_topic(org, &group.device),
                Vec::with_capacity(opts.batch),
                0,
            ));
            buffers.len() - 1
        });
        let (topic, msgs, rows) = &mut buffers[slot];
        msgs.push(group.message);
        *rows += group.rows;
        if msgs.len() >= opts.batch {
            if send_batch(&mut publisher, topic, msgs, as_array, &shutdown).await? {
                account(&mut report, msgs, *rows);
            }
            msgs.clear();
            *rows = 0;
        }
    }
    for (topic, msgs, rows) in &mut buffers {
        if !msgs.is_empty() && send_batch(&mut publisher, topic, msgs, as_array, &shutdown).await? {
            account(&mut report, msgs, *rows);
        }
        msgs.clear();
    }
    report.outbox = publisher.finish(DRAIN_TIMEOUT).await?;
    info!(
        messages = report.published_messages,
        readings = report.published_readings,
        rows = report.rows,
        buffered = report.outbox.map(|o| o.buffered_records),
        "replay finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn parse(text: &str, opts: &ReplayOptions) -> Result<Vec<RowGroup>, EdgeError> {
        let mut reader = CsvTelemetryReader::new(text.as_bytes(), "test.csv", opts)?;
        let mut out = Vec::new();
        while let Some(g) = reader.next_group()? {
            out.push(g);
        }
        Ok(out)
    }

    fn line_of(err: EdgeError) -> u64 {
        match err {
            EdgeError::Csv { line, .. } => line,
            other => panic!("expected a CSV error, got {other}"),
        }
    }

    #[test]
    fn groups_consecutive_rows() {
        let text = "ts,device,metric,value\n\
            2024-01-01T00:00:00Z,gw-01,bearing_temp,71.2\n\
            2024-01-01T00:00:00Z,gw-01,vibration,3.1\n\
            2024-01-01T00:00:00Z,gw-02,vibration,2.0\n\
            1704067201000,gw-01,vibration,3.3\n\
            \n\
            2024-01-01T00:00:01.000Z,gw-01,bearing_temp,71.4\n";
        let groups = parse(text, &ReplayOptions::default()).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].device, "gw-01");
        assert_eq!(groups[0].rows, 2);
        assert_eq!(groups[0].line, 2);
        assert_eq!(groups[0].message.metrics["bearing_temp"], 71.2);
        assert_eq!(groups[0].message.metrics["vibration"], 3.1);
        assert_eq!(groups[1].device, "gw-02");
        // Epoch millis and RFC 3339 for the same instant group together.
        assert_eq!(groups[2].rows, 2);
        assert_eq!(
            groups[2].message.ts,
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 1).unwrap()
        );
    }

    #[test]
    fn nab_format() {
        let text = "timestamp,value\n2014-04-01 00:00:00,20.5\n2014-04-01 00:05:00,21\n";
        let err = parse(text, &ReplayOptions::default()).unwrap_err();
        assert_eq!(line_of(err), 1);
        let opts = ReplayOptions {
            device: Some("ec2-a".into()),
            metric: Some("cpu".into()),
            ..ReplayOptions::default()
        };
        let groups = parse(text, &opts).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].device, "ec2-a");
        assert_eq!(groups[1].message.metrics["cpu"], 21.0);
        assert_eq!(
            groups[1].message.ts,
            Utc.with_ymd_and_hms(2014, 4, 1, 0, 5, 0).unwrap()
        );
    }

    #[test]
    fn reordered_columns_and_bom() {
        let text = "\u{feff}Device,Metric,Value,TS\ngw-01,rpm,1480,2024-01-01T00:00:00Z\n";
        let groups = parse(text, &ReplayOptions::default()).unwrap();
        assert_eq!(groups[0].message.metrics["rpm"], 1480.0);
    }

    #[test]
    fn errors_name_the_line() {
        let head = "ts,device,metric,value\n2024-01-01T00:00:00Z,gw-01,rpm,1480\n";
        let cases = [
            (format!("{head}2024-01-01T00:00:01Z,gw-01,rpm,fast\n"), 3),
            (format!("{head}\nnot-a-time,gw-01,rpm,1\n"), 4),
            (format!("{head}2024-01-01T00:00:01Z,gw-01,rpm\n"), 3),
            (format!("{head}2024-01-01T00:00:01Z,gw/01,rpm,1\n"), 3),
            (format!("{head}2024-01-01T00:00:01Z,gw-01,,1\n"), 3),
            (format!("{head}2024-01-01T00:00:01Z,gw-01,rpm,NaN\n"), 3),
            (format!("{head}2024-01-01T00:00:01Z,gw-01,rpm,\n"), 3),
        ];
        for (text, line) in cases {
            let err = parse(&text, &ReplayOptions::default()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert_eq!(line_of(err), line, "{text}");
        }
        assert_eq!(line_of(parse("", &ReplayOptions::default()).unwrap_err()), 1);
        assert_eq!(
            line_of(parse("a,b,c\n1,2,3\n", &ReplayOptions::default()).unwrap_err()),
            1
        );
    }

    #[test]
    fn line_numbers_survive_blank_lines_and_crlf() {
        let text =
            "ts,device,metric,value\r\n\r\n1,gw-01,rpm,1\r\n\r\n\r\n2,gw-01,rpm,2\r\n\n3,gw-01,rpm,x\r\n";
        let mut reader =
            CsvTelemetryReader::new(text.as_bytes(), "t.csv", &ReplayOptions::default()).unwrap();
        assert_eq!(reader.next_row().unwrap().unwrap().line, 3);
        assert_eq!(reader.next_row().unwrap().unwrap().line, 6);
        assert_eq!(line_of(reader.next_row().unwrap_err()), 8);
        // Lines far beyond the parser's read-ahead buffer.
        let mut big = String::from("ts,device,metric,value\n");
        for i in 0..20_000 {
            big.push_str(&format!("{i},gw-01,rpm,1\n"));
            if i % 3 == 0 {
                big.push('\n');
            }
        }
        big.push_str("oops,gw-01,rpm,1\n");
        let expected = big.lines().count() as u64;
        assert_eq!(
            line_of(parse(&big, &ReplayOptions::default()).unwrap_err()),
            expected
        );
    }

    #[test]
    fn reads_files() {
        let dir = std::env::temp_dir().join(format!("mp-edge-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ok.csv");
        std::fs::write(&path, "ts,device,metric,value\n1704067200000,gw-01,flow,40\n").unwrap();
        let groups = read_csv_messages(&path, &ReplayOptions::default()).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(validate_file(&path, &ReplayOptions::default()).unwrap(), 1);
        let missing = dir.join("missing.csv");
        assert!(matches!(
            read_csv_messages(&missing, &ReplayOptions::default()),
            Err(EdgeError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_validation() {
        assert!(ReplayOptions::default().validate().is_ok());
        for bad in [
            ReplayOptions {
                speed: Some(0.0),
                ..ReplayOptions::default()
            },
            ReplayOptions {
                speed: Some(f64::NAN),
                ..ReplayOptions::default()
            },
            ReplayOptions {
                batch: 0,
                ..ReplayOptions::default()
            },
            ReplayOptions {
                device: Some("a/b".into()),
                ..ReplayOptions::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
