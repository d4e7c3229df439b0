//! Fault injection specs: kinds, the `DEVICE/METRIC:KIND@START+DURATION*MAGNITUDE` syntax and
//! duration strings like `500ms`, `60s`, `5m`, `1h`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::EdgeError;

/// What an injected fault does to one metric of one device. Magnitudes are expressed in
/// multiples of the sensor's *fault scale* (see [`crate::SensorSpec::fault_scale`], roughly one
/// noise standard deviation), so `magnitude = 10` is a clear outlier for any sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Exactly one sample (the first one at or after the start) is offset by
    /// `magnitude × scale`. The window is `max(duration, interval)` long.
    Spike,
    /// An offset that grows linearly from 0 at the start to `magnitude × scale` at the end of
    /// the window and then stays there until the simulation ends (a degrading sensor).
    Drift,
    /// A constant offset of `magnitude × scale` for the window, then back to normal.
    Step,
    /// The value freezes at its last pre-fault value (bit-identical floats) for the window.
    Stuck,
    /// The metric is omitted from payloads for the window (a message whose metrics all drop
    /// out is not sent at all).
    Dropout,
}

impl FaultKind {
    /// All kinds, in declaration order.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Spike,
        FaultKind::Drift,
        FaultKind::Step,
        FaultKind::Stuck,
        FaultKind::Dropout,
    ];

    /// Lower-case name as used in specs, JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::Drift => "drift",
            FaultKind::Step => "step",
            FaultKind::Stuck => "stuck",
            FaultKind::Dropout => "dropout",
        }
    }

    /// Magnitude used when a spec leaves out `*MAGNITUDE`.
    pub fn default_magnitude(self) -> f64 {
        match self {
            FaultKind::Spike => 10.0,
            FaultKind::Drift | FaultKind::Step => 5.0,
            FaultKind::Stuck | FaultKind::Dropout => 0.0,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = EdgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| EdgeError::InvalidFault {
                spec: s.to_string(),
                reason: "unknown fault kind (expected spike, drift, step, stuck or dropout)".into(),
            })
    }
}

/// One fault to inject into the simulated data.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub device: String,
    pub metric: String,
    pub kind: FaultKind,
    /// Offset of the window start from the simulation start (first sample's time).
    pub start_after: Duration,
    pub duration: Duration,
    /// In multiples of the sensor's fault scale; ignored by `stuck` and `dropout`.
    pub magnitude: f64,
}

/// Window length used when a spec leaves out `+DURATION`.
pub const DEFAULT_FAULT_DURATION: Duration = Duration::from_secs(60);

impl FromStr for FaultSpec {
    type Err = EdgeError;

    /// `DEVICE/METRIC:KIND@START[+DURATION][*MAGNITUDE]`, e.g. `gw-01/bearing_temp:spike@60s+5s*10`.
    /// Duration defaults to 60s, magnitude to 10 (spike) / 5 (drift, step) / 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| EdgeError::InvalidFault {
            spec: s.to_string(),
            reason,
        };
        let spec = s.trim();
        let (target, rest) = spec.split_once(':').ok_or_else(|| {
            bad("missing `:KIND` (expected DEVICE/METRIC:KIND@START+DURATION*MAGNITUDE)".into())
        })?;
        let (device, metric) = target
            .split_once('/')
            .ok_or_else(|| bad("missing `/` between device and metric".into()))?;
        let (device, metric) = (device.trim(), metric.trim());
        if device.is_empty() || metric.is_empty() {
            return Err(bad("device and metric must not be empty".into()));
        }
        let (kind, timing) = rest
            .split_once('@')
            .ok_or_else(|| bad("missing `@START`".into()))?;
        let kind: FaultKind = kind.parse().map_err(|_| {
            bad(format!(
                "unknown fault kind `{}` (expected spike, drift, step, stuck or dropout)",
                kind.trim()
            ))
        })?;
        let (window, magnitude) = match timing.split_once('*') {
            Some((w, m)) => {
                let m: f64 = m
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("bad magnitude `{}`", m.trim())))?;
                if !m.is_finite() {
                    return Err(bad("magnitude must be finite".into()));
                }
                (w, m)
            }
            None => (timing, kind.default_magnitude()),
        };
        let (start, duration) = match window.split_once('+') {
            Some((st, d)) => (st, Some(d)),
            None => (window, None),
        };
        let start_after = parse_duration(start).map_err(|e| bad(format!("bad start: {e}")))?;
        let duration = match duration {
            Some(d) => parse_duration(d).map_err(|e| bad(format!("bad duration: {e}")))?,
            None => DEFAULT_FAULT_DURATION,
        };
        Ok(FaultSpec {
            device: device.to_string(),
            metric: metric.to_string(),
            kind,
            start_after,
            duration,
            magnitude,
        })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}@{}+{}*{}",
            self.device,
            self.metric,
            self.kind,
            format_duration(self.start_after),
            format_duration(self.duration),
            self.magnitude
        )
    }
}

