// One anomaly ("/anomalies/:id"): the trend around it (span shaded, limits and thresholds drawn), its scores and evidence, the work order it raised, similar past anomalies.
import { useEffect, useMemo } from "react";
import { Link, useParams } from "react-router-dom";
import { get, getPage } from "../../api";
import { useAuth } from "../../auth";
import { useLiveEvents } from "../../live";
import { fmtDuration, fmtNumber, fmtTime, humanize } from "../../format";
import { Badge, Card, Empty, ErrorBox, Loading, PageHeader } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import { Chart, PALETTE, type ChartLimit, type ChartSeries } from "../../ui/Chart";
import { fetchTrends, fmtBucket, num, sec, type Anomaly, type Equipment, type Sensor, type TrendSeries, type WorkOrder } from "./shared";

interface Contributor {
  sensorId?: string;
  sensor?: string;
  share?: number;
}

export function AnomalyPage() {
  const { id = "" } = useParams();
  const { can } = useAuth();
  const anomaly = useAsync((signal) => get<Anomaly>(`anomalies/${id}`, undefined, signal), [id]);
  useLiveEvents(["anomaly."], (e) => {
    if (e.subjectId === id) anomaly.reload();
  });
  const a = anomaly.data;
  // An open anomaly grows: re-read it (and so its trend) every 15 s.
  const isOpen = a?.status === "open";
  const reloadAnomaly = anomaly.reload;
  useEffect(() => {
    if (!isOpen) return;
    const t = setInterval(() => {
      if (!document.hidden) reloadAnomaly();
    }, 15_000);
    return () => clearInterval(t);
  }, [isOpen, reloadAnomaly]);

  const context = useAsync(
    async (signal) => {
      if (!a) return undefined;
      const [sensor, equipment, workOrder, similar] = await Promise.all([
        can("sensors:view") ? get<Sensor>(`sensors/${a.sensorId}`, undefined, signal).catch(() => undefined) : undefined,
        can("equipment:view") ? get<Equipment>(`equipment/${a.equipmentId}`, undefined, signal).catch(() => undefined) : undefined,
        a.workOrderId && can("work_orders:view") ? get<WorkOrder>(`work-orders/${a.workOrderId}`, undefined, signal).catch(() => undefined) : undefined,
        getPage<Anomaly>("anomalies", { equipmentId: a.equipmentId, status: "closed", limit: 200 }, signal)
          .then((p) => p.items.filter((x) => x.kind === a.kind && x.id !== a.id).slice(0, 8))
          .catch(() => [] as Anomaly[]),
      ]);
      const sensors = can("sensors:view") ? await get<Sensor[]>("sensors", { equipmentId: a.equipmentId }, signal).catch(() => [] as Sensor[]) : [];
      return { sensor, equipment, workOrder, similar, sensors };
    },
    [a?.id, a?.workOrderId],
  );

  const contributors: Contributor[] = useMemo(() => {
    const c = a?.details?.contributingSensors;
    if (!Array.isArray(c)) return [];
    return c.map((x) => (typeof x === "string" ? { sensor: x } : (x as Contributor)));
  }, [a]);

  // The span: from a while before the start to a while after the end (or now).
  const span = useMemo(() => {
    if (!a) return undefined;
    const start = sec(a.startedAt);
    const end = a.endedAt ? sec(a.endedAt) : Date.now() / 1000;
    const pad = Math.max(15 * 60, (end - start) * 1.5);
    const from = start - pad;
    const to = Math.min(Date.now() / 1000, end + pad);
    return { start, end, from, to: Math.max(to, end + 1) };
  }, [a]);

  const chartIds = useMemo(() => {
    if (!a) return [];
    const ids = [a.sensorId];
    for (const c of contributors) if (c.sensorId && !ids.includes(c.sensorId)) ids.push(c.sensorId);
    return ids.slice(0, 10);
  }, [a, contributors]);

  const trend = useAsync(
    async (signal) => {
      if (!span || !chartIds.length || !can("readings:view")) return [] as TrendSeries[];
      return fetchTrends(chartIds, { from: new Date(span.from * 1000).toISOString(), to: new Date(span.to * 1000).toISOString(), maxPoints: 1500 }, signal);
    },
    [span?.from, span?.to, chartIds.join(",")],
  );

  const sensorsById = useMemo(() => new Map((context.data?.sensors ?? []).map((s) => [s.id, s])), [context.data]);
  const sensor = context.data?.sensor;
  // A work order's evidence describes the anomaly that raised it (not the later ones it absorbed).
  const raisedBy = context.data?.workOrder?.anomalyId === a?.id;
  const evidence = ((raisedBy && context.data?.workOrder?.evidence) || {}) as Record<string, unknown>;
  const d = a?.details ?? {};
  const baseline = num(a?.baseline) ?? num(d.baseline);
  const scale = num(d.scale) ?? num(evidence.scale);
  const zThreshold = num(evidence.zThreshold);

  const series: ChartSeries[] = useMemo(
    () =>
      (trend.data ?? []).map((t, i) => {
        const s = sensorsById.get(t.sensorId);
        return {
          label: s?.name ?? (t.sensorId === a?.sensorId ? "sensor" : t.sensorId.slice(0, 8)),
          unit: s?.unit ?? (t.sensorId === a?.sensorId ? sensor?.unit : undefined),
          color: PALETTE[i % PALETTE.length],
          x: t.buckets.map((b) => sec(b.ts)),
          y: t.buckets.map((b) => b.avg),
        };
      }),
    [trend.data, sensorsById, a?.sensorId, sensor?.unit],
  );
  const limits: ChartLimit[] = useMemo(() => {
    const unit = sensor?.unit;
    const out: ChartLimit[] = [];
    if (sensor?.minValue != null) out.push({ value: sensor.minValue, unit, label: `min ${fmtNumber(sensor.minValue)}`, fit: true });
    if (sensor?.maxValue != null) out.push({ value: sensor.maxValue, unit, label: `max ${fmtNumber(sensor.maxValue)}`, fit: true });
    if (baseline !== undefined && a?.kind !== "multivariate") {
      out.push({ value: baseline, unit, label: "baseline", color: "#5f6b7a", dash: [2, 3], fit: true });
      if (scale !== undefined && zThreshold !== undefined) {
        out.push({ value: baseline + zThreshold * scale, unit, label: `+${fmtNumber(zThreshold, 1)}σ`, color: "#c77700", dash: [4, 4] });
        out.push({ value: baseline - zThreshold * scale, unit, label: `−${fmtNumber(zThreshold, 1)}σ`, color: "#c77700", dash: [4, 4] });
      }
    }
    return out;
  }, [sensor, baseline, scale, zThreshold, a?.kind]);
  const xRange = useMemo<[number, number] | undefined>(() => (span ? [span.from, span.to] : undefined), [span]);
  const markers = useMemo(() => (span ? [{ from: span.start, to: span.end, label: a?.status === "open" ? "anomaly (open)" : "anomaly", strip: "#c62828" }] : []), [span, a?.status]);

  if (anomaly.loading && !a) return <Loading what="Loading the anomaly" />;
  if (!a) return <ErrorBox error={anomaly.error ?? new Error("Anomaly not found")} onRetry={anomaly.reload} />;

  const eq = context.data?.equipment;
  const wo = context.data?.workOrder;
  const end = a.endedAt ? sec(a.endedAt) : Date.now() / 1000;
  const similarFromEvidence = Array.isArray(evidence.similarAnomalies) ? (evidence.similarAnomalies as Array<Record<string, unknown>>) : [];
  const similar = context.data?.similar ?? [];

  const facts: Array<[string, string | undefined]> = [
    ["z-score", fmtOpt(num(d.z))],
    ["Probability", num(d.probability) !== undefined ? `${fmtNumber((num(d.probability) ?? 0) * 100, 2)} %` : undefined],
    ["Value", num(d.value) !== undefined ? `${fmtNumber(num(d.value))} ${sensor?.unit ?? str(d.unit) ?? ""}` : undefined],
    ["Baseline", baseline !== undefined ? `${fmtNumber(baseline)} ${sensor?.unit ?? ""}` : undefined],
    ["Scale (σ)", fmtOpt(scale)],
    ["z threshold", fmtOpt(zThreshold)],
    ["Probability threshold", fmtOpt(num(evidence.probabilityThreshold), 6)],
    ["T²", fmtOpt(num(d.t2))],
    ["T² limit", fmtOpt(num(d.t2Limit))],
    ["Q", fmtOpt(num(d.q))],
    ["Q limit", fmtOpt(num(d.qLimit))],
  ];
  const known = new Set(["z", "probability", "value", "baseline", "scale", "t2", "t2Limit", "q", "qLimit", "contributingSensors", "unit", "metric"]);
  const other = Object.entries(d).filter(([k, v]) => !known.has(k) && (typeof v === "number" || typeof v === "string" || typeof v === "boolean"));

  return (
    <div className="mon-anomaly">
      <PageHeader
        title={
          <>
            {humanize(a.kind)} on {eq?.name ?? "asset"} · {sensor?.name ?? "sensor"}
          </>
        }
        sub={
          <>
            Started {fmtTime(a.startedAt)} · {a.endedAt ? `ended ${fmtTime(a.endedAt)}` : "still open"} · lasted {fmtDuration(end - sec(a.startedAt))} · {a.points} anomalous {a.points === 1 ? "point" : "points"} · detector{" "}
            <span className="mono">{a.detector}</span>
          </>
        }
      >
        <Badge value={a.severity} />
        <Badge value={a.status} />
        {can("readings:view") && (
          <Link className="btn" to={`/trends?s=${chartIds.join(",")}&from=${new Date(span!.from * 1000).toISOString()}&to=${new Date(span!.to * 1000).toISOString()}`}>
            Open in trends
          </Link>
        )}
      </PageHeader>

      <Card title="Trend around the anomaly">
        <ErrorBox error={trend.error} onRetry={trend.reload} />
        {trend.loading && !trend.data ? (
          <Loading what="Loading readings" />
        ) : series.length === 0 || series.every((s) => s.x.length === 0) ? (
          <Empty>No readings stored around this anomaly.</Empty>
        ) : (
          <>
            <Chart series={series} xRange={xRange} markers={markers} limits={limits} height={320} testId="anomaly-chart" ariaLabel="Readings around the anomaly" />
            <p className="muted small">
              Shaded: the anomaly. Dashed: the sensor's limits, the baseline and the detector's thresholds. Source {trend.data?.[0]?.resolution} · buckets of {fmtBucket(trend.data?.[0]?.bucketSeconds ?? 0)}.
            </p>
          </>
        )}
      </Card>

      <div className="grid cols-2">
        <Card title="Scores and evidence">
          <dl className="props" data-testid="anomaly-evidence">
            <dt>Peak value</dt>
            <dd>
              {fmtNumber(a.peakValue)} {sensor?.unit}
            </dd>
            <dt>Score</dt>
            <dd>{fmtNumber(a.score)}</dd>
            {facts
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => (
                <Fragment2 key={k} k={k} v={v ?? ""} />
              ))}
            {other.map(([k, v]) => (
              <Fragment2 key={k} k={humanize(k)} v={typeof v === "number" ? fmtNumber(v, 4) : String(v)} />
            ))}
            {a.failureMode && <Fragment2 k="Failure mode" v={a.failureMode} />}
            {a.verdict && <Fragment2 k="Verdict" v={humanize(a.verdict)} />}
            {sensor && (sensor.minValue != null || sensor.maxValue != null) && (
              <Fragment2 k="Sensor limits" v={`${fmtNumber(sensor.minValue)} … ${fmtNumber(sensor.maxValue)} ${sensor.unit}`} />
            )}
          </dl>
          {contributors.length > 0 && (
            <>
              <h3 className="mon-sub">Contributing sensors</h3>
              <ul className="mon-contrib">
                {contributors.map((c, i) => (
                  <li key={c.sensorId ?? c.sensor ?? i}>
                    <span>{c.sensor ?? (c.sensorId ? sensorsById.get(c.sensorId)?.name : undefined) ?? "sensor"}</span>
                    {c.share !== undefined && (
                      <>
                        <span className="mon-bar" aria-hidden>
                          <span style={{ width: `${Math.round(Math.min(1, c.share) * 100)}%` }} />
                        </span>
                        <span className="muted">{fmtNumber(c.share * 100, 0)} %</span>
                      </>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
        </Card>

        <div>
          <Card title="Work order">
            {a.workOrderId ? (
              <div data-testid="anomaly-work-order">
                <Link to={`/work-orders/${a.workOrderId}`} className="mono" data-testid="anomaly-wo-link">
                  {wo?.code ?? "Open the work order"}
                </Link>{" "}
                {wo && (
                  <>
                    {wo.title}
                    <div className="row" style={{ marginTop: 6 }}>
                      <Badge value={wo.status} /> <Badge value={wo.priority} />
                      {wo.occurrenceCount > 1 && <span className="muted">covers {wo.occurrenceCount} anomalies</span>}
                    </div>
                  </>
                )}
              </div>
            ) : a.suppressedReason ? (
              <p>
                No work order of its own: {humanize(a.suppressedReason)}
                {a.suppressedUntil ? ` (until ${fmtTime(a.suppressedUntil)})` : ""}.
              </p>
            ) : (
              <Empty>This anomaly raised no work order.</Empty>
            )}
          </Card>
          <Card title="Similar past anomalies">
            {context.loading && !context.data ? (
              <Loading />
            ) : similar.length === 0 && similarFromEvidence.length === 0 ? (
              <Empty>None on this asset.</Empty>
            ) : (
              <ul className="mon-similar">
                {(similar.length
                  ? similar.map((s) => ({ id: s.id, startedAt: s.startedAt, score: s.score, workOrderId: s.workOrderId, verdict: s.verdict }))
                  : similarFromEvidence.map((s) => ({
                      id: String(s.anomalyId),
                      startedAt: String(s.startedAt),
                      score: num(s.score) ?? 0,
                      workOrderId: typeof s.workOrderId === "string" ? s.workOrderId : null,
                      verdict: typeof s.verdict === "string" ? s.verdict : null,
                    }))
                ).map((s) => (
                  <li key={s.id} data-testid="similar-anomaly">
                    <Link to={`/anomalies/${s.id}`}>{fmtTime(s.startedAt)}</Link>
                    <span className="muted">score {fmtNumber(s.score)}</span>
                    {s.verdict ? <Badge value={s.verdict} /> : <span className="muted">no verdict</span>}
                    {s.workOrderId && <Link to={`/work-orders/${s.workOrderId}`}>work order</Link>}
                  </li>
                ))}
              </ul>
            )}
          </Card>
        </div>
      </div>
    </div>
  );
}

function Fragment2({ k, v }: { k: string; v: string }) {
  return (
    <>
      <dt>{k}</dt>
      <dd>{v}</dd>
    </>
  );
}

function fmtOpt(v: number | undefined, digits = 3): string | undefined {
  return v === undefined ? undefined : fmtNumber(v, digits);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
