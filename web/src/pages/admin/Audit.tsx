// The audit log: who changed what and when, paged, filtered by table, row, person and time range; each change expands to a field diff.
import { useMemo } from "react";
import { getAll } from "../../api";
import { Badge, Listing, LoadMore, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync, usePaged } from "../../ui/hooks";
import { fmtTime, humanize } from "../../format";
import { useQueryState } from "../../ui/useQueryState";
import { AUDIT_TABLES, type AuditEntry, type User } from "./types";

/** A date input's day as an ISO instant (local midnight), `endOfDay` for the exclusive end. */
function dayToIso(day: string, endOfDay = false): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (endOfDay) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

function show(v: unknown): string {
  if (v === undefined) return "";
  if (v === null) return "null";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** The fields that differ between before and after (all fields for inserts and deletes). */
function changedFields(e: AuditEntry): string[] {
  const b = e.before ?? {};
  const a = e.after ?? {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const ignore = new Set(["updated_at", "updatedAt"]);
  return keys.filter((k) => !ignore.has(k) && show(b[k]) !== show(a[k]));
}

export function AuditPage() {
  const [q, setQ] = useQueryState(["table", "rowId", "actor", "from", "to"] as const);
  const users = useAsync(() => getAll<User>("users", {}, 1000), []);
  const names = useMemo(() => new Map((users.data ?? []).map((u) => [u.id, u.name])), [users.data]);
  const list = usePaged<AuditEntry>(
    "audit-log",
    {
      table: q.table || undefined,
      rowId: q.rowId || undefined,
      actorUserId: q.actor || undefined,
      from: dayToIso(q.from),
      to: dayToIso(q.to, true),
    },
    50,
  );
  const filtered = Boolean(q.table || q.rowId || q.actor || q.from || q.to);
  return (
    <>
      <PageHeader title="Audit log" sub="Every write to the organization's data, newest first (secrets removed)" />
      <div className="filters">
        <input
          list="audit-tables"
          aria-label="Table"
          placeholder="Table (e.g. work_orders)"
          value={q.table}
          onChange={(e) => setQ({ table: e.target.value.trim() })}
        />
        <datalist id="audit-tables">
          {AUDIT_TABLES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <input aria-label="Row id" placeholder="Row id" value={q.rowId} onChange={(e) => setQ({ rowId: e.target.value.trim() })} />
        <select aria-label="Changed by" value={q.actor} onChange={(e) => setQ({ actor: e.target.value })}>
          <option value="">Anyone (people and services)</option>
          {(users.data ?? []).map((u) => (
            <option key={u.id} value={u.id}>
              {u.name}
            </option>
          ))}
        </select>
        <label className="row">
          <span className="muted">From</span>
          <input type="date" aria-label="From" value={q.from} onChange={(e) => setQ({ from: e.target.value })} />
        </label>
        <label className="row">
          <span className="muted">To</span>
          <input type="date" aria-label="To" value={q.to} onChange={(e) => setQ({ to: e.target.value })} />
        </label>
        {filtered && (
          <button type="button" className="btn small" onClick={() => setQ({ table: "", rowId: "", actor: "", from: "", to: "" })}>
            Clear filters
          </button>
        )}
      </div>
      <Listing
        of={list}
        loadingText="Loading the audit log"
        isEmpty={list.items.length === 0}
        empty={filtered ? "No changes match these filters." : "No changes recorded yet."}
      >
        <Table label="Audit log" stack columns={["When", "Who", "Action", "Table", "Row", "Changes"]}>
          {list.items.map((e) => {
            const fields = changedFields(e);
            return (
              <tr key={e.id} data-testid="audit-row">
                <td data-label="When">{fmtTime(e.changedAt)}</td>
                <td data-label="Who">
                  {e.actorUserId ? (
                    <button type="button" className="btn small" title="Only this person's changes" onClick={() => setQ({ actor: e.actorUserId ?? "" })}>
                      {names.get(e.actorUserId) ?? e.actor}
                    </button>
                  ) : (
                    <span className="muted">{humanize(e.actor)}</span>
                  )}
                </td>
                <td data-label="Action">
                  <Badge value={e.action} />
                </td>
                <td data-label="Table">
                  <button type="button" className="btn small" title="Only this table" onClick={() => setQ({ table: e.tableName })}>
                    {e.tableName}
                  </button>
                </td>
                <td data-label="Row">
                  {e.rowId ? (
                    <button
                      type="button"
                      className="btn small mono"
                      title="History of this row"
                      onClick={() => setQ({ table: e.tableName, rowId: e.rowId ?? "" })}
                    >
                      {e.rowId.length > 13 ? `${e.rowId.slice(0, 8)}…` : e.rowId}
                    </button>
                  ) : (
                    "—"
                  )}
                </td>
                <td data-label="Changes">
                  {fields.length === 0 ? (
                    <span className="muted">no visible change</span>
                  ) : (
                    <details>
                      <summary>
                        {fields.slice(0, 4).join(", ")}
                        {fields.length > 4 ? ` +${fields.length - 4}` : ""}
                      </summary>
                      <table className="diff">
                        <thead>
                          <tr>
                            <th>Field</th>
                            {e.before && <th>Before</th>}
                            {e.after && <th>After</th>}
                          </tr>
                        </thead>
                        <tbody>
                          {fields.map((f) => (
                            <tr key={f}>
                              <td>{f}</td>
                              {e.before && <td className="old">{show(e.before[f])}</td>}
                              {e.after && <td className="new">{show(e.after[f])}</td>}
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </details>
                  )}
                </td>
              </tr>
            );
          })}
        </Table>
      </Listing>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </>
  );
}
