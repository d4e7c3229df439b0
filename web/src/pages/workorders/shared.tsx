// Pieces the work-order pages share: the status machine, name look-ups
// (users, equipment, failure codes) and the status-move dialog (completion
// needs, cancellation). fieldMap is re-exported from ../../ui/forms.
import { useState } from "react";
import { Link } from "react-router-dom";
import { ApiError, get, getAll, patch, post } from "../../api";
import { useAuth } from "../../auth";
import { humanize } from "../../format";
import type { User } from "../../types";
import { ErrorBox } from "../../ui/common";
import { fieldMap, hasFieldErrors } from "../../ui/forms";
import { Modal } from "../../ui/Modal";
import { useAsync } from "../../ui/hooks";
import type { Equipment, FailureCode, Kind, Status, StatusInfo, Verdict, WorkOrder } from "./types";

export { fieldMap } from "../../ui/forms";

/** Memoized loads shared by every page of the area (one request per session). */
const cache = new Map<string, Promise<unknown>>();
function once<T>(key: string, load: () => Promise<T>): Promise<T> {
  let p = cache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = load();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** The status machine from GET work-orders/statuses (never hard-coded here). */
export function useStatusMachine() {
  return useAsync(() => once("statuses", () => get<StatusInfo[]>("work-orders/statuses")), []);
}

/** The statuses a work order in `from` may move to, per the machine. */
export function nextOf(machine: StatusInfo[] | undefined, from: Status): Status[] {
  return machine?.find((s) => s.status === from)?.next ?? [];
}

/** People of the organization by id (needs users:view; otherwise just the signed-in user). */
export function useUsers(): { users: User[]; byId: Map<string, User> } {
  const { me, can } = useAuth();
  const mayList = can("users:view");
  const { data } = useAsync(
    () => (mayList ? once("users", () => getAll<User>("users", { active: true }, 2000)) : Promise.resolve([] as User[])),
    [mayList],
  );
  const users = data ?? [];
  const byId = new Map(users.map((u) => [u.id, u]));
  if (me && !byId.has(me.user.id)) byId.set(me.user.id, me.user);
  return { users: users.length ? users : me ? [me.user] : [], byId };
}

export function userName(byId: Map<string, User>, id?: string | null, fallback = "—"): string {
  if (!id) return fallback;
  return byId.get(id)?.name ?? `user ${id.slice(0, 8)}`;
}

/** Equipment by id (for asset names on cards and rows). */
export function useEquipment(): { list: Equipment[]; byId: Map<string, Equipment>; loading: boolean } {
  const { can } = useAuth();
  const may = can("equipment:view");
  const { data, loading } = useAsync(
    () => (may ? once("equipment", () => getAll<Equipment>("equipment", {}, 5000)) : Promise.resolve([] as Equipment[])),
    [may],
  );
  const list = data ?? [];
  return { list, byId: new Map(list.map((e) => [e.id, e])), loading };
}

export function useFailureCodes() {
  return useAsync(() => once("failure-codes", () => get<FailureCode[]>("failure-codes", { active: true })), []);
}

/** Failure codes completing `kind` needs (none for a false alarm). */
export function codesNeeded(kind: Kind, falseAlarm: boolean): Array<"problemCode" | "causeCode" | "remedyCode"> {
  if (falseAlarm) return [];
  if (kind === "corrective" || kind === "emergency") return ["problemCode", "causeCode", "remedyCode"];
  if (kind === "inspection") return ["remedyCode"];
  return [];
}

export const STATUS_VERB: Partial<Record<Status, string>> = {
  open: "Reopen",
  in_progress: "Start work",
  on_hold: "Put on hold",
  completed: "Complete",
  verified: "Verify",
  cancelled: "Cancel work order",
};

/** Moves that need the dialog (what completing needs; a reason to cancel). */
export function needsDialog(to: Status): boolean {
  return to === "completed" || to === "cancelled";
}

const CODE_FIELDS: Array<{ field: "problemCode" | "causeCode" | "remedyCode"; kind: FailureCode["kind"]; label: string }> = [
  { field: "problemCode", kind: "problem", label: "Problem" },
  { field: "causeCode", kind: "cause", label: "Cause" },
  { field: "remedyCode", kind: "remedy", label: "Remedy" },
];

/**
 * Asks what a move needs and makes it: completing (verdict for auto work
 * orders, failure codes by kind, a note) or cancelling (a reason). 422
 * answers show next to the fields; requirements elsewhere (checklist,
 * downtime) are listed with a link to the work order.
 */
export function MoveDialog({ wo, to, onClose, onMoved }: { wo: WorkOrder; to: Status; onClose: () => void; onMoved: (wo: WorkOrder) => void }) {
  const codes = useFailureCodes();
  const [verdict, setVerdict] = useState<Verdict | "">(wo.verdict ?? "");
  const [values, setValues] = useState({ problemCode: wo.problemCode ?? "", causeCode: wo.causeCode ?? "", remedyCode: wo.remedyCode ?? "" });
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errors = fieldMap(error);
  const completing = to === "completed";
  const auto = wo.source === "auto";
  const falseAlarm = auto && verdict === "false_alarm";
  const needed = codesNeeded(wo.kind, falseAlarm);
  const shown = new Set(["verdict", "problemCode", "causeCode", "remedyCode", "note"]);
  const elsewhere = error instanceof ApiError ? error.fieldErrors.filter((f) => !shown.has(f.field) || (f.field.endsWith("Code") && falseAlarm)) : [];

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (completing && !falseAlarm) {
        const change: Record<string, string | null> = {};
        for (const { field } of CODE_FIELDS) {
          const v = values[field] || null;
          if (v !== (wo[field] ?? null)) change[field] = v;
        }
        if (Object.keys(change).length) await patch<WorkOrder>(`work-orders/${wo.id}`, change);
      }
      const body: Record<string, string> = { status: to };
      if (note.trim()) body.note = note.trim();
      if (completing && auto && verdict) body.verdict = verdict;
      const updated = await post<WorkOrder>(`work-orders/${wo.id}/status`, body);
      onMoved(updated);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const title = completing ? `Complete ${wo.code}` : to === "cancelled" ? `Cancel ${wo.code}` : `${STATUS_VERB[to] ?? humanize(to)}: ${wo.code}`;
  return (
    <Modal title={title} onClose={onClose} testId="move-dialog">
      <form onSubmit={submit} className="wo-move-form" noValidate>
        <p className="muted wo-modal-sub">{wo.title}</p>
        {completing && auto && (
          <fieldset className={`field wo-verdict${errors.verdict ? " has-error" : ""}`}>
            <legend className="label">What did the alarm turn out to be? (required)</legend>
            <label className="wo-radio">
              <input type="radio" name="verdict" value="true_alarm" checked={verdict === "true_alarm"} onChange={() => setVerdict("true_alarm")} />
              <span>
                <strong>True alarm</strong> — a real fault was found and repaired
              </span>
            </label>
            <label className="wo-radio">
              <input type="radio" name="verdict" value="false_alarm" checked={verdict === "false_alarm"} onChange={() => setVerdict("false_alarm")} />
              <span>
                <strong>False alarm</strong> — nothing wrong; the detector's thresholds on this sensor widen
              </span>
            </label>
            {errors.verdict && <span className="field-error">{errors.verdict}</span>}
          </fieldset>
        )}
        {completing && !falseAlarm && (
          <div className="wo-codes">
            {codes.error ? <ErrorBox error={codes.error} onRetry={codes.reload} /> : null}
            {CODE_FIELDS.map(({ field, kind, label }) => {
              const req = needed.includes(field);
              const list = (codes.data ?? []).filter((c) => c.kind === kind);
              return (
                <label key={field} className={`field${errors[field] ? " has-error" : ""}`}>
                  <span className="label">
                    {label} code {req ? "(required)" : "(optional)"}
                  </span>
                  <select value={values[field]} onChange={(e) => setValues((v) => ({ ...v, [field]: e.target.value }))}>
                    <option value="">— none —</option>
                    {list.map((c) => (
                      <option key={c.id} value={c.code}>
                        {c.code} — {c.description}
                      </option>
                    ))}
                  </select>
                  {errors[field] && <span className="field-error">{errors[field]}</span>}
                </label>
              );
            })}
          </div>
        )}
        <label className={`field${errors.note ? " has-error" : ""}`}>
          <span className="label">{to === "cancelled" ? "Reason (for the history)" : "Note (optional)"}</span>
          <textarea value={note} onChange={(e) => setNote(e.target.value)} rows={3} />
          {errors.note && <span className="field-error">{errors.note}</span>}
        </label>
        {elsewhere.length > 0 && (
          <div className="error-box wo-needs" role="alert">
            <div>
              <strong>Completing still needs:</strong>
              <ul>
                {elsewhere.map((f) => (
                  <li key={f.field + f.message}>{f.message}</li>
                ))}
              </ul>
              <Link to={`/work-orders/${wo.id}`}>Open {wo.code} to finish these</Link>
            </div>
          </div>
        )}
        {error && !hasFieldErrors(error) ? <ErrorBox error={error} /> : null}
        {hasFieldErrors(error) && elsewhere.length === 0 ? (
          <p className="field-error" role="alert">
            Check the fields marked above.
          </p>
        ) : null}
        <div className="row wo-modal-actions">
          <button type="button" className="btn" onClick={onClose}>
            Back
          </button>
          <button type="submit" className={`btn ${to === "cancelled" ? "danger" : "primary"}`} disabled={busy}>
            {busy ? "Saving…" : completing ? "Complete work order" : to === "cancelled" ? "Cancel work order" : "Confirm"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** The page header's "New work order" button, for those who may create one. */
export function NewWorkOrderLink() {
  const { can } = useAuth();
  if (!can("work_orders:create")) return null;
  return (
    <Link className="btn primary" to="/work-orders/new">
      New work order
    </Link>
  );
}

/** Why a move is refused, in words, from the machine. */
export function refusalText(machine: StatusInfo[] | undefined, from: Status, to: Status): string {
  const next = nextOf(machine, from);
  if (!next.length) return `${humanize(from)} work orders are final; they cannot move.`;
  return `${humanize(from)} → ${humanize(to)} is not allowed. From ${humanize(from).toLowerCase()} a work order can go to: ${next.map((s) => humanize(s).toLowerCase()).join(", ")}.`;
}

/** Sort rank of a priority (critical first). */
export function priorityRank(p: string): number {
  return ["critical", "high", "medium", "low"].indexOf(p);
}
