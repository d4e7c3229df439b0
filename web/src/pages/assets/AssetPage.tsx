// One asset (/equipment/:id): details, sensors with sparklines, work, anomalies, reliability, QR label, edit.
import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { get, getPage, objectUrl } from "../../api";
import { useAuth } from "../../auth";
import { fmtAgo, fmtNumber, fmtTime, humanize } from "../../format";
import { useLiveEvents } from "../../live";
import { Badge, Card, Empty, ErrorBox, Listing, LoadMore, Loading, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync, usePaged } from "../../ui/hooks";
import { Sparkline } from "../../ui/Sparkline";
import { EquipmentForm } from "./EquipmentForm";
import {
  ACTIVE_WO,
  type Anomaly,
  type Equipment,
  type EquipmentNode,
  type LatestValue,
  type ReliabilityReport,
  type Sensor,
  type TrendSeries,
  type WorkOrder,
} from "./types";
import { fmtMoney, hoursText } from "./util";

export function AssetPage() {
  const { id = "" } = useParams();
  const { can } = useAuth();
  const [editing, setEditing] = useState(false);
  const asset = useAsync((signal) => get<Equipment>(`equipment/${id}`, undefined, signal), [id]);
  const path = useAsync((signal) => get<Equipment[]>(`equipment/${id}/path`, undefined, signal), [id, asset.data?.parentId]);
  const subtree = useAsync((signal) => get<EquipmentNode>(`equipment/${id}/subtree`, undefined, signal), [id]);
  // The whole forest only when editing (the parent picker needs it).
  const forest = useAsync(
    (signal) => (editing ? get<EquipmentNode[]>("equipment/tree", undefined, signal) : Promise.resolve(undefined)),
    [editing],
  );
  useEffect(() => setEditing(false), [id]);

  if (asset.loading && !asset.data) return <Loading what="Loading asset" />;
  if (asset.error || !asset.data) return <ErrorBox error={asset.error ?? "Asset not found"} onRetry={asset.reload} />;
  const a = asset.data;
  const parents = (path.data ?? []).filter((p) => p.id !== a.id);
  const children = subtree.data?.children ?? [];

  return (
    <div className="assets-page asset-page">
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/equipment">Equipment</Link>
        {parents.map((p) => (
          <span key={p.id}>
            {" › "}
            <Link to={`/equipment/${p.id}`}>{p.name}</Link>
          </span>
        ))}
        <span aria-current="page">
          {" › "}
          {a.name}
        </span>
      </nav>
      <PageHeader
        title={
          <>
            <span className="mono tag-title">{a.assetTag}</span> {a.name}
          </>
        }
        sub={
          <span className="row">
            <Badge value={a.criticality} title="Criticality" />
            <Badge value={a.status} />
            {a.location && <span>{a.location}</span>}
          </span>
        }
      >
        {can("work_orders:create") && (
          <Link className="btn" to={`/request?asset=${a.id}`}>
            Report a problem
          </Link>
        )}
        {can("equipment:create") && (
          <Link className="btn" to={`/equipment?new=1&parent=${a.id}`}>
            Add sub-asset
          </Link>
        )}
        {can("equipment:update") && !editing && (
          <button type="button" className="btn primary" onClick={() => setEditing(true)}>
            Edit
          </button>
        )}
      </PageHeader>

      {editing && (
        <Card title="Edit asset">
          {forest.data ? (
            <EquipmentForm
              forest={forest.data}
              existing={a}
              onCancel={() => setEditing(false)}
              onDone={(saved) => {
                asset.setData(() => saved);
                setEditing(false);
                subtree.reload();
              }}
            />
          ) : forest.error ? (
            <ErrorBox error={forest.error} onRetry={forest.reload} />
          ) : (
            <Loading />
          )}
        </Card>
      )}

      <div className="asset-top">
        <Card title="Details">
          <dl className="props">
            <dt>Asset tag</dt>
            <dd className="mono">{a.assetTag}</dd>
            <dt>Location</dt>
            <dd>{a.location || "—"}</dd>
            <dt>Criticality</dt>
            <dd>
              <Badge value={a.criticality} />
            </dd>
            <dt>Status</dt>
            <dd>
              <Badge value={a.status} />
            </dd>
            <dt>Part of</dt>
            <dd>{parents.length ? <Link to={`/equipment/${parents[parents.length - 1].id}`}>{parents[parents.length - 1].name}</Link> : "— (top level)"}</dd>
            {a.description && (
              <>
                <dt>Description</dt>
                <dd className="pre">{a.description}</dd>
              </>
            )}
            <dt>Registered</dt>
            <dd>{fmtTime(a.createdAt)}</dd>
          </dl>
          {children.length > 0 && (
            <div className="subassets">
              <h3>Sub-assets ({children.length})</h3>
              <ul>
                {children.map((c) => (
                  <li key={c.id}>
                    <Link to={`/equipment/${c.id}`}>
                      <span className="mono">{c.assetTag}</span> {c.name}
                    </Link>{" "}
                    <Badge value={c.criticality} />
                    {c.children.length > 0 && <span className="muted small"> +{c.children.length} below</span>}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </Card>
        {can("reports:view") && <Reliability id={a.id} />}
        <QrLabel asset={a} />
      </div>

      {can("sensors:view") && <Sensors equipmentId={a.id} canReadings={can("readings:view")} />}
      <WorkOrders equipmentId={a.id} />
      {can("anomalies:view") && <Anomalies equipmentId={a.id} />}
    </div>
  );
}

function Reliability({ id }: { id: string }) {
  const [days, setDays] = useState(30);
  const report = useAsync(
    (signal) => {
      const to = new Date();
      const from = new Date(to.getTime() - days * 86400_000);
      return get<ReliabilityReport>("reports/reliability", { from: from.toISOString(), to: to.toISOString() }, signal);
    },
    [days],
  );
  const r = report.data?.assets.find((x) => x.equipmentId === id);
  return (
    <Card
      title="Reliability"
      actions={
        <select aria-label="Reliability period" value={days} onChange={(e) => setDays(Number(e.target.value))}>
          <option value={30}>Last 30 days</option>
          <option value={90}>Last 90 days</option>
          <option value={365}>Last year</option>
        </select>
      }
    >
      {report.error ? (
        <ErrorBox error={report.error} onRetry={report.reload} />
      ) : !report.data ? (
        <Loading />
      ) : !r ? (
        <Empty>No maintenance recorded in this period.</Empty>
      ) : (
        <div className="rel-grid" data-testid="reliability">
          <Stat label="MTBF" value={hoursText(r.mtbfHours)} title="Mean time between failures" />
          <Stat label="MTTR" value={hoursText(r.mttrHours)} title="Mean time to repair" />
          <Stat label="Availability" value={`${(r.availability * 100).toFixed(1)} %`} />
          <Stat label="Failures" value={String(r.failures)} />
          <Stat label="Open / overdue" value={`${r.openWorkOrders} / ${r.overdueWorkOrders}`} />
          <Stat label="Labour" value={`${(r.labourMinutes / 60).toFixed(1)} h`} />
          <Stat label="Parts cost" value={fmtMoney(r.partsCostCents)} />
        </div>
      )}
    </Card>
  );
}

function Stat({ label, value, title }: { label: string; value: string; title?: string }) {
  return (
    <div className="stat" title={title}>
      <span className="value">{value}</span>
      <span className="label">{label}</span>
    </div>
  );
}

function QrLabel({ asset }: { asset: Equipment }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let made: string | null = null;
    let live = true;
    setUrl(null);
    setError(null);
    objectUrl(`equipment/${asset.id}/qr.svg`)
      .then((u) => {
        made = u;
        if (live) setUrl(u);
        else URL.revokeObjectURL(u);
      })
      .catch((e) => live && setError(e));
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [asset.id, asset.name]);
  return (
    <Card
      title="QR label"
      className="qr-card"
      actions={
        <button type="button" className="btn small" onClick={() => window.print()} disabled={!url}>
          Print label
        </button>
      }
    >
      {error ? (
        <ErrorBox error={error} />
      ) : url ? (
        <div className="qr-print" data-testid="qr-label">
          <img src={url} alt={`QR code of ${asset.assetTag}`} className="qr-img" />
        </div>
      ) : (
        <Loading />
      )}
      <p className="muted small no-print">Scanning it opens the request form for this asset.</p>
    </Card>
  );
}

function Sensors({ equipmentId, canReadings }: { equipmentId: string; canReadings: boolean }) {
  const sensors = useAsync((signal) => get<Sensor[]>("sensors", { equipmentId }, signal), [equipmentId]);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = window.setInterval(() => setTick((x) => x + 1), 30_000);
    return () => window.clearInterval(t);
  }, []);
  const latest = useAsync(
    (signal) => (canReadings ? get<LatestValue[]>("sensors/latest", { equipmentId }, signal) : Promise.resolve([])),
    [equipmentId, canReadings, tick],
  );
  const ids = useMemo(() => (sensors.data ?? []).map((s) => s.id), [sensors.data]);
  const trends = useAsync(
    async (signal) => {
      const out = new Map<string, number[]>();
      if (!canReadings || ids.length === 0) return out;
      const to = new Date();
      const from = new Date(to.getTime() - 3600_000);
      for (let i = 0; i < ids.length; i += 20) {
        const chunk = ids.slice(i, i + 20);
        const series = await get<TrendSeries[]>(
          "readings",
          { sensorIds: chunk.join(","), from: from.toISOString(), to: to.toISOString(), maxPoints: 60 },
          signal,
        );
        series.forEach((s) => out.set(s.sensorId, s.buckets.map((b) => b.avg)));
      }
      return out;
    },
    [ids.join(","), canReadings, tick],
  );
  const byId = new Map((latest.data ?? []).map((l) => [l.sensorId, l]));
  const list = sensors.data ?? [];
  return (
    <Card
      title={`Sensors${list.length ? ` (${list.length})` : ""}`}
      actions={
        canReadings && list.length > 0 ? (
          <Link className="btn small" to={`/trends?s=${ids.slice(0, 20).join(",")}`}>
            Open in trend explorer
          </Link>
        ) : undefined
      }
    >
      <Listing
        of={sensors}
        loadingText="Loading sensors"
        isEmpty={list.length === 0}
        empty="No sensors on this asset."
        errorInPlace
      >
        <Table label="Sensors" columns={["Sensor", { label: "Latest", className: "num" }, "Last hour", { label: "Range", className: "hide-phone" }, { label: "Updated", className: "hide-phone" }]}>
          {list.map((s) => {
            const l = byId.get(s.id);
            const values = trends.data?.get(s.id) ?? [];
            const out =
              l?.value != null && ((s.minValue != null && l.value < s.minValue) || (s.maxValue != null && l.value > s.maxValue));
            return (
              <tr key={s.id} data-testid={`sensor-${s.metric}`}>
                <td>
                  <Link to={`/trends?s=${s.id}`}>{s.name}</Link>
                  <div className="muted small mono">{s.metric}</div>
                </td>
                <td className={`num latest${out ? " out-of-range" : ""}`}>
                  {l?.value != null ? (
                    <>
                      <strong>{fmtNumber(l.value)}</strong> <span className="muted">{s.unit}</span>
                    </>
                  ) : (
                    <span className="muted">no data</span>
                  )}
                </td>
                <td>{canReadings ? <Sparkline values={values} width={140} height={30} /> : <span className="muted">—</span>}</td>
                <td className="muted small hide-phone">
                  {s.minValue != null || s.maxValue != null ? `${fmtNumber(s.minValue)} … ${fmtNumber(s.maxValue)} ${s.unit}` : "—"}
                </td>
                <td className="muted small hide-phone">{fmtAgo(l?.ts)}</td>
              </tr>
            );
          })}
        </Table>
      </Listing>
    </Card>
  );
}

function WoTable({ items, label }: { items: WorkOrder[]; label: string }) {
  return (
    <div className="table-wrap">
      <table className="list" aria-label={label}>
        <thead>
          <tr>
            <th>Code</th>
            <th>Title</th>
            <th>Status</th>
            <th>Priority</th>
            <th className="hide-phone">Kind</th>
            <th className="hide-phone">{label === "Open work orders" ? "Due" : "Completed"}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((w) => (
            <tr key={w.id} data-testid={`wo-${w.code}`}>
              <td className="mono">
                <Link to={`/work-orders/${w.id}`}>{w.code}</Link>
              </td>
              <td>
                <Link to={`/work-orders/${w.id}`}>{w.title}</Link>
                {w.source === "auto" && <span className="badge badge-auto">auto</span>}
              </td>
              <td>
                <Badge value={w.status} />
              </td>
              <td>
                <Badge value={w.priority} />
              </td>
              <td className="hide-phone">{humanize(w.kind)}</td>
              <td className="muted hide-phone">{label === "Open work orders" ? fmtTime(w.dueAt) : fmtTime(w.completedAt ?? w.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function WorkOrders({ equipmentId }: { equipmentId: string }) {
  // Active work is few: load it whole; history pages on.
  const active = useAsync(
    async (signal) => {
      const pages = await Promise.all(
        ACTIVE_WO.map((status) => getPage<WorkOrder>("work-orders", { equipmentId, status, limit: 100 }, signal)),
      );
      return pages.flatMap((p) => p.items).sort((x, y) => y.createdAt.localeCompare(x.createdAt));
    },
    [equipmentId],
  );
  const history = usePaged<WorkOrder>("work-orders", { equipmentId }, 30);
  useLiveEvents(["work_order."], (e) => {
    const p = e.payload as { equipmentId?: string | null } | null;
    if (p?.equipmentId === equipmentId) active.reload();
  });
  const closed = history.items.filter((w) => !ACTIVE_WO.includes(w.status));
  return (
    <>
      <Card title={`Open work orders${active.data ? ` (${active.data.length})` : ""}`}>
        {active.error ? (
          <ErrorBox error={active.error} onRetry={active.reload} />
        ) : !active.data ? (
          <Loading />
        ) : active.data.length === 0 ? (
          <Empty>No open work on this asset.</Empty>
        ) : (
          <WoTable items={active.data} label="Open work orders" />
        )}
      </Card>
      <Card title="Maintenance history">
        <Listing
          of={history}
          isEmpty={closed.length === 0 && !history.hasMore}
          empty="No completed or cancelled work yet."
          errorInPlace
        >
          <WoTable items={closed} label="Closed work orders" />
        </Listing>
        <LoadMore hasMore={history.hasMore} loading={history.loading} onClick={history.loadMore} />
      </Card>
    </>
  );
}

function Anomalies({ equipmentId }: { equipmentId: string }) {
  const list = usePaged<Anomaly>("anomalies", { equipmentId }, 20);
  useLiveEvents(["anomaly."], (e) => {
    const p = e.payload as Partial<Anomaly> | null;
    if (p?.equipmentId === equipmentId) list.reload();
  });
  const open = list.items.filter((x) => x.status === "open").length;
  return (
    <Card title={`Anomalies${open ? ` — ${open} open` : ""}`}>
      <Listing
        of={list}
        isEmpty={list.items.length === 0}
        empty="No anomalies recorded on this asset."
        errorInPlace
      >
        <Table label="Anomalies" columns={["Started", "Kind", "Severity", "Status", { label: "Peak", className: "num hide-phone" }, { label: "Ended", className: "hide-phone" }, "Work order"]}>
          {list.items.map((x) => (
            <tr key={x.id} className={x.status === "open" ? "is-open" : undefined}>
              <td>
                <Link to={`/anomalies/${x.id}`}>{fmtTime(x.startedAt)}</Link>
              </td>
              <td>{humanize(x.kind)}</td>
              <td>
                <Badge value={x.severity} />
              </td>
              <td>
                <Badge value={x.status} />
              </td>
              <td className="num hide-phone">{fmtNumber(x.peakValue)}</td>
              <td className="muted hide-phone">{x.endedAt ? fmtTime(x.endedAt) : "—"}</td>
              <td>{x.workOrderId ? <Link to={`/work-orders/${x.workOrderId}`}>Open</Link> : <span className="muted">—</span>}</td>
            </tr>
          ))}
        </Table>
      </Listing>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </Card>
  );
}
