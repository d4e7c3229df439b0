// The anomaly list ("/anomalies"): filters in the URL (status, severity, kind, asset, sensor; all applied by the API), cursor pages, live.
import { useMemo } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { get } from "../../api";
import { useAuth } from "../../auth";
import { useLiveEvents } from "../../live";
import { fmtAgo, fmtDuration, fmtNumber, fmtTime, humanize } from "../../format";
import { Badge, Empty, ErrorBox, LoadMore, Loading, PageHeader } from "../../ui/common";
import { useAsync, usePaged } from "../../ui/hooks";
import { KINDS, SEVERITIES, equipmentMap, sec, type Anomaly, type Equipment, type Sensor } from "./shared";

export function AnomalyList() {
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const severity = params.get("severity") ?? "";
  const kind = params.get("kind") ?? "";
  const equipmentId = params.get("asset") ?? "";
  const sensorId = params.get("sensor") ?? "";

  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    if (k === "asset") next.delete("sensor");
    setParams(next, { replace: false });
  };

  const equipment = useAsync(() => (can("equipment:view") ? equipmentMap() : Promise.resolve(new Map<string, Equipment>())), []);
  const sensors = useAsync((signal) => (can("sensors:view") ? get<Sensor[]>("sensors", undefined, signal) : Promise.resolve([] as Sensor[])), []);
  const sensorById = useMemo(() => new Map((sensors.data ?? []).map((s) => [s.id, s])), [sensors.data]);
  const assetsWithSensors = useMemo(() => {
    const ids = new Set((sensors.data ?? []).map((s) => s.equipmentId));
    return [...ids].map((id) => ({ id, name: equipment.data?.get(id)?.name ?? id.slice(0, 8) })).sort((a, b) => a.name.localeCompare(b.name));
  }, [sensors.data, equipment.data]);

  const list = usePaged<Anomaly>("anomalies", { status, severity, kind, equipmentId, sensorId }, 50);
  useLiveEvents(["anomaly."], () => list.reload());
  const rows = list.items;

  return (
    <div>
      <PageHeader title="Anomalies" sub="Episodes found by analytics, newest first." />
      <div className="filters" role="search">
        <label className="mon-filter">
          <span>Status</span>
          <select aria-label="Status" value={status} onChange={(e) => set("status", e.target.value)}>
            <option value="">Any</option>
            <option value="open">Open</option>
            <option value="closed">Closed</option>
          </select>
        </label>
        <label className="mon-filter">
          <span>Severity</span>
          <select aria-label="Severity" value={severity} onChange={(e) => set("severity", e.target.value)}>
            <option value="">Any</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {humanize(s)}
              </option>
            ))}
          </select>
        </label>
        <label className="mon-filter">
          <span>Kind</span>
          <select aria-label="Kind" value={kind} onChange={(e) => set("kind", e.target.value)}>
            <option value="">Any</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {humanize(k)}
              </option>
            ))}
          </select>
        </label>
        <label className="mon-filter">
          <span>Asset</span>
          <select aria-label="Asset" value={equipmentId} onChange={(e) => set("asset", e.target.value)}>
            <option value="">Any</option>
            {assetsWithSensors.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <label className="mon-filter">
          <span>Sensor</span>
          <select aria-label="Sensor" value={sensorId} onChange={(e) => set("sensor", e.target.value)}>
            <option value="">Any</option>
            {(sensors.data ?? [])
              .filter((s) => !equipmentId || s.equipmentId === equipmentId)
              .map((s) => (
                <option key={s.id} value={s.id}>
                  {equipmentId ? s.name : `${equipment.data?.get(s.equipmentId)?.name ?? ""} · ${s.name}`}
                </option>
              ))}
          </select>
        </label>
        {[...params.keys()].length > 0 && (
          <button type="button" className="btn small" onClick={() => setParams(new URLSearchParams())}>
            Clear filters
          </button>
        )}
      </div>
      <ErrorBox error={list.error} onRetry={list.reload} />
      {list.loading && list.items.length === 0 ? (
        <Loading what="Loading anomalies" />
      ) : rows.length === 0 ? (
        <Empty>No anomalies match these filters.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="list mon-anomaly-table">
            <thead>
              <tr>
                <th>Severity</th>
                <th>Kind</th>
                <th>Asset · sensor</th>
                <th>Started</th>
                <th>Duration</th>
                <th className="num">Peak</th>
                <th className="num">Score</th>
                <th>Status</th>
                <th>Work order</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => {
                const s = sensorById.get(a.sensorId);
                const end = a.endedAt ? sec(a.endedAt) : Date.now() / 1000;
                return (
                  <tr key={a.id} data-testid="anomaly-row">
                    <td>
                      <Badge value={a.severity} />
                    </td>
                    <td>
                      <Link to={`/anomalies/${a.id}`}>{humanize(a.kind)}</Link>
                    </td>
                    <td>
                      {equipment.data?.get(a.equipmentId)?.name ?? "Asset"} · {s?.name ?? "sensor"}
                    </td>
                    <td title={fmtTime(a.startedAt)}>{fmtAgo(a.startedAt)}</td>
                    <td>{fmtDuration(end - sec(a.startedAt))}</td>
                    <td className="num">
                      {fmtNumber(a.peakValue)} {s?.unit}
                    </td>
                    <td className="num">{fmtNumber(a.score)}</td>
                    <td>
                      <Badge value={a.status} />
                      {a.verdict && <span className="muted small"> {humanize(a.verdict)}</span>}
                    </td>
                    <td>
                      {a.workOrderId ? (
                        <Link to={`/work-orders/${a.workOrderId}`}>Work order</Link>
                      ) : a.suppressedReason ? (
                        <span className="muted">{humanize(a.suppressedReason)}</span>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </div>
  );
}
