// The work-order list (/work-orders/list): a filterable, paged table with
// CSV export of everything the filters match. Filters live in the URL.
import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { download, type Query } from "../../api";
import { useAuth } from "../../auth";
import { fmtTime, humanize } from "../../format";
import { useLiveEvents } from "../../live";
import { Badge, Empty, ErrorBox, LoadMore, Loading, Options, PageHeader } from "../../ui/common";
import { usePaged } from "../../ui/hooks";
import { useQueryState, useSearchText } from "../../ui/useQueryState";
import { NewWorkOrderLink, useEquipment, useStatusMachine, useUsers, userName } from "./shared";
import { KINDS, PRIORITIES, SOURCES, type WorkOrder } from "./types";

const KEYS = ["status", "priority", "kind", "source", "assignee", "q"] as const;

export function WorkOrderList() {
  const { me } = useAuth();
  const [f, setParams] = useQueryState(KEYS, (p) => "q" in p);
  const machine = useStatusMachine();
  const { users, byId } = useUsers();
  const equipment = useEquipment();
  // The search box follows the URL (back button) and writes to it once typing pauses.
  const [search, setSearch] = useSearchText(f.q, (text) => set("q", text));
  const [exporting, setExporting] = useState<unknown>(null);

  const set = (k: (typeof KEYS)[number], v: string) => setParams({ [k]: v });

  const query = useMemo<Query>(
    () => ({
      status: f.status,
      priority: f.priority,
      kind: f.kind,
      source: f.source,
      q: f.q,
      assignedTo: f.assignee === "me" ? me?.user.id : f.assignee,
    }),
    [f.status, f.priority, f.kind, f.source, f.q, f.assignee, me?.user.id],
  );
  const list = usePaged<WorkOrder>("work-orders", query, 50);
  // Others' changes: refresh the list, at most every 2 s (the fleet raises work orders in bursts).
  const [stale, setStale] = useState(0);
  useLiveEvents(["work_order.created", "work_order.updated"], () => setStale((n) => n + 1));
  useEffect(() => {
    if (!stale) return;
    const t = setTimeout(list.reload, 2000);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stale]);

  const exportCsv = async () => {
    setExporting(null);
    try {
      await download("work-orders/export.csv", `work-orders-${new Date().toISOString().slice(0, 10)}.csv`, query);
    } catch (e) {
      setExporting(e);
    }
  };

  const filtered = KEYS.some((k) => f[k]);
  return (
    <div>
      <PageHeader title="Work orders" sub="Every work order, newest first.">
        <Link className="btn" to="/work-orders">
          Board view
        </Link>
        <button type="button" className="btn" onClick={() => void exportCsv()}>
          Export CSV
        </button>
        <NewWorkOrderLink />
      </PageHeader>
      <div className="filters" role="search">
        <select aria-label="Status" value={f.status} onChange={(e) => set("status", e.target.value)}>
          <option value="">Any status</option>
          {(machine.data ?? []).map((s) => (
            <option key={s.status} value={s.status}>
              {humanize(s.status)}
            </option>
          ))}
        </select>
        <select aria-label="Priority" value={f.priority} onChange={(e) => set("priority", e.target.value)}>
          <Options values={PRIORITIES} any="Any priority" />
        </select>
        <select aria-label="Kind" value={f.kind} onChange={(e) => set("kind", e.target.value)}>
          <Options values={KINDS} any="Any kind" />
        </select>
        <select aria-label="Source" value={f.source} onChange={(e) => set("source", e.target.value)}>
          <Options values={SOURCES} any="Auto and manual" />
        </select>
        <select aria-label="Assignee" value={f.assignee} onChange={(e) => set("assignee", e.target.value)}>
          <option value="">Anyone</option>
          <option value="me">Assigned to me</option>
          {users
            .filter((u) => u.id !== me?.user.id && u.role !== "requester")
            .map((u) => (
              <option key={u.id} value={u.id}>
                {u.name}
              </option>
            ))}
        </select>
        <input type="search" aria-label="Search work orders" placeholder="Search title or description" value={search} onChange={(e) => setSearch(e.target.value)} />
        {filtered && (
          <button type="button" className="btn small" onClick={() => setParams(Object.fromEntries(KEYS.map((k) => [k, ""])), false)}>
            Clear filters
          </button>
        )}
      </div>
      <ErrorBox error={exporting} />
      <ErrorBox error={list.error} onRetry={list.reload} />
      <div className="table-wrap wo-table-wrap">
        <table className="list" data-testid="wo-table">
          <thead>
            <tr>
              <th>Code</th>
              <th>Title</th>
              <th>Status</th>
              <th>Priority</th>
              <th>Kind</th>
              <th>Source</th>
              <th>Asset</th>
              <th>Assignees</th>
              <th>Due</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((wo) => (
              <tr key={wo.id} data-testid={`wo-row-${wo.code}`}>
                <td>
                  <Link to={`/work-orders/${wo.id}`} className="mono">
                    {wo.code}
                  </Link>
                </td>
                <td>
                  <Link to={`/work-orders/${wo.id}`}>{wo.title}</Link>
                </td>
                <td>
                  <Badge value={wo.status} />
                </td>
                <td>
                  <Badge value={wo.priority} />
                </td>
                <td>{humanize(wo.kind)}</td>
                <td>
                  {humanize(wo.source)}
                  {wo.source === "auto" && wo.occurrenceCount > 1 ? ` ×${wo.occurrenceCount}` : ""}
                </td>
                <td>{wo.equipmentId ? (equipment.byId.get(wo.equipmentId)?.name ?? "—") : "—"}</td>
                <td>{wo.assignees.length ? wo.assignees.map((id) => userName(byId, id)).join(", ") : <span className="muted">—</span>}</td>
                <td>{fmtTime(wo.dueAt)}</td>
                <td>{fmtTime(wo.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.loading && !list.items.length && <Loading />}
        {!list.loading && !list.items.length && !list.error && <Empty>{filtered ? "No work orders match these filters." : "No work orders yet."}</Empty>}
      </div>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </div>
  );
}
