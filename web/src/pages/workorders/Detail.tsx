// One work order (/work-orders/:id): header with the allowed status moves,
// assignees, checklist, comments, time, attachments, parts, downtime, the
// anomaly that raised it and a history; kept current by live events.
import { useCallback, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiError, get, patch, post, put } from "../../api";
import { useAuth } from "../../auth";
import { fmtAgo, fmtNumber, fmtTime, humanize } from "../../format";
import { useLiveEvents } from "../../live";
import type { User } from "../../types";
import { Badge, Card, ErrorBox, Field, Loading, PageHeader } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import { AttachmentsSection, ChecklistSection, CommentsSection, DowntimeSection, HistorySection, PartsSection, TimeSection } from "./DetailSections";
import { MoveDialog, STATUS_VERB, fieldMap, needsDialog, nextOf, useEquipment, useStatusMachine, useUsers, userName } from "./shared";
import { KINDS, PRIORITIES, type Kind, type Priority, type Status, type WorkOrder, type WorkOrderDetail } from "./types";

/** Bumps a counter per section so live events reload only what changed. */
export type Ticks = Record<string, number>;

export function WorkOrderDetailPage() {
  const { id = "" } = useParams();
  const { can } = useAuth();
  const wo = useAsync((signal) => get<WorkOrderDetail>(`work-orders/${id}`, undefined, signal), [id]);
  const machine = useStatusMachine();
  const { byId: users, users: people } = useUsers();
  const equipment = useEquipment();
  const [dialog, setDialog] = useState<Status | null>(null);
  const [moving, setMoving] = useState(false);
  const [moveError, setMoveError] = useState<unknown>(null);
  const [ticks, setTicks] = useState<Ticks>({});
  const [flash, setFlash] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const bump = useCallback((...keys: string[]) => setTicks((t) => Object.fromEntries([...Object.entries(t), ...keys.map((k) => [k, (t[k] ?? 0) + 1])])), []);

  const apply = useCallback((updated: WorkOrder) => wo.setData((old) => (old ? { ...old, ...updated } : old)), [wo]);

  useLiveEvents(["work_order."], (e) => {
    if (e.subjectId !== id) return;
    const k = e.kind.slice("work_order.".length);
    if (k === "updated" || k === "escalated" || k === "created") {
      const p = e.payload as WorkOrder | null;
      if (p && typeof p === "object" && "status" in p) {
        const before = wo.data?.status;
        apply(p);
        if (before && before !== p.status) setFlash(`Status changed to ${humanize(p.status).toLowerCase()}.`);
      } else wo.reload();
      bump("history");
    } else if (k === "commented") bump("comments", "history");
    else if (k === "time_logged") bump("time", "history");
    else if (k.startsWith("attachment")) bump("attachments", "history");
    else if (k.startsWith("checklist")) bump("checklist", "history");
    else if (k.startsWith("downtime")) bump("downtime", "history");
    else bump("parts");
  });

  if (wo.error && !wo.data) return <ErrorBox error={wo.error} onRetry={wo.reload} />;
  if (!wo.data) return <Loading what="Loading the work order" />;
  const w = wo.data;
  const info = machine.data?.find((s) => s.status === w.status);
  const active = info?.active ?? ["open", "in_progress", "on_hold"].includes(w.status);
  const next = nextOf(machine.data, w.status);
  const mayUpdate = can("work_orders:update");
  const asset = w.equipmentId ? equipment.byId.get(w.equipmentId) : undefined;
  const overdue = w.dueAt && active && new Date(w.dueAt).getTime() < Date.now();

  const move = async (to: Status) => {
    setMoveError(null);
    setFlash(null);
    if (needsDialog(to)) {
      setDialog(to);
      return;
    }
    setMoving(true);
    try {
      apply(await post<WorkOrder>(`work-orders/${w.id}/status`, { status: to }));
      bump("history");
    } catch (e) {
      setMoveError(e);
    } finally {
      setMoving(false);
    }
  };

  return (
    <div className="wo-detail-page">
      <PageHeader
        title={
          <>
            <span className="mono muted" data-testid="wo-code">
              {w.code}
            </span>{" "}
            {w.title}
          </>
        }
        sub={
          <span className="wo-head-meta">
            <span data-testid="wo-status">
              <Badge value={w.status} />
            </span>
            <Badge value={w.priority} />
            <span>{humanize(w.kind)}</span>
            <span>{w.source === "auto" ? `Auto${w.occurrenceCount > 1 ? ` · seen ${w.occurrenceCount}×` : ""}` : "Manual"}</span>
            {w.equipmentId && (
              <span>
                Asset: <Link to={`/equipment/${w.equipmentId}`}>{asset ? `${asset.name} (${asset.assetTag})` : "equipment"}</Link>
              </span>
            )}
            {w.dueAt && <span className={overdue ? "wo-overdue" : undefined}>Due {fmtTime(w.dueAt)}{overdue ? " (overdue)" : ""}</span>}
          </span>
        }
      >
        <Link className="btn" to="/work-orders">
          Board
        </Link>
      </PageHeader>

      {mayUpdate && next.length > 0 && (
        <div className="wo-actions" role="group" aria-label="Status actions" style={{ marginBottom: 12 }}>
          {next.map((s) => (
            <button
              key={s}
              type="button"
              className={`btn ${s === "cancelled" ? "danger" : s === "completed" || s === "in_progress" ? "primary" : ""}`}
              disabled={moving}
              onClick={() => void move(s)}
            >
              {STATUS_VERB[s] ?? humanize(s)}
            </button>
          ))}
        </div>
      )}
      {flash && (
        <div className="notice" role="status">
          {flash}
        </div>
      )}
      <ErrorBox error={moveError} />

      <Card title="Description" className="wo-desc-card">
        {w.description ? <p className="wo-desc">{w.description}</p> : <p className="muted">No description.</p>}
      </Card>
      <div className="wo-detail">
        <div className="stack">
          <ChecklistSection wo={w} active={active} tick={ticks.checklist ?? 0} users={users} onChange={() => bump("history")} />
          <CommentsSection wo={w} tick={ticks.comments ?? 0} users={users} />
          <TimeSection wo={w} tick={ticks.time ?? 0} users={users} />
          <AttachmentsSection wo={w} tick={ticks.attachments ?? 0} users={users} />
          {can("parts:view") && <PartsSection wo={w} active={active} tick={ticks.parts ?? 0} />}
          {w.equipmentId && <DowntimeSection wo={w} tick={ticks.downtime ?? 0} users={users} />}
          <HistorySection wo={w} tick={ticks.history ?? 0} users={users} />
        </div>
        <div className="stack wo-side">
          {editing ? (
            <EditCard
              wo={w}
              onClose={() => setEditing(false)}
              onSaved={(u) => {
                apply(u);
                setEditing(false);
                bump("history");
              }}
            />
          ) : (
            <Card
              title="Details"
              actions={
                mayUpdate && w.status !== "verified" && w.status !== "cancelled" ? (
                  <button type="button" className="btn small" onClick={() => setEditing(true)}>
                    Edit
                  </button>
                ) : undefined
              }
            >
              <dl className="props">
                <dt>Status</dt>
                <dd>{humanize(w.status)}</dd>
                <dt>Requested by</dt>
                <dd>{w.source === "auto" && !w.requestedBy ? "Analytics" : userName(users, w.requestedBy)}</dd>
                <dt>Created</dt>
                <dd>{fmtTime(w.createdAt)}</dd>
                <dt>Updated</dt>
                <dd>{fmtAgo(w.updatedAt)}</dd>
                {w.completedAt && (
                  <>
                    <dt>Completed</dt>
                    <dd>{fmtTime(w.completedAt)}</dd>
                  </>
                )}
                {w.source === "auto" && (
                  <>
                    <dt>Verdict</dt>
                    <dd>{w.verdict ? humanize(w.verdict) : <span className="muted">not given yet</span>}</dd>
                  </>
                )}
                <dt>Problem</dt>
                <dd>{w.problemCode ?? "—"}</dd>
                <dt>Cause</dt>
                <dd>{w.causeCode ?? "—"}</dd>
                <dt>Remedy</dt>
                <dd>{w.remedyCode ?? "—"}</dd>
              </dl>
            </Card>
          )}
          <AssigneesCard wo={w} active={active} users={users} people={people} onSaved={apply} />
          {(w.anomaly || w.anomalyId || w.evidence) && <AnomalyCard wo={w} />}
        </div>
      </div>

      {dialog && (
        <MoveDialog
          wo={w}
          to={dialog}
          onClose={() => setDialog(null)}
          onMoved={(updated) => {
            setDialog(null);
            apply(updated);
            bump("history");
          }}
        />
      )}
    </div>
  );
}

