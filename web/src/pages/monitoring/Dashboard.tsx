// The fleet overview ("/"): assets by health, open anomalies by severity (counted by the API's severity filter), latest readings with sparklines, open anomalies and open auto-raised work orders; live.
import { useEffect, useMemo, useRef } from "react";
import { Link } from "react-router-dom";
import { get, getAll, getPage } from "../../api";
import { useAuth } from "../../auth";
import { useLiveEvents } from "../../live";
import { fmtAgo, fmtNumber, humanize } from "../../format";
import { Badge, Card, Empty, ErrorBox, Loading, PageHeader } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import { Sparkline } from "../../ui/Sparkline";
import { ACTIVE_WO, SEVERITIES, equipmentMap, fetchTrends, healthOf, type Anomaly, type Equipment, type Health, type LatestValue, type WorkOrder } from "./shared";

const HEALTH_ORDER: Record<Health, number> = { alarm: 0, warning: 1, healthy: 2 };
const SPARK_MINUTES = 15;

export function Dashboard() {
  const { can, me } = useAuth();
  const mayReadings = can("readings:view");
  const mayEquipment = can("equipment:view");
  const mayWorkOrders = can("work_orders:view");

  const equipment = useAsync(() => (mayEquipment ? equipmentMap() : Promise.resolve(new Map<string, Equipment>())), [mayEquipment]);

  const events = useAsync(async () => {
    // Open anomalies one severity at a time (filtered by the API), so each count holds up to its own cap.
    const [perSeverity, recent, wos] = await Promise.all([
      Promise.all(SEVERITIES.map((severity) => getAll<Anomaly>("anomalies", { status: "open", severity }, 1000))),
      getPage<Anomaly>("anomalies", { status: "closed", limit: 8 }),
      mayWorkOrders ? getPage<WorkOrder>("work-orders", { source: "auto", limit: 100 }) : Promise.resolve({ items: [] as WorkOrder[] }),
    ]);
    const open = perSeverity.flat().sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
    const counts = new Map<string, number>(SEVERITIES.map((s, i) => [s, perSeverity[i].length]));
    return { open, counts, recent: recent.items, autoWos: wos.items.filter((w) => ACTIVE_WO.includes(w.status)) };
  }, [mayWorkOrders]);

  const readings = useAsync(async (signal) => {
    if (!mayReadings) return { latest: [] as LatestValue[], spark: new Map<string, number[]>() };
    const latest = await get<LatestValue[]>("sensors/latest", undefined, signal);
    const to = new Date();
    const from = new Date(to.getTime() - SPARK_MINUTES * 60_000);
    const spark = new Map<string, number[]>();
    if (latest.length) {
      const series = await fetchTrends(
        latest.map((l) => l.sensorId),
        { from: from.toISOString(), to: to.toISOString(), maxPoints: 60 },
        signal,
      ).catch(() => []);
      for (const s of series) spark.set(s.sensorId, s.buckets.map((b) => b.avg));
    }
    return { latest, spark };
  }, [mayReadings]);

  // Anomalies and work orders follow the live events (debounced: they come in bursts).
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useLiveEvents(["anomaly.", "work_order."], () => {
    clearTimeout(pending.current);
    pending.current = setTimeout(events.reload, 400);
  });
  useEffect(() => () => clearTimeout(pending.current), []);
  // Readings are not events: poll them.
  const reloadReadings = readings.reload;
  useEffect(() => {
    const t = setInterval(() => {
      if (!document.hidden) reloadReadings();
    }, 15_000);
    return () => clearInterval(t);
  }, [reloadReadings]);

  const eqMap = equipment.data;
  const open = events.data?.open;
  const assets = useMemo(() => {
    const ids = new Set<string>();
    for (const l of readings.data?.latest ?? []) ids.add(l.equipmentId);
    for (const a of open ?? []) ids.add(a.equipmentId);
    const rows = [...ids].map((id) => {
      const mine = (open ?? []).filter((a) => a.equipmentId === id);
      return {
        id,
        equipment: eqMap?.get(id),
        open: mine,
        health: healthOf(mine),
        sensors: (readings.data?.latest ?? []).filter((l) => l.equipmentId === id),
      };
    });
    rows.sort((a, b) => HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health] || (a.equipment?.name ?? a.id).localeCompare(b.equipment?.name ?? b.id));
    return rows;
  }, [readings.data, open, eqMap]);

  const sensorName = useMemo(() => new Map((readings.data?.latest ?? []).map((l) => [l.sensorId, l] as const)), [readings.data]);
  const assetName = (id: string) => eqMap?.get(id)?.name ?? "Asset";

  const bySeverity = SEVERITIES.map((s) => ({ s, n: events.data?.counts.get(s) ?? 0 }));
  const healthCount = (h: Health) => assets.filter((a) => a.health === h).length;

  return (
    <div className="mon-dashboard">
      <PageHeader
        title="Fleet overview"
        sub={
          <>
            {me?.organization.name} · {assets.length} assets monitored · <span className="mon-live">live</span>
          </>
        }
      >
        <Link className="btn" to="/anomalies">
          All anomalies
        </Link>
        {mayReadings && (
          <Link className="btn" to="/trends">
            Trends
          </Link>
        )}
      </PageHeader>
      <ErrorBox error={events.error} onRetry={events.reload} />

      <div className="grid cols-4 mon-stats" aria-label="Open anomalies by severity">
        {bySeverity.map(({ s, n }) => (
          <Link key={s} to={`/anomalies?status=open&severity=${s}`} className={`card stat mon-stat sev-${s}${n ? " hot" : ""}`} data-testid={`open-${s}`}>
            <span className="value">{events.data ? n : "…"}</span>
            <span className="label">Open {s} anomalies</span>
          </Link>
        ))}
      </div>

      <Card
        title="Assets"
        className="mon-assets"
        actions={
          <div className="row">
            <Badge value="alarm" /> {healthCount("alarm")} <Badge value="warning" /> {healthCount("warning")} <Badge value="healthy" /> {healthCount("healthy")}
          </div>
        }
      >
        <ErrorBox error={readings.error} onRetry={readings.reload} />
        {readings.loading && !readings.data ? (
          <Loading what="Loading the fleet" />
        ) : assets.length === 0 ? (
          <Empty>No monitored assets yet: register devices and sensors under Admin.</Empty>
        ) : (
          <div className="mon-asset-grid">
            {assets.map((a) => (
              <section key={a.id} className={`mon-asset health-${a.health}`} data-testid="asset-card" aria-label={a.equipment?.name ?? "Asset"}>
                <header>
                  <Link to={`/equipment/${a.id}`} className="mon-asset-name">
                    {a.equipment?.name ?? "Asset"}
                  </Link>
                  {a.equipment?.assetTag && <span className="muted mono">{a.equipment.assetTag}</span>}
                  <span className="spacer" />
                  <Badge value={a.health} title={a.open.length ? `${a.open.length} open anomalies` : "No open anomalies"} />
                </header>
                {a.open.length > 0 && (
                  <p className="mon-asset-open">
                    {a.open.length} open: {a.open.slice(0, 3).map((x) => humanize(x.kind)).join(", ")}
                    {a.open.length > 3 ? "…" : ""}
                  </p>
                )}
                <table className="mon-readings">
                  <tbody>
                    {a.sensors.map((s) => (
                      <tr key={s.sensorId} data-testid="latest-reading">
                        <td className="name">
                          {mayReadings ? <Link to={`/trends?s=${s.sensorId}&range=1h`}>{s.name}</Link> : s.name}
                        </td>
                        <td className="num">
                          {fmtNumber(s.value)} <span className="muted">{s.unit}</span>
                        </td>
                        <td className="spark">
                          <Sparkline values={readings.data?.spark.get(s.sensorId) ?? []} width={72} height={22} />
                        </td>
                        <td className="ago muted" title={s.ts ?? undefined}>
                          {fmtAgo(s.ts)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </section>
            ))}
          </div>
        )}
      </Card>

      <div className="grid cols-2 mon-lists">
        <Card title={`Open anomalies${open ? ` (${open.length})` : ""}`} actions={<Link to="/anomalies?status=open">See all</Link>}>
          {events.loading && !events.data ? (
            <Loading />
          ) : !open?.length ? (
            <>
              <Empty>No open anomalies.</Empty>
              {(events.data?.recent.length ?? 0) > 0 && (
                <>
                  <h3 className="mon-sub">Recently closed</h3>
                  <AnomalyRows rows={events.data?.recent ?? []} testId="recent-anomaly-row" assetName={assetName} sensorName={(id) => sensorName.get(id)?.name} />
                </>
              )}
            </>
          ) : (
            <AnomalyRows rows={open.slice(0, 15)} testId="open-anomaly-row" assetName={assetName} sensorName={(id) => sensorName.get(id)?.name} />
          )}
        </Card>
        <Card title="Open auto-raised work orders" actions={mayWorkOrders ? <Link to="/work-orders?source=auto">See all</Link> : undefined}>
          {!mayWorkOrders ? (
            <Empty>Your role does not show work orders.</Empty>
          ) : events.loading && !events.data ? (
            <Loading />
          ) : !events.data?.autoWos.length ? (
            <Empty>No open auto-raised work orders.</Empty>
          ) : (
            <ul className="mon-wo-list">
              {events.data.autoWos.slice(0, 15).map((w) => (
                <li key={w.id} data-testid="auto-wo-row">
                  <Link to={`/work-orders/${w.id}`} data-testid="auto-wo-link" className="mono">
                    {w.code}
                  </Link>
                  <span className="title">{w.title}</span>
                  <span className="row">
                    <Badge value={w.priority} />
                    <Badge value={w.status} />
                    {w.occurrenceCount > 1 && <span className="muted">×{w.occurrenceCount}</span>}
                    {w.anomalyId && (
                      <Link to={`/anomalies/${w.anomalyId}`} className="small">
                        anomaly
                      </Link>
                    )}
                    <span className="muted">{fmtAgo(w.lastOccurrenceAt ?? w.createdAt)}</span>
                  </span>
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
    </div>
  );
}

function AnomalyRows({ rows, testId, assetName, sensorName }: { rows: Anomaly[]; testId: string; assetName: (id: string) => string; sensorName: (id: string) => string | undefined }) {
  return (
    <div className="table-wrap">
      <table className="list">
        <thead>
          <tr>
            <th>Severity</th>
            <th>Anomaly</th>
            <th>Started</th>
            <th>Work order</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((a) => (
            <tr key={a.id} data-testid={testId}>
              <td>
                <Badge value={a.severity} />
              </td>
              <td>
                <Link to={`/anomalies/${a.id}`} data-testid="anomaly-link">
                  {humanize(a.kind)}
                </Link>
                <div className="muted small">
                  {assetName(a.equipmentId)} · {sensorName(a.sensorId) ?? "sensor"}
                </div>
              </td>
              <td title={a.startedAt}>{fmtAgo(a.startedAt)}</td>
              <td>
                {a.workOrderId ? (
                  <Link to={`/work-orders/${a.workOrderId}`} data-testid="anomaly-wo-link">
                    Open work order
                  </Link>
                ) : a.suppressedReason ? (
                  <span className="muted" title={a.suppressedUntil ? `until ${a.suppressedUntil}` : undefined}>
                    {humanize(a.suppressedReason)}
                  </span>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
