// Sections of the work-order detail page: checklist, comments, time logs,
// attachments, parts, downtime and the history (status steps with their
// notes, plus comments, time logs and attachments).
import { useState } from "react";
import { del, download, get, getPage, patch, post, postForm, put } from "../../api";
import { useAuth } from "../../auth";
import { fmtDuration, fmtNumber, fmtTime, humanize } from "../../format";
import type { User } from "../../types";
import { Card, Empty, ErrorBox, Loading } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import { fieldMap, userName } from "./shared";
import {
  DOWNTIME_REASONS,
  type Attachment,
  type ChecklistItem,
  type Comment,
  type Downtime,
  type DowntimeReason,
  type Part,
  type StockLocation,
  type TimeSheet,
  type WorkOrder,
  type WorkOrderParts,
} from "./types";

interface SectionProps {
  wo: WorkOrder;
  tick: number;
  users: Map<string, User>;
}

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function ChecklistSection({ wo, tick, users, active, onChange }: SectionProps & { active: boolean; onChange: () => void }) {
  const { can } = useAuth();
  const list = useAsync((s) => get<ChecklistItem[]>(`work-orders/${wo.id}/checklist`, undefined, s), [wo.id, tick]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [label, setLabel] = useState("");
  const [noteFor, setNoteFor] = useState<string | null>(null);
  const [note, setNote] = useState("");
  const may = can("work_orders:update") && active;
  const items = list.data ?? [];

  const tickItem = async (item: ChecklistItem, done: boolean, withNote?: string) => {
    setBusy(item.id);
    setError(null);
    try {
      const updated = await post<ChecklistItem>(`work-orders/${wo.id}/checklist/${item.id}`, withNote === undefined ? { done } : { done, note: withNote });
      list.setData((old) => old?.map((x) => (x.id === item.id ? updated : x)));
      setNoteFor(null);
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const addItem = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!label.trim()) return;
    setError(null);
    try {
      const next = await put<ChecklistItem[]>(`work-orders/${wo.id}/checklist`, {
        items: [...items.map((i) => ({ id: i.id, label: i.label, required: i.required })), { label: label.trim(), required: true }],
      });
      list.setData(() => next);
      setLabel("");
    } catch (err) {
      setError(err);
    }
  };
  const done = items.filter((i) => i.done).length;
  return (
    <Card title={`Checklist${items.length ? ` (${done}/${items.length})` : ""}`}>
      <ErrorBox error={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Loading />}
      {list.data && !items.length && <p className="muted">No checklist.</p>}
      <ul className="wo-list" data-testid="wo-checklist">
        {items.map((item) => (
          <li key={item.id}>
            <label className={`wo-check-item${item.done ? " done" : ""}`}>
              <input type="checkbox" checked={item.done} disabled={!may || busy === item.id} onChange={(e) => void tickItem(item, e.target.checked)} />
              <span>
                <span className="wo-check-label">{item.label}</span> {item.required && <span className="badge">Required</span>}
                {item.done && (
                  <span className="muted" style={{ display: "block", fontSize: "0.8rem" }}>
                    Done by {userName(users, item.doneBy, "someone")} · {fmtTime(item.doneAt)}
                  </span>
                )}
                {item.note && <span style={{ display: "block" }}>Result: {item.note}</span>}
              </span>
            </label>
            {may && noteFor !== item.id && (
              <button
                type="button"
                className="btn small"
                style={{ marginLeft: 32, marginTop: 4 }}
                onClick={() => {
                  setNoteFor(item.id);
                  setNote(item.note);
                }}
              >
                {item.note ? "Edit result" : "Add result"}
              </button>
            )}
            {noteFor === item.id && (
              <form
                className="wo-form-row"
                style={{ marginLeft: 32, marginTop: 6 }}
                onSubmit={(e) => {
                  e.preventDefault();
                  void tickItem(item, item.done, note);
                }}
              >
                <input aria-label={`Result of ${item.label}`} value={note} onChange={(e) => setNote(e.target.value)} style={{ flex: 1 }} />
                <button type="submit" className="btn small primary">
                  Save
                </button>
                <button type="button" className="btn small" onClick={() => setNoteFor(null)}>
                  Cancel
                </button>
              </form>
            )}
          </li>
        ))}
      </ul>
      <ErrorBox error={error} />
      {may && (
        <form className="wo-form-row" onSubmit={addItem} style={{ marginTop: 8 }}>
          <input aria-label="New checklist item" placeholder="New checklist item" value={label} onChange={(e) => setLabel(e.target.value)} style={{ flex: 1 }} />
          <button type="submit" className="btn" disabled={!label.trim()}>
            Add item
          </button>
        </form>
      )}
    </Card>
  );
}

export function CommentsSection({ wo, tick, users }: SectionProps) {
  const list = useAsync((s) => get<Comment[]>(`work-orders/${wo.id}/comments`, undefined, s), [wo.id, tick]);
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!body.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const c = await post<Comment>(`work-orders/${wo.id}/comments`, { body: body.trim() });
      list.setData((old) => (old?.some((x) => x.id === c.id) ? old : [...(old ?? []), c]));
      setBody("");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const comments = list.data ?? [];
  return (
    <Card title={`Comments${comments.length ? ` (${comments.length})` : ""}`}>
      <ErrorBox error={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Loading />}
      <ul className="wo-list" data-testid="wo-comments">
        {comments.map((c) => (
          <li key={c.id}>
            <div className="wo-comment-head">
              <strong>{c.authorId ? userName(users, c.authorId) : "Analytics"}</strong>
              <time dateTime={c.createdAt}>{fmtTime(c.createdAt)}</time>
            </div>
            <div className="wo-comment-body">{c.body}</div>
          </li>
        ))}
        {list.data && !comments.length && <li className="muted">No comments yet.</li>}
      </ul>
      <form onSubmit={submit} style={{ marginTop: 8 }}>
        <label className={`field${fieldMap(error).body ? " has-error" : ""}`}>
          <span className="label">Comment</span>
          <textarea value={body} onChange={(e) => setBody(e.target.value)} rows={3} placeholder="What did you find or do?" />
          {fieldMap(error).body && <span className="field-error">{fieldMap(error).body}</span>}
        </label>
        {error && !fieldMap(error).body ? <ErrorBox error={error} /> : null}
        <button type="submit" className="btn primary" disabled={busy || !body.trim()}>
          {busy ? "Posting…" : "Add comment"}
        </button>
      </form>
    </Card>
  );
}

export function TimeSection({ wo, tick, users }: SectionProps) {
  const { can } = useAuth();
  const sheet = useAsync((s) => get<TimeSheet>(`work-orders/${wo.id}/time-logs`, undefined, s), [wo.id, tick]);
  const [minutes, setMinutes] = useState("");
  const [day, setDay] = useState(today());
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errors = fieldMap(error);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post(`work-orders/${wo.id}/time-logs`, { minutes: Number(minutes), performedOn: day || undefined, note: note.trim() });
      setMinutes("");
      setNote("");
      sheet.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const entries = sheet.data?.entries ?? [];
  return (
    <Card title={`Time${sheet.data ? ` · ${fmtDuration((sheet.data.totalMinutes ?? 0) * 60)} total` : ""}`}>
      <ErrorBox error={sheet.error} onRetry={sheet.reload} />
      {sheet.loading && !sheet.data && <Loading />}
      <ul className="wo-list" data-testid="wo-time-logs">
        {entries.map((t) => (
          <li key={t.id}>
            <strong>{fmtDuration(t.minutes * 60)}</strong> · {userName(users, t.userId)} · {t.performedOn}
            {t.note && <div className="muted">{t.note}</div>}
          </li>
        ))}
        {sheet.data && !entries.length && <li className="muted">No time logged yet.</li>}
      </ul>
      {can("work_orders:update") && (
        <form onSubmit={submit} className="wo-form-row" style={{ marginTop: 8 }}>
          <label className={`field${errors.minutes ? " has-error" : ""}`} style={{ width: 110 }}>
            <span className="label">Minutes</span>
            <input type="number" min={1} max={1440} inputMode="numeric" value={minutes} onChange={(e) => setMinutes(e.target.value)} />
            {errors.minutes && <span className="field-error">{errors.minutes}</span>}
          </label>
          <label className={`field${errors.performedOn ? " has-error" : ""}`}>
            <span className="label">Date</span>
            <input type="date" value={day} onChange={(e) => setDay(e.target.value)} />
            {errors.performedOn && <span className="field-error">{errors.performedOn}</span>}
          </label>
          <label className={`field${errors.note ? " has-error" : ""}`} style={{ flex: 1, minWidth: 160 }}>
            <span className="label">Work note</span>
            <input value={note} onChange={(e) => setNote(e.target.value)} />
            {errors.note && <span className="field-error">{errors.note}</span>}
          </label>
          <button type="submit" className="btn primary" disabled={busy || !minutes} style={{ marginBottom: 8 }}>
            {busy ? "Saving…" : "Log time"}
          </button>
        </form>
      )}
      {error && !Object.keys(errors).length ? <ErrorBox error={error} /> : null}
    </Card>
  );
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function AttachmentsSection({ wo, tick, users }: SectionProps) {
  const { can } = useAuth();
  const list = useAsync((s) => get<Attachment[]>(`work-orders/${wo.id}/attachments`, undefined, s), [wo.id, tick]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const upload = async (file: File) => {
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const a = await postForm<Attachment>(`work-orders/${wo.id}/attachments`, form);
      list.setData((old) => (old?.some((x) => x.id === a.id) ? old : [...(old ?? []), a]));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const remove = async (a: Attachment) => {
    if (!window.confirm(`Delete ${a.filename}? This cannot be undone.`)) return;
    setError(null);
    try {
      await del(`work-orders/${wo.id}/attachments/${a.id}`);
      list.setData((old) => old?.filter((x) => x.id !== a.id));
    } catch (e) {
      setError(e);
    }
  };
  const items = list.data ?? [];
  return (
    <Card title={`Attachments${items.length ? ` (${items.length})` : ""}`}>
      <ErrorBox error={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Loading />}
      <ul className="wo-list" data-testid="wo-attachments">
        {items.map((a) => (
          <li key={a.id} className="row">
            <span style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }}>
              <strong>{a.filename}</strong>{" "}
              <span className="muted">
                {fmtBytes(a.sizeBytes)} · {a.uploadedBy ? userName(users, a.uploadedBy) : "service"} · {fmtTime(a.createdAt)}
              </span>
            </span>
            <button type="button" className="btn small" onClick={() => void download(`work-orders/${wo.id}/attachments/${a.id}`, a.filename).catch(setError)}>
              Download
            </button>
            {can("work_orders:update") && (
              <button type="button" className="btn small danger" aria-label={`Delete ${a.filename}`} onClick={() => void remove(a)}>
                Delete
              </button>
            )}
          </li>
        ))}
        {list.data && !items.length && <li className="muted">No files attached.</li>}
      </ul>
      {can("work_orders:update") && (
        <label className="field" style={{ marginTop: 8 }}>
          <span className="label">{busy ? "Uploading…" : "Attach a file (photo, PDF, text, CSV)"}</span>
          <input
            type="file"
            disabled={busy}
            onChange={(e) => {
              const f = e.target.files?.[0];
              e.target.value = "";
              if (f) void upload(f);
            }}
          />
        </label>
      )}
      <ErrorBox error={error} />
    </Card>
  );
}

function money(cents: number): string {
  return (cents / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function PartsSection({ wo, tick, active }: { wo: WorkOrder; tick: number; active: boolean }) {
  const { can } = useAuth();
  const parts = useAsync((s) => get<WorkOrderParts>(`work-orders/${wo.id}/parts`, undefined, s), [wo.id, tick]);
  const mayIssue = can("parts:issue") && active;
  const locations = useAsync(() => (mayIssue ? get<StockLocation[]>("stock-locations") : Promise.resolve([] as StockLocation[])), [mayIssue]);
  const [q, setQ] = useState("");
  const found = useAsync(
    (s) => (mayIssue && q.trim().length >= 1 ? getPage<Part>("parts", { q: q.trim(), limit: 20 }, s).then((p) => p.items) : Promise.resolve([] as Part[])),
    [q, mayIssue],
  );
  const [partId, setPartId] = useState("");
  const [locationId, setLocationId] = useState("");
  const [qty, setQty] = useState("1");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const errors = fieldMap(error);

  const run = async (what: "reserve" | "issue") => {
    setBusy(true);
    setError(null);
    try {
      if (what === "reserve") await post(`work-orders/${wo.id}/reservations`, { partId, locationId, quantity: Number(qty) });
      else await post(`parts/${partId}/issue`, { locationId, quantity: Number(qty), workOrderId: wo.id });
      setQty("1");
      parts.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const act = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
      parts.reload();
    } catch (e) {
      setError(e);
    }
  };
  const d = parts.data;
  return (
    <Card title={`Parts${d ? ` · ${money(d.totalCostCents)} used` : ""}`}>
      <ErrorBox error={parts.error} onRetry={parts.reload} />
      {parts.loading && !d && <Loading />}
      {d && !d.issued.length && !d.reserved.length && <p className="muted">No parts reserved or used.</p>}
      {d && d.reserved.length > 0 && (
        <>
          <h3 className="wo-sub">Reserved</h3>
          <ul className="wo-list" data-testid="wo-reserved">
            {d.reserved.map((r) => (
              <li key={r.id} className="row">
                <span style={{ flex: 1 }}>
                  <strong>{r.quantity}</strong> × {r.partName} <span className="muted mono">{r.sku}</span> <span className="muted">at {r.locationName}</span>
                </span>
                {mayIssue && (
                  <>
                    <button type="button" className="btn small primary" onClick={() => void act(() => post(`parts/${r.partId}/issue`, { locationId: r.locationId, quantity: r.quantity, workOrderId: wo.id }))}>
                      Issue
                    </button>
                    <button type="button" className="btn small" onClick={() => void act(() => del(`work-orders/${wo.id}/reservations/${r.id}`))}>
                      Release
                    </button>
                  </>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
      {d && d.issued.length > 0 && (
        <>
          <h3 className="wo-sub">Used</h3>
          <ul className="wo-list" data-testid="wo-issued">
            {d.issued.map((p) => (
              <li key={p.partId}>
                <strong>
                  {fmtNumber(p.netQuantity)} {p.unit}
                </strong>{" "}
                × {p.name} <span className="muted mono">{p.sku}</span> <span className="muted">· {money(p.costCents)}</span>
                {p.returned > 0 && <span className="muted"> ({p.returned} returned)</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {mayIssue && (
        <div style={{ marginTop: 8 }}>
          <div className="wo-form-row">
            <label className={`field${errors.partId ? " has-error" : ""}`} style={{ flex: 2, minWidth: 180 }}>
              <span className="label">Find a part</span>
              <input type="search" value={q} placeholder="SKU or name" onChange={(e) => setQ(e.target.value)} />
            </label>
            <label className={`field${errors.partId ? " has-error" : ""}`} style={{ flex: 2, minWidth: 180 }}>
              <span className="label">Part</span>
              <select value={partId} onChange={(e) => setPartId(e.target.value)}>
                <option value="">{q ? (found.loading ? "Searching…" : `${found.data?.length ?? 0} found`) : "Search first"}</option>
                {(found.data ?? []).map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.sku} — {p.name} ({p.available} available)
                  </option>
                ))}
              </select>
              {errors.partId && <span className="field-error">{errors.partId}</span>}
            </label>
          </div>
          <div className="wo-form-row">
            <label className={`field${errors.locationId ? " has-error" : ""}`} style={{ flex: 1, minWidth: 150 }}>
              <span className="label">Location</span>
              <select value={locationId} onChange={(e) => setLocationId(e.target.value)}>
                <option value="">Choose…</option>
                {(locations.data ?? []).map((l) => (
                  <option key={l.id} value={l.id}>
                    {l.name}
                  </option>
                ))}
              </select>
              {errors.locationId && <span className="field-error">{errors.locationId}</span>}
            </label>
            <label className={`field${errors.quantity ? " has-error" : ""}`} style={{ width: 100 }}>
              <span className="label">Quantity</span>
              <input type="number" min={1} value={qty} onChange={(e) => setQty(e.target.value)} />
              {errors.quantity && <span className="field-error">{errors.quantity}</span>}
            </label>
            <button type="button" className="btn" disabled={busy || !partId || !locationId} onClick={() => void run("reserve")} style={{ marginBottom: 8 }}>
              Reserve
            </button>
            <button type="button" className="btn primary" disabled={busy || !partId || !locationId} onClick={() => void run("issue")} style={{ marginBottom: 8 }}>
              Issue now
            </button>
          </div>
        </div>
      )}
      {error && !Object.keys(errors).length ? <ErrorBox error={error} /> : null}
    </Card>
  );
}

export function DowntimeSection({ wo, tick, users }: SectionProps) {
  const { can } = useAuth();
  const list = useAsync((s) => get<Downtime[]>(`work-orders/${wo.id}/downtime`, undefined, s), [wo.id, tick]);
  const [reason, setReason] = useState<DowntimeReason>("breakdown");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const errors = fieldMap(error);
  const mayRecord = can("work_orders:update") && wo.status !== "verified" && wo.status !== "cancelled";
  const record = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post(`work-orders/${wo.id}/downtime`, {
        reason,
        note: note.trim(),
        startedAt: start ? new Date(start).toISOString() : undefined,
        endedAt: end ? new Date(end).toISOString() : undefined,
      });
      setStart("");
      setEnd("");
      setNote("");
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const endNow = async (d: Downtime) => {
    setError(null);
    try {
      await patch(`work-orders/${wo.id}/downtime/${d.id}`, { endedAt: new Date().toISOString() });
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const items = list.data ?? [];
  return (
    <Card title="Downtime">
      <ErrorBox error={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Loading />}
      <ul className="wo-list" data-testid="wo-downtime">
        {items.map((d) => {
          const secs = ((d.endedAt ? new Date(d.endedAt).getTime() : Date.now()) - new Date(d.startedAt).getTime()) / 1000;
          return (
            <li key={d.id} className="row">
              <span style={{ flex: 1 }}>
                <strong>{humanize(d.reason)}</strong> · {fmtTime(d.startedAt)} → {d.endedAt ? fmtTime(d.endedAt) : <span className="wo-overdue">still down</span>} ·{" "}
                {fmtDuration(secs)}
                <span className="muted"> · {d.recordedBy ? userName(users, d.recordedBy) : "service"}</span>
                {d.note && <div className="muted">{d.note}</div>}
              </span>
              {!d.endedAt && mayRecord && (
                <button type="button" className="btn small primary" onClick={() => void endNow(d)}>
                  End now
                </button>
              )}
            </li>
          );
        })}
        {list.data && !items.length && <li className="muted">No downtime recorded.</li>}
      </ul>
      {mayRecord && (
        <form onSubmit={record} style={{ marginTop: 8 }}>
          <div className="wo-form-row">
            <label className={`field${errors.reason ? " has-error" : ""}`}>
              <span className="label">Reason</span>
              <select value={reason} onChange={(e) => setReason(e.target.value as DowntimeReason)}>
                {DOWNTIME_REASONS.map((r) => (
                  <option key={r} value={r}>
                    {humanize(r)}
                  </option>
                ))}
              </select>
            </label>
            <label className={`field${errors.startedAt ? " has-error" : ""}`}>
              <span className="label">Down since (empty: now)</span>
              <input type="datetime-local" value={start} onChange={(e) => setStart(e.target.value)} />
              {errors.startedAt && <span className="field-error">{errors.startedAt}</span>}
            </label>
            <label className={`field${errors.endedAt ? " has-error" : ""}`}>
              <span className="label">Back up at (empty: still down)</span>
              <input type="datetime-local" value={end} onChange={(e) => setEnd(e.target.value)} />
              {errors.endedAt && <span className="field-error">{errors.endedAt}</span>}
            </label>
          </div>
          <div className="wo-form-row">
            <label className={`field${errors.note ? " has-error" : ""}`} style={{ flex: 1 }}>
              <span className="label">Downtime note</span>
              <input value={note} onChange={(e) => setNote(e.target.value)} />
            </label>
            <button type="submit" className="btn" disabled={busy} style={{ marginBottom: 8 }}>
              Record downtime
            </button>
          </div>
        </form>
      )}
      {error && !Object.keys(errors).length ? <ErrorBox error={error} /> : null}
    </Card>
  );
}

interface HistoryEntry {
  at: string;
  text: string;
  /** The note given with a status change. */
  note?: string;
  /** A status step (from GET work-orders/{id}/history), for tests and styling. */
  step?: boolean;
}

/** One status step of GET /api/v1/work-orders/{id}/history. */
interface StatusStep {
  fromStatus: string | null;
  toStatus: string;
  changedBy: string | null;
  changedByName?: string;
  note: string;
  createdAt: string;
}

function stepText(step: StatusStep, wo: WorkOrder, users: Map<string, User>): string {
  const who = step.changedBy ? (step.changedByName ?? userName(users, step.changedBy)) : "Analytics";
  const to = humanize(step.toStatus).toLowerCase();
  if (!step.fromStatus) return `Created (${to}) by ${step.changedBy ? who : wo.source === "auto" ? "analytics" : "a service"}`;
  const verdict = step.toStatus === "completed" && wo.verdict ? ` (${humanize(wo.verdict).toLowerCase()})` : "";
  return `${who} moved it from ${humanize(step.fromStatus).toLowerCase()} to ${to}${verdict}`;
}

/**
 * What happened to the work order, newest first: its status steps with
 * their notes (the status history), comments, time logs and attachments.
 */
export function HistorySection({ wo, tick, users }: SectionProps) {
  const data = useAsync(
    async (s) => {
      const [steps, comments, sheet, files] = await Promise.all([
        get<StatusStep[]>(`work-orders/${wo.id}/history`, undefined, s),
        get<Comment[]>(`work-orders/${wo.id}/comments`, undefined, s).catch(() => [] as Comment[]),
        get<TimeSheet>(`work-orders/${wo.id}/time-logs`, undefined, s).catch(() => ({ entries: [], totalMinutes: 0 }) as TimeSheet),
        get<Attachment[]>(`work-orders/${wo.id}/attachments`, undefined, s).catch(() => [] as Attachment[]),
      ]);
      return { steps, comments, sheet, files };
    },
    // `updatedAt`: a status change re-reads the steps even without a live event.
    [wo.id, wo.updatedAt, tick],
  );
  const out: HistoryEntry[] = [];
  const steps = data.data?.steps ?? [];
  for (const st of steps) out.push({ at: st.createdAt, text: stepText(st, wo, users), note: st.note || undefined, step: true });
  // Until the steps load (or if they cannot be read): when it was created.
  if (!steps.length) out.push({ at: wo.createdAt, text: `Created ${wo.source === "auto" ? "by analytics" : `by ${userName(users, wo.requestedBy, "someone")}`}` });
  if (wo.source === "auto" && wo.lastOccurrenceAt && wo.occurrenceCount > 1) out.push({ at: wo.lastOccurrenceAt, text: `Anomaly seen again (${wo.occurrenceCount} times in all)` });
  for (const c of data.data?.comments ?? []) out.push({ at: c.createdAt, text: `${c.authorId ? userName(users, c.authorId) : "Analytics"} commented` });
  for (const t of data.data?.sheet.entries ?? []) out.push({ at: t.createdAt, text: `${userName(users, t.userId)} logged ${fmtDuration(t.minutes * 60)}` });
  for (const f of data.data?.files ?? []) out.push({ at: f.createdAt, text: `${f.uploadedBy ? userName(users, f.uploadedBy) : "A service"} attached ${f.filename}` });
  out.sort((a, b) => b.at.localeCompare(a.at));
  return (
    <Card title="History">
      {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : null}
      {!out.length ? (
        <Empty>Nothing yet.</Empty>
      ) : (
        <ul className="wo-list wo-timeline" data-testid="wo-history">
          {out.map((h, i) => (
            <li key={i} data-testid={h.step ? "wo-status-step" : undefined}>
              <time dateTime={h.at}>{fmtTime(h.at)}</time>
              <span>
                {h.text}
                {h.note && (
                  <>
                    <br />
                    <span className="muted small">“{h.note}”</span>
                  </>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