function AssigneesCard({ wo, active, users, people, onSaved }: { wo: WorkOrder; active: boolean; users: Map<string, User>; people: User[]; onSaved: (w: WorkOrder) => void }) {
  const { can } = useAuth();
  const [editing, setEditing] = useState(false);
  const [chosen, setChosen] = useState<string[]>(wo.assignees);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mayAssign = can("work_orders:assign") && active;
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      onSaved(await put<WorkOrder>(`work-orders/${wo.id}/assignees`, { userIds: chosen }));
      setEditing(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const staff = people.filter((u) => u.role !== "requester" && u.active);
  return (
    <Card
      title="Assignees"
      actions={
        mayAssign && !editing ? (
          <button
            type="button"
            className="btn small"
            onClick={() => {
              setChosen(wo.assignees);
              setEditing(true);
            }}
          >
            Assign…
          </button>
        ) : undefined
      }
    >
      {!editing && (
        <ul className="wo-list" data-testid="wo-assignees">
          {wo.assignees.map((id) => (
            <li key={id}>
              {userName(users, id)} {id === wo.assignedTo && <span className="badge">Lead</span>}
            </li>
          ))}
          {!wo.assignees.length && <li className="muted">Nobody assigned yet.</li>}
        </ul>
      )}
      {editing && (
        <div>
          <div className="wo-assignees" role="group" aria-label="Assignees">
            {staff.map((u) => (
              <label key={u.id}>
                <input type="checkbox" checked={chosen.includes(u.id)} onChange={(e) => setChosen((c) => (e.target.checked ? [...c, u.id] : c.filter((x) => x !== u.id)))} />
                {u.name} <span className="muted">({u.role})</span>
              </label>
            ))}
          </div>
          <p className="muted">The first ticked is the lead.</p>
          <ErrorBox error={error} />
          <div className="row">
            <button type="button" className="btn primary" disabled={busy} onClick={() => void save()}>
              {busy ? "Saving…" : "Save assignees"}
            </button>
            <button type="button" className="btn" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </div>
      )}
    </Card>
  );
}

/** The anomaly that raised an auto work order, with the evidence analytics attached. */
function AnomalyCard({ wo }: { wo: WorkOrderDetail }) {
  const a = wo.anomaly;
  const ev = wo.evidence && typeof wo.evidence === "object" ? wo.evidence : null;
  const scalars = ev ? Object.entries(ev).filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v)) : [];
  const nested = ev ? Object.entries(ev).filter(([, v]) => v !== null && typeof v === "object") : [];
  return (
    <Card title="Raised by anomaly">
      {a ? (
        <dl className="props">
          <dt>Anomaly</dt>
          <dd>
            <Link to={`/anomalies/${a.id}`}>{humanize(a.kind)}</Link> <Badge value={a.severity} />
          </dd>
          <dt>Detector</dt>
          <dd>{humanize(a.detector)}</dd>
          <dt>Status</dt>
          <dd>{humanize(a.status)}</dd>
          <dt>Score</dt>
          <dd>{fmtNumber(a.score)}</dd>
          <dt>Peak</dt>
          <dd>
            {fmtNumber(a.peakValue)}
            {a.baseline != null ? ` (baseline ${fmtNumber(a.baseline)})` : ""}
          </dd>
          <dt>Started</dt>
          <dd>{fmtTime(a.startedAt)}</dd>
          <dt>Ended</dt>
          <dd>{a.endedAt ? fmtTime(a.endedAt) : "still open"}</dd>
        </dl>
      ) : wo.anomalyId ? (
        <p>
          <Link to={`/anomalies/${wo.anomalyId}`}>Open the anomaly</Link>
        </p>
      ) : null}
      {ev && (
        <div className="wo-evidence">
          <h3 style={{ fontSize: "0.9rem", margin: "12px 0 6px" }}>Evidence</h3>
          {scalars.length > 0 && (
            <dl className="props">
              {scalars.map(([k, v]) => (
                <FragmentPair key={k} k={k} v={v} />
              ))}
            </dl>
          )}
          {nested.map(([k, v]) => (
            <details key={k}>
              <summary>{humanize(k.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase())}</summary>
              <pre>{JSON.stringify(v, null, 2)}</pre>
            </details>
          ))}
        </div>
      )}
    </Card>
  );
}