/// Parses `500ms`, `1.5s`, `60s`, `5m`, `2h`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!("`{s}` is not a duration (e.g. 500ms, 60s, 5m, 1h)"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 60s, 5m, 1h)"))?;
    let factor = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(value * factor).map_err(|e| format!("`{s}`: {e}"))
}

/// Inverse of [`parse_duration`] for whole milliseconds (`90s`, `5m`, `1h`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() % 1_000_000 != 0 {
        return format!("{}s", d.as_secs_f64());
    }
    let ms = d.as_millis();
    if ms == 0 || ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_full_spec() {
        let f: FaultSpec = "gw-01/bearing_temp:spike@60s+5s*10".parse().unwrap();
        assert_eq!(
            f,
            FaultSpec {
                device: "gw-01".into(),
                metric: "bearing_temp".into(),
                kind: FaultKind::Spike,
                start_after: Duration::from_secs(60),
                duration: Duration::from_secs(5),
                magnitude: 10.0,
            }
        );
        assert_eq!(f.to_string(), "gw-01/bearing_temp:spike@1m+5s*10");
        let again: FaultSpec = f.to_string().parse().unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn parses_variants() {
        let f: FaultSpec = "gw-02/vibration:DRIFT@5m+1h*-2.5".parse().unwrap();
        assert_eq!(f.kind, FaultKind::Drift);
        assert_eq!(f.start_after, Duration::from_secs(300));
        assert_eq!(f.duration, Duration::from_secs(3600));
        assert_eq!(f.magnitude, -2.5);

        let f: FaultSpec = "gw-03/rpm:stuck@500ms".parse().unwrap();
        assert_eq!(f.start_after, Duration::from_millis(500));
        assert_eq!(f.duration, DEFAULT_FAULT_DURATION);
        assert_eq!(f.magnitude, 0.0);

        let f: FaultSpec = "gw-01/flow:step@0+1.5s".parse().unwrap();
        assert_eq!(f.start_after, Duration::ZERO);
        assert_eq!(f.duration, Duration::from_millis(1500));
        assert_eq!(f.magnitude, 5.0);

        let f: FaultSpec = "d/m:dropout@10s+2m*1e1".parse().unwrap();
        assert_eq!(f.magnitude, 10.0);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "gw-01:spike@1s",
            "gw-01/bearing_temp",
            "gw-01/bearing_temp:spike",
            "gw-01/bearing_temp:explode@1s",
            "/m:spike@1s",
            "d/:spike@1s",
            "d/m:spike@soon",
            "d/m:spike@1s+5x",
            "d/m:spike@1s+5s*big",
            "d/m:spike@1s+5s*inf",
            "d/m:spike@-1s",
        ] {
            let err = bad.parse::<FaultSpec>();
            assert!(err.is_err(), "`{bad}` should be rejected");
            assert!(err.unwrap_err().to_string().contains("invalid fault spec"));
        }
    }

    #[test]
    fn kind_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(k.to_string().parse::<FaultKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<FaultKind>(&json).unwrap(), k);
        }
        assert!("Spike".parse::<FaultKind>().is_ok());
        assert!("nope".parse::<FaultKind>().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0.25s").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }
}
