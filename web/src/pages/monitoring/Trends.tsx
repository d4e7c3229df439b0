// The trend explorer ("/trends"): sensors grouped by asset, range presets, drag-to-zoom re-fetching the right resolution, anomaly markers, limits, live tail pushed over /readings/ws (polling when the socket cannot connect), CSV; state in the URL.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { accessToken, download, get, getPage, messageOf, refreshSession } from "../../api";
import { useAuth } from "../../auth";
import { useLiveEvents } from "../../live";
import { fmtNumber, fmtTime, humanize } from "../../format";
import { Empty, ErrorBox, Loading, PageHeader } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import { Chart, PALETTE, type ChartLimit, type ChartMarker, type ChartSeries } from "../../ui/Chart";
import { fmtBucket, MAX_POINTS, MAX_SENSORS, equipmentMap, fetchTrends, sec, type Anomaly, type Equipment, type Sensor, type TrendSeries } from "./shared";

const PRESETS: Array<{ key: string; label: string; seconds: number }> = [
  { key: "15m", label: "15 min", seconds: 15 * 60 },
  { key: "1h", label: "1 h", seconds: 3600 },
  { key: "6h", label: "6 h", seconds: 6 * 3600 },
  { key: "24h", label: "24 h", seconds: 86400 },
  { key: "7d", label: "7 d", seconds: 7 * 86400 },
  { key: "30d", label: "30 d", seconds: 30 * 86400 },
];
const DEFAULT_RANGE = "1h";
const SEVERITY_COLOR: Record<string, [string, string]> = {
  critical: ["rgba(142, 0, 0, 0.08)", "#8e0000"],
  high: ["rgba(198, 40, 40, 0.07)", "#c62828"],
  medium: ["rgba(199, 119, 0, 0.07)", "#c77700"],
  low: ["rgba(30, 142, 62, 0.06)", "#1e8e3e"],
};

interface Loaded {
  series: TrendSeries[];
  from: number;
  to: number;
  fetchMs: number;
  /** Read for a range ending now (the live tail may extend it). */
  live: boolean;
}

/** A sensor's plotted buckets (start seconds, average, readings), extended in place by the live tail. */
interface Track {
  x: number[];
  y: number[];
  n: number[];
  /** Bucket width of the loaded series: pushed readings are averaged into buckets this wide. */
  width: number;
}

/** A frame of /api/v1/readings/ws. */
interface TailFrame {
  sensorId: string;
  points: Array<[number, number]>;
}

function tracksOf(loaded: Loaded): Map<string, Track> {
  const out = new Map<string, Track>();
  for (const t of loaded.series) {
    const n = t.buckets.length;
    const track: Track = { x: new Array<number>(n), y: new Array<number>(n), n: new Array<number>(n), width: Math.max(t.bucketSeconds, 0.001) };
    for (let k = 0; k < n; k++) {
      const b = t.buckets[k];
      track.x[k] = Date.parse(b.ts) / 1000;
      track.y[k] = b.avg;
      track.n[k] = Math.max(1, b.count);
    }
    out.set(t.sensorId, track);
  }
  return out;
}

/** Adds pushed readings to a track: into its last bucket while they fall in it, else into new buckets on the same grid. */
function extend(track: Track, points: Array<[number, number]>) {
  for (const [ms, value] of points) {
    const t = ms / 1000;
    const last = track.x.length - 1;
    if (last >= 0 && t < track.x[last]) continue; // older than what is plotted: a late reading, left to the next full read
    if (last >= 0 && t < track.x[last] + track.width) {
      const n = track.n[last];
      track.y[last] = (track.y[last] * n + value) / (n + 1);
      track.n[last] = n + 1;
    } else {
      const start = last >= 0 ? track.x[last] + Math.floor((t - track.x[last]) / track.width) * track.width : t;
      track.x.push(start);
      track.y.push(value);
      track.n.push(1);
    }
  }
}

/** Drops the buckets that fell out of the window on the left. */
function trim(track: Track, from: number) {
  let i = 0;
  while (i < track.x.length && track.x[i] + track.width <= from) i++;
  if (i > 0) {
    track.x.splice(0, i);
    track.y.splice(0, i);
    track.n.splice(0, i);
  }
}