function FragmentPair({ k, v }: { k: string; v: unknown }) {
  const label = humanize(k.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase());
  const text = typeof v === "number" ? fmtNumber(v) : typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v) ? fmtTime(v) : String(v ?? "—");
  return (
    <>
      <dt>{label}</dt>
      <dd>{text}</dd>
    </>
  );
}

/** "2026-11-25T14:00:00Z" → the value of a datetime-local input, in local time. */
function toLocalInput(iso?: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Edits title, description, kind, priority and due date (PATCH; 422 messages by the fields). */
function EditCard({ wo, onClose, onSaved }: { wo: WorkOrder; onClose: () => void; onSaved: (w: WorkOrder) => void }) {
  const { me } = useAuth();
  const [title, setTitle] = useState(wo.title);
  const [description, setDescription] = useState(wo.description);
  const [kind, setKind] = useState<Kind>(wo.kind);
  const [priority, setPriority] = useState<Priority>(wo.priority);
  const [due, setDue] = useState(toLocalInput(wo.dueAt));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errors = fieldMap(error);
  const requester = me?.user.role === "requester";
  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = {};
    if (title !== wo.title) body.title = title.trim();
    if (description !== wo.description) body.description = description;
    if (kind !== wo.kind) body.kind = kind;
    if (!requester && priority !== wo.priority) body.priority = priority;
    if (due !== toLocalInput(wo.dueAt)) body.dueAt = due ? new Date(due).toISOString() : null;
    try {
      onSaved(Object.keys(body).length ? await patch<WorkOrder>(`work-orders/${wo.id}`, body) : wo);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Card title="Edit details">
      <form onSubmit={save} noValidate>
        <Field label="Title" error={errors.title}>
          <input value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} />
        </Field>
        <Field label="Description" error={errors.description}>
          <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={4} />
        </Field>
        <Field label="Kind" error={errors.kind}>
          <select value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {humanize(k)}
              </option>
            ))}
          </select>
        </Field>
        {!requester && (
          <Field label="Priority" error={errors.priority}>
            <select value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {humanize(p)}
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field label="Due" error={errors.dueAt} hint="Empty: no due date">
          <input type="datetime-local" value={due} onChange={(e) => setDue(e.target.value)} />
        </Field>
        {error && !(error instanceof ApiError && error.fieldErrors.length) ? <ErrorBox error={error} /> : null}
        {error instanceof ApiError && error.fieldErrors.some((f) => !["title", "description", "kind", "priority", "dueAt"].includes(f.field)) ? (
          <div className="error-box" role="alert">
            {error.fieldErrors.map((f) => f.message).join("; ")}
          </div>
        ) : null}
        <div className="row">
          <button type="submit" className="btn primary" disabled={busy}>
            {busy ? "Saving…" : "Save changes"}
          </button>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}
