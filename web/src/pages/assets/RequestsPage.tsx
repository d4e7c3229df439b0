// Work requests (/requests): a requester's own requests, and the manager's approval queue (approve into a work order, or reject).
import { useMemo, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { get, getAll, post } from "../../api";
import { useAuth } from "../../auth";
import { fmtAgo, fmtTime, humanize } from "../../format";
import { useLiveEvents } from "../../live";
import { Badge, Field, Listing, LoadMore, PageHeader } from "../../ui/common";
import { useAsync, usePaged } from "../../ui/hooks";
import type { EquipmentNode, UserLite, WorkOrder, WorkRequest } from "./types";
import { FormActions, FormError, useFormErrors } from "../../ui/forms";
import { flatten, splitUrgency, URGENCIES } from "./util";

const STATUSES = ["pending", "approved", "rejected"] as const;

export function RequestsPage() {
  const { can, me } = useAuth();
  const approver = can("requests:approve");
  const mine = me?.user.role === "requester";
  const [params, setParams] = useSearchParams();
  // Approvers land on the queue; everyone else on all their requests.
  const status = params.get("status") ?? (approver ? "pending" : "");
  const list = usePaged<WorkRequest>("requests", { status: status === "all" ? "" : status }, 30);
  useLiveEvents(["request."], () => list.reload());
  // What the manager just decided: the card leaves the queue, this stays in view.
  const [flash, setFlash] = useState<{ title: string; workOrder?: WorkOrder } | null>(null);

  const equipment = useAsync(async (signal) => {
    const forest = await get<EquipmentNode[]>("equipment/tree", undefined, signal);
    return new Map(flatten(forest).map(({ node }) => [node.id, node]));
  }, []);
  const users = useAsync(
    async () => (can("users:view") ? getAll<UserLite>("users", {}, 1000) : ([] as UserLite[])),
    [can("users:view")],
  );
  const userName = useMemo(() => {
    const m = new Map((users.data ?? []).map((u) => [u.id, u.name]));
    if (me) m.set(me.user.id, me.user.name);
    return m;
  }, [users.data, me]);

  const tabs: Array<{ value: string; label: string }> = approver
    ? [
        { value: "pending", label: "Approval queue" },
        { value: "approved", label: "Approved" },
        { value: "rejected", label: "Rejected" },
        { value: "all", label: "All" },
      ]
    : [{ value: "", label: "All" }, ...STATUSES.map((s) => ({ value: s, label: humanize(s) }))];

  return (
    <div className="assets-page requests-page">
      <PageHeader
        title={mine ? "My requests" : "Work requests"}
        sub={
          approver
            ? "Problems reported by people on the floor: approve them into work orders or reject them"
            : mine
              ? "Problems you reported and what became of them"
              : "Problems reported by people on the floor and what became of them"
        }
      >
        {can("work_orders:create") && (
          <Link className="btn primary" to="/request">
            New request
          </Link>
        )}
      </PageHeader>
      <div className="tabs" role="tablist" aria-label="Request status">
        {tabs.map((t) => (
          <button
            key={t.value}
            type="button"
            role="tab"
            aria-selected={status === t.value}
            className={status === t.value ? "active" : undefined}
            onClick={() => setParams(t.value === (approver ? "pending" : "") ? {} : { status: t.value })}
          >
            {t.label}
          </button>
        ))}
      </div>
      {flash && (
        <div className="notice row" role="status" data-testid="request-flash">
          <span>
            {flash.workOrder ? (
              <>
                Approved “{flash.title}” into work order <Link to={`/work-orders/${flash.workOrder.id}`}>{flash.workOrder.code}</Link>.
              </>
            ) : (
              <>Rejected “{flash.title}”.</>
            )}
          </span>
          <span className="spacer" />
          <button type="button" className="btn small" onClick={() => setFlash(null)}>
            Dismiss
          </button>
        </div>
      )}
      <Listing
        of={list}
        loadingText="Loading requests"
        isEmpty={list.items.length === 0}
        empty={status === "pending" && approver ? "Nothing waiting for approval." : "No requests here."}
        errorInPlace
      >
        <ul className="req-list">
          {list.items.map((r) => (
            <RequestCard
              key={r.id}
              request={r}
              equipment={r.equipmentId ? equipment.data?.get(r.equipmentId) : undefined}
              requester={userName.get(r.requestedBy)}
              approver={approver}
              canAssign={can("work_orders:assign")}
              technicians={(users.data ?? []).filter((u) => u.active && (u.role === "technician" || u.role === "manager"))}
              onDecided={(workOrder) => {
                setFlash({ title: r.title, workOrder });
                list.reload();
              }}
            />
          ))}
        </ul>
      </Listing>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </div>
  );
}

function RequestCard({
  request: r,
  equipment,
  requester,
  approver,
  canAssign,
  technicians,
  onDecided,
}: {
  request: WorkRequest;
  equipment?: EquipmentNode;
  requester?: string;
  approver: boolean;
  canAssign: boolean;
  technicians: UserLite[];
  onDecided: (workOrder?: WorkOrder) => void;
}) {
  const [mode, setMode] = useState<"approve" | "reject" | null>(null);
  const [result, setResult] = useState<WorkOrder | null>(null);
  const { urgency, text } = splitUrgency(r.description);
  const urgencyLabel = URGENCIES.find((u) => u.value === urgency)?.label;
  return (
    <li className="card req-card" data-testid={`request-${r.id}`}>
      <div className="req-head">
        <div>
          <h2 className="req-title">{r.title}</h2>
          <div className="muted small">
            {requester ? `${requester} · ` : ""}
            <time dateTime={r.createdAt} title={fmtTime(r.createdAt)}>
              {fmtAgo(r.createdAt)}
            </time>
            {" · "}
            {equipment ? (
              <Link to={`/equipment/${equipment.id}`}>
                <span className="mono">{equipment.assetTag}</span> {equipment.name}
              </Link>
            ) : r.equipmentId ? (
              <Link to={`/equipment/${r.equipmentId}`}>asset</Link>
            ) : (
              "no asset named"
            )}
          </div>
        </div>
        <div className="row">
          {urgency && (
            <span className={`badge badge-${urgency}`} title="Urgency given by the requester">
              {urgencyLabel}
            </span>
          )}
          <Badge value={r.status} />
        </div>
      </div>
      {text && <p className="pre req-text">{text}</p>}
      {r.status === "rejected" && r.rejectionReason && (
        <p className="notice">
          <strong>Rejected:</strong> {r.rejectionReason}
        </p>
      )}
      {(r.workOrderId || result) && (
        <p className="notice">
          Approved into work order{" "}
          <WoCode id={(result?.id ?? r.workOrderId)!} code={result?.code} />
          {r.decidedAt && <span className="muted"> · {fmtTime(r.decidedAt)}</span>}
        </p>
      )}
      {approver && r.status === "pending" && !result && (
        <>
          {mode === null && (
            <div className="row">
              <button type="button" className="btn primary" onClick={() => setMode("approve")}>
                Approve…
              </button>
              <button type="button" className="btn danger" onClick={() => setMode("reject")}>
                Reject…
              </button>
            </div>
          )}
          {mode === "approve" && (
            <ApproveForm
              request={r}
              suggested={urgency ?? "medium"}
              canAssign={canAssign}
              technicians={technicians}
              onCancel={() => setMode(null)}
              onDone={(wo) => {
                setResult(wo);
                setMode(null);
                onDecided(wo);
              }}
            />
          )}
          {mode === "reject" && (
            <RejectForm
              request={r}
              onCancel={() => setMode(null)}
              onDone={() => {
                setMode(null);
                onDecided();
              }}
            />
          )}
        </>
      )}
    </li>
  );
}

function ApproveForm({
  request,
  suggested,
  canAssign,
  technicians,
  onDone,
  onCancel,
}: {
  request: WorkRequest;
  suggested: string;
  canAssign: boolean;
  technicians: UserLite[];
  onDone: (wo: WorkOrder) => void;
  onCancel: () => void;
}) {
  const [kind, setKind] = useState(suggested === "critical" ? "emergency" : "corrective");
  const [priority, setPriority] = useState(suggested);
  const [assignee, setAssignee] = useState("");
  const [due, setDue] = useState("");
  const [busy, setBusy] = useState(false);
  const errs = useFormErrors();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    setBusy(true);
    try {
      const res = await post<{ request: WorkRequest; workOrder: WorkOrder }>(`requests/${request.id}/approve`, {
        kind,
        priority,
        assignedTo: assignee || undefined,
        dueAt: due ? new Date(due).toISOString() : undefined,
      });
      onDone(res.workOrder);
    } catch (err) {
      errs.take(err, ["kind", "priority", "assignedTo", "dueAt"]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="req-action" onSubmit={submit} aria-label={`Approve ${request.title}`}>
      <div className="grid cols-4">
        <Field label="Kind" error={errs.fields.kind}>
          <select value={kind} onChange={(e) => setKind(e.target.value)}>
            {["corrective", "emergency", "inspection", "preventive"].map((k) => (
              <option key={k} value={k}>
                {humanize(k)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Priority" error={errs.fields.priority}>
          <select value={priority} onChange={(e) => setPriority(e.target.value)}>
            {["low", "medium", "high", "critical"].map((k) => (
              <option key={k} value={k}>
                {humanize(k)}
              </option>
            ))}
          </select>
        </Field>
        {canAssign && (
          <Field label="Assign to" error={errs.fields.assignedTo}>
            <select value={assignee} onChange={(e) => setAssignee(e.target.value)}>
              <option value="">Nobody yet</option>
              {technicians.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.name}
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field label="Due (optional)" error={errs.fields.dueAt}>
          <input type="datetime-local" value={due} onChange={(e) => setDue(e.target.value)} />
        </Field>
      </div>
      <FormError message={errs.form} />
      <FormActions busy={busy} label="Approve and create work order" busyLabel="Approving…" onCancel={onCancel} lockCancel />
    </form>
  );
}

function RejectForm({ request, onDone, onCancel }: { request: WorkRequest; onDone: () => void; onCancel: () => void }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const errs = useFormErrors();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    if (!reason.trim()) return errs.setField("reason", "Tell the requester why");
    if (!window.confirm(`Reject “${request.title}”? The requester sees your reason.`)) return;
    setBusy(true);
    try {
      await post(`requests/${request.id}/reject`, { reason: reason.trim() });
      onDone();
    } catch (err) {
      errs.take(err, ["reason"]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="req-action" onSubmit={submit} aria-label={`Reject ${request.title}`}>
      <Field label="Reason for rejecting" error={errs.fields.reason}>
        <textarea value={reason} onChange={(e) => setReason(e.target.value)} />
      </Field>
      <FormError message={errs.form} />
      <FormActions busy={busy} label="Reject request" busyLabel="Rejecting…" onCancel={onCancel} lockCancel danger />
    </form>
  );
}

/** A link to a work order by its code (fetched when not known). */
function WoCode({ id, code }: { id: string; code?: string }) {
  const wo = useAsync((signal) => (code ? Promise.resolve(undefined) : get<WorkOrder>(`work-orders/${id}`, undefined, signal)), [id, code]);
  return <Link to={`/work-orders/${id}`}>{code ?? wo.data?.code ?? "open it"}</Link>;
}
