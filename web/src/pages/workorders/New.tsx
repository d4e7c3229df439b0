// Create a work order (/work-orders/new): title, description, kind,
// priority (not for requesters), asset, due date, assignees (with the
// assign permission) and checklist; 422 messages show next to the fields.
import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { ApiError, post } from "../../api";
import { useAuth } from "../../auth";
import { ErrorBox, Field, Options, PageHeader } from "../../ui/common";
import { EquipmentPicker } from "./EquipmentPicker";
import { fieldMap, hasFieldErrors } from "../../ui/forms";
import { useUsers } from "./shared";
import { KINDS, PRIORITIES, type Kind, type Priority, type WorkOrder } from "./types";

interface Item {
  key: number;
  label: string;
  required: boolean;
}

export function NewWorkOrder() {
  const { me, can } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { users } = useUsers();
  const requester = me?.user.role === "requester";
  const mayAssign = can("work_orders:assign");
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [kind, setKind] = useState<Kind>("corrective");
  const [priority, setPriority] = useState<Priority>("medium");
  const [equipmentId, setEquipmentId] = useState(params.get("equipmentId") ?? "");
  const [due, setDue] = useState("");
  const [assignees, setAssignees] = useState<string[]>([]);
  const [items, setItems] = useState<Item[]>([]);
  const [nextKey, setNextKey] = useState(1);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errors = fieldMap(error);
  const formRef = useRef<HTMLFormElement>(null);
  // After a refusal, bring the first field with a message into view.
  useEffect(() => {
    if (!error) return;
    const el = formRef.current?.querySelector<HTMLElement>(".has-error, .error-box");
    el?.scrollIntoView({ block: "center", behavior: "smooth" });
    el?.querySelector<HTMLElement>("input, select, textarea")?.focus({ preventScroll: true });
  }, [error]);
  const known = new Set(["title", "description", "kind", "priority", "equipmentId", "dueAt", "assignees", "assignedTo"]);
  const other = error instanceof ApiError ? error.fieldErrors.filter((f) => !known.has(f.field) && !f.field.startsWith("checklist") && !f.field.startsWith("assignees")) : [];
  const assigneeError = Object.entries(errors).find(([k]) => k.startsWith("assignees") || k === "assignedTo")?.[1];

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = {
      title: title.trim(),
      description: description.trim(),
      kind,
      checklist: items.filter((i) => i.label.trim()).map((i) => ({ label: i.label.trim(), required: i.required })),
    };
    if (!requester) body.priority = priority;
    if (equipmentId) body.equipmentId = equipmentId;
    if (due) body.dueAt = new Date(due).toISOString();
    if (mayAssign && assignees.length) body.assignees = assignees;
    try {
      const wo = await post<WorkOrder>("work-orders", body);
      navigate(`/work-orders/${wo.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const staff = users.filter((u) => u.role !== "requester" && u.active);
  return (
    <div className="wo-new">
      <PageHeader title="New work order" sub={<Link to="/work-orders">← Back to the board</Link>} />
      <form className="card" onSubmit={submit} noValidate ref={formRef}>
        <Field label="Title" error={errors.title}>
          <input value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} required autoFocus />
        </Field>
        <Field label="Description" error={errors.description} hint="What is wrong, where, and anything the technician should know.">
          <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={4} />
        </Field>
        <div className="grid cols-2">
          <Field label="Kind" error={errors.kind}>
            <select value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
              <Options values={KINDS} />
            </select>
          </Field>
          {!requester && (
            <Field label="Priority" error={errors.priority}>
              <select value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
                <Options values={PRIORITIES} />
              </select>
            </Field>
          )}
          <Field label="Due" error={errors.dueAt} hint="Optional">
            <input type="datetime-local" value={due} onChange={(e) => setDue(e.target.value)} />
          </Field>
        </div>
        <div className={`field${errors.equipmentId ? " has-error" : ""}`}>
          <span className="label">Asset</span>
          <EquipmentPicker value={equipmentId} onChange={setEquipmentId} invalid={!!errors.equipmentId} />
          {errors.equipmentId && <span className="field-error">{errors.equipmentId}</span>}
        </div>
        {mayAssign && (
          <div className={`field${assigneeError ? " has-error" : ""}`}>
            <span className="label">Assignees (the first ticked is the lead)</span>
            <div className="wo-assignees" role="group" aria-label="Assignees">
              {staff.map((u) => (
                <label key={u.id}>
                  <input
                    type="checkbox"
                    checked={assignees.includes(u.id)}
                    onChange={(e) => setAssignees((a) => (e.target.checked ? [...a, u.id] : a.filter((x) => x !== u.id)))}
                  />
                  {u.name} <span className="muted">({u.role})</span>
                </label>
              ))}
              {!staff.length && <span className="muted">No people to assign.</span>}
            </div>
            {assigneeError && <span className="field-error">{assigneeError}</span>}
          </div>
        )}
        <div className="field">
          <span className="label">Checklist</span>
          {items.map((it, i) => {
            const err = errors[`checklist[${i}].label`] ?? errors[`checklist[${i}]`];
            return (
              <div key={it.key}>
                <div className="wo-checklist-edit">
                  <input
                    type="text"
                    aria-label={`Checklist item ${i + 1}`}
                    value={it.label}
                    onChange={(e) => setItems((l) => l.map((x) => (x.key === it.key ? { ...x, label: e.target.value } : x)))}
                  />
                  <label className="wo-check">
                    <input type="checkbox" checked={it.required} onChange={(e) => setItems((l) => l.map((x) => (x.key === it.key ? { ...x, required: e.target.checked } : x)))} />
                    Required
                  </label>
                  <button type="button" className="btn small" aria-label={`Remove checklist item ${i + 1}`} onClick={() => setItems((l) => l.filter((x) => x.key !== it.key))}>
                    ✕
                  </button>
                </div>
                {err && <span className="field-error">{err}</span>}
              </div>
            );
          })}
          <div>
            <button
              type="button"
              className="btn small"
              onClick={() => {
                setItems((l) => [...l, { key: nextKey, label: "", required: true }]);
                setNextKey((k) => k + 1);
              }}
            >
              + Add checklist item
            </button>
          </div>
        </div>
        {other.length > 0 && (
          <div className="error-box" role="alert">
            {other.map((f) => `${f.field}: ${f.message}`).join("; ")}
          </div>
        )}
        {error && !hasFieldErrors(error) ? <ErrorBox error={error} /> : null}
        <div className="row">
          <button type="submit" className="btn primary" disabled={busy}>
            {busy ? "Creating…" : "Create work order"}
          </button>
          <Link className="btn" to="/work-orders">
            Cancel
          </Link>
        </div>
      </form>
    </div>
  );
}
