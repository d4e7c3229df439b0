// The trend explorer ("/trends"): sensors grouped by asset, range presets, drag-to-zoom re-fetching the right resolution, anomaly markers, limits, live tail by polling, CSV; state in the URL.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { download, get, getPage, messageOf } from "../../api";
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
      setLoaded({ series, from, to, fetchMs: performance.now() - t0 });
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

  useEffect(() => {
    void load();
    if (!live) return;
    // Live tail: the range ends now, so re-read it every few seconds (readings are not pushed over the WebSocket).
    const every = Math.min(60, Math.max(5, preset.seconds / 360)) * 1000;
    const t = setInterval(() => {
      if (!document.hidden && !inflight.current) void load();
    }, every);
    return () => clearInterval(t);
  }, [load, live, preset.seconds]);

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
        const n = t.buckets.length;
        const x = new Float64Array(n);
        const y = new Float64Array(n);
        for (let k = 0; k < n; k++) {
          const b = t.buckets[k];
          x[k] = Date.parse(b.ts) / 1000;
          y[k] = b.avg;
        }
        const asset = s ? equipment.data?.get(s.equipmentId)?.name : undefined;
        return { label: s ? `${asset ? `${asset} · ` : ""}${s.name}` : t.sensorId.slice(0, 8), unit: s?.unit, color: PALETTE[i % PALETTE.length], x, y };
      }),
    [loaded, sensorById, equipment.data],
  );
  const xRange = useMemo<[number, number] | undefined>(() => (loaded ? [loaded.from, loaded.to] : undefined), [loaded]);

  const markers: ChartMarker[] = useMemo(() => {
    if (!loaded) return [];
    return (anomalies.data ?? [])
      .map((a) => ({ a, from: sec(a.startedAt), to: a.endedAt ? sec(a.endedAt) : loaded.to }))
      .filter((m) => m.to >= loaded.from && m.from <= loaded.to)
      .map(({ a, from, to }) => ({ from, to, color: SEVERITY_COLOR[a.severity]?.[0], strip: SEVERITY_COLOR[a.severity]?.[1] }));
  }, [anomalies.data, loaded]);
  const visibleAnomalies = useMemo(() => {
    if (!loaded) return [];
    return (anomalies.data ?? []).filter((a) => (a.endedAt ? sec(a.endedAt) : loaded.to) >= loaded.from && sec(a.startedAt) <= loaded.to);
  }, [anomalies.data, loaded]);

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
              <span className="mon-live" title="Re-read every few seconds">
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