export function Trends() {
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const ids = useMemo(() => (params.get("s") ?? "").split(",").filter(Boolean).slice(0, MAX_SENSORS), [params]);
  const idsKey = ids.join(",");
  const fromParam = params.get("from");
  const toParam = params.get("to");
  const absolute = fromParam && toParam && !Number.isNaN(Date.parse(fromParam)) && !Number.isNaN(Date.parse(toParam)) ? ([Date.parse(fromParam) / 1000, Date.parse(toParam) / 1000] as [number, number]) : undefined;
  const preset = PRESETS.find((p) => p.key === (params.get("range") ?? DEFAULT_RANGE)) ?? PRESETS[1];
  const detail = params.get("detail") === "1";
  const live = !absolute;

  const update = useCallback(
    (changes: Record<string, string | null>, replace = false) => {
      setParams(
        (old) => {
          const next = new URLSearchParams(old);
          for (const [k, v] of Object.entries(changes)) {
            if (v === null || v === "") next.delete(k);
            else next.set(k, v);
          }
          return next;
        },
        { replace },
      );
    },
    [setParams],
  );

  const sensors = useAsync((signal) => get<Sensor[]>("sensors", undefined, signal), []);
  const equipment = useAsync(() => (can("equipment:view") ? equipmentMap() : Promise.resolve(new Map<string, Equipment>())), []);
  const sensorById = useMemo(() => new Map((sensors.data ?? []).map((s) => [s.id, s])), [sensors.data]);

  // First visit without a selection: the first asset's sensors.
  useEffect(() => {
    if (ids.length || !sensors.data?.length) return;
    const first = sensors.data[0].equipmentId;
    update({ s: sensors.data.filter((s) => s.equipmentId === first).map((s) => s.id).join(",") }, true);
  }, [sensors.data, ids.length, update]);

  // The chart's width decides the default point budget (≈ 2 per pixel).
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.round(el.clientWidth / 100) * 100));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const maxPoints = detail ? MAX_POINTS : Math.min(MAX_POINTS, Math.max(200, width * 2));

  const [loaded, setLoaded] = useState<Loaded | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(false);
  const gen = useRef(0);
  const inflight = useRef(false);
  const load = useCallback(async () => {
    if (!ids.length || !width) return;
    const mine = ++gen.current;
    const to = absolute ? absolute[1] : Date.now() / 1000;
    const from = absolute ? absolute[0] : to - preset.seconds;
    setLoading(true);
    inflight.current = true;
    const t0 = performance.now();
    try {
      const series = await fetchTrends(ids, { from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString(), maxPoints });
      if (mine !== gen.current) return;
      setLoaded({ series, from, to, fetchMs: performance.now() - t0, live: !absolute });
      setError(undefined);
    } catch (e) {
      if (mine === gen.current) setError(e);
    } finally {
      if (mine === gen.current) {
        setLoading(false);
        inflight.current = false;
      }
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [idsKey, absolute?.[0], absolute?.[1], preset.seconds, maxPoints, width]);

  // Live tail. The range ends now: new readings are pushed over /api/v1/readings/ws and appended to the
  // loaded buckets, the window sliding on (what falls out on the left is dropped). When the socket
  // cannot connect (or drops), the range is re-read every few seconds instead, and pushing is tried
  // again every minute.
  const [mode, setMode] = useState<"push" | "poll">("push");
  const [connected, setConnected] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const failures = useRef(0);
  useEffect(() => {
    failures.current = 0;
    setMode("push");
  }, [idsKey, live]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (!live || mode !== "poll") return;
    const every = Math.min(60, Math.max(5, preset.seconds / 360)) * 1000;
    const t = setInterval(() => {
      if (!document.hidden && !inflight.current) void load();
    }, every);
    const again = setTimeout(() => {
      failures.current = 0;
      setMode("push");
    }, 60_000);
    return () => {
      clearInterval(t);
      clearTimeout(again);
    };
  }, [load, live, preset.seconds, mode]);

  const tracks = useRef<Map<string, Track>>(new Map());
  const [view, setView] = useState<{ from: number; to: number; version: number } | undefined>(undefined);
  useEffect(() => {
    if (!loaded) return;
    tracks.current = tracksOf(loaded);
    setView({ from: loaded.from, to: loaded.to, version: 0 });
  }, [loaded]);

  useEffect(() => {
    if (!live || !loaded?.live || mode !== "push" || !loaded.series.length) return;
    const token = accessToken();
    if (!token) {
      setMode("poll");
      return;
    }
    const span = loaded.to - loaded.from;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ sensorIds: loaded.series.map((t) => t.sensorId).join(","), after: new Date(loaded.to * 1000).toISOString() });
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/readings/ws?${query}`, ["bearer", token]);
    let opened = false;
    let done = false;
    let flush: ReturnType<typeof setTimeout> | undefined;
    const pending: TailFrame[] = [];
    const apply = () => {
      flush = undefined;
      const to = Math.max(Date.now() / 1000, loaded.to);
      const from = to - span;
      for (const f of pending.splice(0)) {
        const track = tracks.current.get(f.sensorId);
        if (track) extend(track, f.points);
      }
      for (const track of tracks.current.values()) trim(track, from);
      setView((v) => ({ from, to, version: (v?.version ?? 0) + 1 }));
    };
    ws.onopen = () => {
      opened = true;
      failures.current = 0;
      setConnected(true);
    };
    ws.onmessage = (m) => {
      try {
        const f = JSON.parse(String(m.data)) as TailFrame;
        if (typeof f.sensorId !== "string" || !Array.isArray(f.points)) return;
        pending.push(f);
        flush ??= setTimeout(apply, 250);
      } catch {
        // Not a readings frame: ignore.
      }
    };
    ws.onclose = () => {
      setConnected(false);
      if (done) return;
      if (opened) {
        // Dropped (server restart, network): poll, re-reading now; pushing is tried again later.
        setMode("poll");
        void load();
      } else if (++failures.current === 1) {
        // Refused before opening: most likely an expired token; refresh it and try once more.
        void refreshSession(token).finally(() => setAttempt((a) => a + 1));
      } else {
        setMode("poll");
      }
    };
    // The window slides even when nothing new arrives.
    const slide = setInterval(
      () => {
        if (!document.hidden && !flush) apply();
      },
      Math.min(30, Math.max(1, span / 600)) * 1000,
    );
    return () => {
      done = true;
      clearTimeout(flush);
      clearInterval(slide);
      setConnected(false);
      ws.close();
    };
  }, [loaded, live, mode, attempt, load]);
  const liveMode = connected ? "pushed" : mode === "poll" ? "polling" : "connecting";

  // Anomalies of the selected sensors, for the markers.
  const anomalies = useAsync(
    async (signal) => {
      if (!can("anomalies:view") || !ids.length) return [] as Anomaly[];
      const pages = await Promise.all(ids.map((id) => getPage<Anomaly>("anomalies", { sensorId: id, limit: 100 }, signal).catch(() => ({ items: [] as Anomaly[] }))));
      return pages.flatMap((p) => p.items);
    },
    [idsKey],
  );
  useLiveEvents(["anomaly."], () => anomalies.reload());

  const series: ChartSeries[] = useMemo(
    () =>
      (loaded?.series ?? []).map((t, i) => {
        const s = sensorById.get(t.sensorId);
        const track = view ? tracks.current.get(t.sensorId) : undefined;
        const x = Float64Array.from(track?.x ?? []);
        const y = Float64Array.from(track?.y ?? []);
        const asset = s ? equipment.data?.get(s.equipmentId)?.name : undefined;
        return { label: s ? `${asset ? `${asset} · ` : ""}${s.name}` : t.sensorId.slice(0, 8), unit: s?.unit, color: PALETTE[i % PALETTE.length], x, y };
      }),
    // `view` changes whenever the tracks do.
    [loaded, view, sensorById, equipment.data],
  );
  const xRange = useMemo<[number, number] | undefined>(() => (view ? [view.from, view.to] : loaded ? [loaded.from, loaded.to] : undefined), [view, loaded]);

  const markers: ChartMarker[] = useMemo(() => {
    if (!xRange) return [];
    const [lo, hi] = xRange;
    return (anomalies.data ?? [])
      .map((a) => ({ a, from: sec(a.startedAt), to: a.endedAt ? sec(a.endedAt) : hi }))
      .filter((m) => m.to >= lo && m.from <= hi)
      .map(({ a, from, to }) => ({ from, to, color: SEVERITY_COLOR[a.severity]?.[0], strip: SEVERITY_COLOR[a.severity]?.[1] }));
  }, [anomalies.data, xRange]);
  const visibleAnomalies = useMemo(() => {
    if (!xRange) return [];
    const [lo, hi] = xRange;
    return (anomalies.data ?? []).filter((a) => (a.endedAt ? sec(a.endedAt) : hi) >= lo && sec(a.startedAt) <= hi);
  }, [anomalies.data, xRange]);

  const limits: ChartLimit[] = useMemo(() => {
    const out: ChartLimit[] = [];
    ids.forEach((id, i) => {
      const s = sensorById.get(id);
      if (!s) return;
      const color = PALETTE[i % PALETTE.length];
      if (s.minValue != null) out.push({ value: s.minValue, unit: s.unit, color, label: `${s.name} min` });
      if (s.maxValue != null) out.push({ value: s.maxValue, unit: s.unit, color, label: `${s.name} max` });
    });
    return out;
  }, [ids, sensorById]);

  const zoom = useCallback(
    (from: number, to: number) => {
      update({ from: new Date(from * 1000).toISOString(), to: new Date(Math.min(to, Date.now() / 1000) * 1000).toISOString(), range: null });
    },
    [update],
  );
  const zoomOut = useCallback(() => {
    if (!loaded) return;
    const mid = (loaded.from + loaded.to) / 2;
    const half = loaded.to - loaded.from;
    const now = Date.now() / 1000;
    const to = Math.min(now, mid + half);
    update({ from: new Date((to - 2 * half) * 1000).toISOString(), to: new Date(to * 1000).toISOString(), range: null });
  }, [loaded, update]);

  const toggle = (id: string) => {
    const next = ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id].slice(0, MAX_SENSORS);
    update({ s: next.join(",") });
  };

  const [csvError, setCsvError] = useState<string | undefined>(undefined);
  const csv = async (s: Sensor) => {
    if (!loaded) return;
    setCsvError(undefined);
    try {
      await download(`sensors/${s.id}/readings.csv`, `${s.name}-${new Date(loaded.from * 1000).toISOString().slice(0, 16)}.csv`, {
        from: new Date(loaded.from * 1000).toISOString(),
        to: new Date(loaded.to * 1000).toISOString(),
      });
    } catch (e) {
      setCsvError(messageOf(e));
    }
  };

  const first = loaded?.series[0];
  const resolutions = [...new Set((loaded?.series ?? []).map((s) => s.resolution))];
  const totalPoints = (loaded?.series ?? []).reduce((n, s) => n + s.buckets.length, 0);

  return (
    <div className="mon-trends-page">
      <PageHeader title="Trends" sub="Pick sensors, a range, and drag across the chart to zoom in.">
        <div className="mon-presets" role="group" aria-label="Range">
          {PRESETS.map((p) => (
            <button
              key={p.key}
              type="button"
              className={`btn small${!absolute && p.key === preset.key ? " primary" : ""}`}
              aria-pressed={!absolute && p.key === preset.key}
              onClick={() => update({ range: p.key, from: null, to: null })}
            >
              {p.label}
            </button>
          ))}
          <button type="button" className="btn small" onClick={zoomOut} disabled={!loaded}>
            Zoom out
          </button>
        </div>
        <label className="mon-check">
          <input type="checkbox" checked={detail} onChange={(e) => update({ detail: e.target.checked ? "1" : null })} /> Detail (max resolution)
        </label>
      </PageHeader>

      <div className="mon-trends">
        <SensorPicker sensors={sensors.data} loading={sensors.loading} error={sensors.error} equipment={equipment.data} selected={ids} onToggle={toggle} />

        <section className="card mon-trend-main">
          <div className="mon-trend-status" data-testid="trend-status">
            {live ? (
              <span className="mon-live" data-live={liveMode} title={liveMode === "pushed" ? "New readings are pushed as they are stored" : liveMode === "polling" ? "Re-read every few seconds (the live socket is unavailable)" : "Connecting the live tail"}>
                live · last {preset.label}
              </span>
            ) : (
              loaded && (
                <span>
                  {fmtTime(new Date(loaded.from * 1000).toISOString())} → {fmtTime(new Date(loaded.to * 1000).toISOString())}
                </span>
              )
            )}
            {first && (
              <span data-testid="trend-source">
                source <strong>{resolutions.join(", ")}</strong> · buckets of {fmtBucket(first.bucketSeconds)} · {fmtNumber(totalPoints, 0)} points (≤ {fmtNumber(maxPoints, 0)} per sensor)
                {loaded && <> · fetched in {fmtNumber(loaded.fetchMs, 0)} ms</>}
              </span>
            )}
            {loading && <span className="spinner" aria-label="Loading" />}
          </div>
          <ErrorBox error={error} onRetry={() => void load()} />
          <div ref={wrap} className="mon-chart-wrap">
            {ids.length === 0 ? (
              sensors.loading ? <Loading /> : <Empty>Pick one or more sensors.</Empty>
            ) : !loaded ? (
              <Loading what="Loading readings" />
            ) : (
              <Chart series={series} xRange={xRange} markers={markers} limits={limits} height={420} onZoom={zoom} onReset={zoomOut} testId="trend-chart" ariaLabel="Trend of the selected sensors" />
            )}
          </div>
          {csvError && <p className="error-box">{csvError}</p>}
          {ids.length > 0 && (
            <ul className="mon-selected" aria-label="Selected sensors">
              {ids.map((id, i) => {
                const s = sensorById.get(id);
                return (
                  <li key={id}>
                    <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
                    <span>
                      {s ? `${equipment.data?.get(s.equipmentId)?.name ?? ""} · ${s.name}` : id.slice(0, 8)} {s?.unit && <span className="muted">({s.unit})</span>}
                    </span>
                    {s && (
                      <button type="button" className="btn small" onClick={() => void csv(s)} aria-label={`Download CSV of ${s.name}`}>
                        CSV
                      </button>
                    )}
                    <button type="button" className="btn small" onClick={() => toggle(id)} aria-label={`Remove ${s?.name ?? "sensor"}`}>
                      ×
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
          {visibleAnomalies.length > 0 && (
            <details className="mon-anomalies-in-range">
              <summary>{visibleAnomalies.length} anomalies in this range (shaded)</summary>
              <ul>
                {visibleAnomalies.map((a) => (
                  <li key={a.id}>
                    <Link to={`/anomalies/${a.id}`}>
                      {humanize(a.kind)} · {sensorById.get(a.sensorId)?.name ?? "sensor"}
                    </Link>{" "}
                    <span className="muted">{fmtTime(a.startedAt)}</span> <span className={`badge badge-${a.severity}`}>{humanize(a.severity)}</span>
                  </li>
                ))}
              </ul>
            </details>
          )}
        </section>
      </div>
    </div>
  );
}

function SensorPicker({
  sensors,
  loading,
  error,
  equipment,
  selected,
  onToggle,
}: {
  sensors?: Sensor[];
  loading: boolean;
  error: unknown;
  equipment?: Map<string, Equipment>;
  selected: string[];
  onToggle: (id: string) => void;
}) {
  const [q, setQ] = useState("");
  const groups = useMemo(() => {
    const needle = q.trim().toLowerCase();
    const by = new Map<string, Sensor[]>();
    for (const s of sensors ?? []) {
      const eq = equipment?.get(s.equipmentId);
      const hay = `${s.name} ${s.metric} ${s.unit} ${eq?.name ?? ""} ${eq?.assetTag ?? ""}`.toLowerCase();
      if (needle && !hay.includes(needle)) continue;
      const list = by.get(s.equipmentId) ?? [];
      list.push(s);
      by.set(s.equipmentId, list);
    }
    return [...by.entries()]
      .map(([id, list]) => ({ id, name: equipment?.get(id)?.name ?? id.slice(0, 8), tag: equipment?.get(id)?.assetTag, list }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }, [sensors, equipment, q]);
  const full = selected.length >= MAX_SENSORS;
  return (
    <aside className="card mon-picker" aria-label="Sensors">
      <input type="search" placeholder="Search sensors or assets" aria-label="Search sensors" value={q} onChange={(e) => setQ(e.target.value)} />
      <p className="muted small">
        {selected.length} selected{full ? ` (at most ${MAX_SENSORS})` : ""}
      </p>
      <ErrorBox error={error} />
      {loading && !sensors ? (
        <Loading />
      ) : groups.length === 0 ? (
        <Empty>No sensors{q ? " match" : ""}.</Empty>
      ) : (
        <div className="mon-picker-groups">
          {groups.map((g) => (
            <fieldset key={g.id}>
              <legend>
                {g.name} {g.tag && <span className="muted mono">{g.tag}</span>}
              </legend>
              {g.list.map((s) => {
                const on = selected.includes(s.id);
                return (
                  <label key={s.id} className="mon-check">
                    <input type="checkbox" checked={on} disabled={!on && full} onChange={() => onToggle(s.id)} data-testid="sensor-checkbox" />
                    {s.name} <span className="muted">{s.unit}</span>
                  </label>
                );
              })}
            </fieldset>
          ))}
        </div>
      )}
    </aside>
  );
}
