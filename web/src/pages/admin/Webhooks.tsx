// Webhooks: list, register (signing secret shown once), delete, and each webhook's delivery log.
import { useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { del, get, post } from "../../api";
import { Badge, Card, Field, Listing, LoadMore, Notice, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync, useLatest } from "../../ui/hooks";
import { fmtAgo, fmtTime } from "../../format";
import { FormActions, FormError, FormToggle, otherFieldErrors, useFormSubmit } from "../../ui/forms";
import { useConfirm } from "../../ui/Modal";
import { OneTimeSecret } from "../../ui/Secret";
import { useQueryState } from "../../ui/useQueryState";
import { EVENT_KINDS, type CreatedWebhook, type Delivery, type Webhook } from "./types";

export function WebhooksPage() {
  const list = useAsync((signal) => get<Webhook[]>("webhooks", undefined, signal), []);
  const [showForm, setShowForm] = useState(false);
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { dialog, ask } = useConfirm();

  const remove = (w: Webhook) => {
    ask({
      title: "Delete the webhook?",
      message: (
        <p>
          Events stop going to <code>{w.url}</code> and its delivery log is deleted. This cannot be undone.
        </p>
      ),
      confirmLabel: "Delete",
      danger: true,
      run: async () => {
        await del(`webhooks/${w.id}`);
        setNotice(`Webhook ${w.url} deleted.`);
        if (created?.id === w.id) setCreated(null);
        list.reload();
      },
    });
  };

  const hooks = list.data ?? [];
  return (
    <>
      <PageHeader title="Webhooks" sub="Endpoints that receive the organization's events, signed (Standard Webhooks)">
        <FormToggle open={showForm} setOpen={setShowForm} label="Add webhook" />
      </PageHeader>
      {dialog}
      {created && (
        <OneTimeSecret title={`Webhook ${created.url} created`} label="Signing secret" value={created.secret} onDone={() => setCreated(null)}>
          <p className="muted">
            Verify each delivery: base64 HMAC-SHA256 of <code>{"{webhook-id}.{webhook-timestamp}.{body}"}</code> with this key (headers{" "}
            <code>webhook-id</code>, <code>webhook-timestamp</code>, <code>webhook-signature</code>).
          </p>
        </OneTimeSecret>
      )}
      <Notice>{notice}</Notice>
      {showForm && (
        <NewWebhookForm
          onCancel={() => setShowForm(false)}
          onCreated={(w) => {
            setShowForm(false);
            setCreated(w);
            setNotice(null);
            list.reload();
          }}
        />
      )}
      <Listing
        of={list}
        loadingText="Loading webhooks"
        isEmpty={hooks.length === 0}
        empty="No webhooks yet."
      >
        <Table label="Webhooks" stack columns={["URL", "Events", "Status", "Created"]} actions>
          {hooks.map((w) => (
            <tr key={w.id} data-testid="webhook-row">
              <td data-label="URL">
                <Link to={`/admin/webhooks/${w.id}`}>
                  <code>{w.url}</code>
                </Link>
              </td>
              <td data-label="Events">
                {w.eventKinds.length ? (
                  <span className="chips">
                    {w.eventKinds.map((k) => (
                      <span className="chip" key={k}>
                        {k}
                      </span>
                    ))}
                  </span>
                ) : (
                  <span className="muted">All events</span>
                )}
              </td>
              <td data-label="Status">
                <Badge value={w.active ? "active" : "inactive"} />
              </td>
              <td data-label="Created">{fmtTime(w.createdAt)}</td>
              <td data-label="Actions">
                <div className="cell-actions">
                  <Link className="btn small" to={`/admin/webhooks/${w.id}`}>
                    Deliveries
                  </Link>
                  <button type="button" className="btn small danger" onClick={() => remove(w)}>
                    Delete
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </Table>
      </Listing>
    </>
  );
}

function NewWebhookForm({ onCreated, onCancel }: { onCreated: (w: CreatedWebhook) => void; onCancel: () => void }) {
  const [url, setUrl] = useState("https://");
  const [kinds, setKinds] = useState<string[]>([]);
  const [extra, setExtra] = useState("");
  const toggle = (k: string) => setKinds((old) => (old.includes(k) ? old.filter((x) => x !== k) : [...old, k]));
  const { busy, errors, submit } = useFormSubmit(async () => {
    const more = extra
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    onCreated(await post<CreatedWebhook>("webhooks", { url: url.trim(), eventKinds: [...new Set([...kinds, ...more])] }));
  });
  const general = otherFieldErrors(errors, ["url", "eventKinds"]);
  return (
    <Card title="Add a webhook">
      <form className="admin-form" onSubmit={submit} aria-label="Add a webhook">
        <div className="wide">
          <Field label="Target URL" error={errors.fields.url} hint="http(s) endpoint receiving POSTed events; private network addresses may be refused">
            <input required type="url" value={url} onChange={(e) => setUrl(e.target.value)} autoComplete="off" />
          </Field>
        </div>
        <fieldset className="wide field" style={{ border: 0, padding: 0, margin: "0 0 12px" }}>
          <legend className="label">Events (none ticked: every event)</legend>
          <div className="kinds">
            {EVENT_KINDS.map((k) => (
              <label key={k}>
                <input type="checkbox" checked={kinds.includes(k)} onChange={() => toggle(k)} />
                <code>{k}</code>
              </label>
            ))}
          </div>
          {errors.fields.eventKinds && <span className="field-error">{errors.fields.eventKinds}</span>}
        </fieldset>
        <div className="wide">
          <Field label="Other event kinds" hint="Comma-separated, e.g. part.created, equipment.updated">
            <input value={extra} onChange={(e) => setExtra(e.target.value)} autoComplete="off" />
          </Field>
        </div>
        <FormError message={general} wide />
        <FormActions busy={busy} label="Create webhook" busyLabel="Creating…" onCancel={onCancel} className="form-actions" />
      </form>
    </Card>
  );
}

const STEP = 100;
const MAX = 500;

export function WebhookDeliveriesPage() {
  const { id = "" } = useParams();
  const [q, setQ] = useQueryState(["status"] as const);
  const hook = useAsync(async (signal) => (await get<Webhook[]>("webhooks", undefined, signal)).find((w) => w.id === id) ?? null, [id]);
  const data = useLatest<Delivery>(`webhooks/${id}/deliveries`, STEP, MAX);
  const all = data.all;
  const items = useMemo(() => all.filter((d) => !q.status || d.status === q.status), [all, q.status]);
  return (
    <>
      <PageHeader
        title="Deliveries"
        sub={hook.data ? <code>{hook.data.url}</code> : hook.loading ? "…" : "Webhook not found (deleted?)"}
      >
        <Link className="btn" to="/admin/webhooks">
          All webhooks
        </Link>
        <button type="button" className="btn" onClick={data.reload} disabled={data.loading}>
          Refresh
        </button>
      </PageHeader>
      <div className="filters">
        <select aria-label="Delivery status" value={q.status} onChange={(e) => setQ({ status: e.target.value })}>
          <option value="">All statuses</option>
          <option value="pending">Pending</option>
          <option value="succeeded">Succeeded</option>
          <option value="failed">Failed (will retry)</option>
          <option value="dead">Dead (gave up)</option>
        </select>
        <span className="muted">
          {items.length} of the latest {all.length}
        </span>
      </div>
      <Listing
        of={data}
        loadingText="Loading deliveries"
        isEmpty={items.length === 0}
        empty={all.length ? "No delivery with this status among those loaded." : "Nothing delivered yet."}
      >
        <Table label="Deliveries" stack columns={["Created", "Event", "Status", { label: "Attempts", className: "num" }, "Last answer", "Last error", "Next attempt"]}>
          {items.map((d) => (
            <tr key={d.id} data-testid="delivery-row">
              <td data-label="Created" title={fmtTime(d.createdAt)}>
                {fmtAgo(d.createdAt)}
              </td>
              <td data-label="Event">
                <code>{d.eventKind}</code> <span className="muted">#{d.eventId}</span>
              </td>
              <td data-label="Status">
                <Badge value={d.status} />
              </td>
              <td data-label="Attempts" className="num">
                {d.attempt}
              </td>
              <td data-label="Last answer">{d.lastStatusCode ?? <span className="muted">—</span>}</td>
              <td data-label="Last error">{d.lastError ? <span className="mono">{d.lastError}</span> : <span className="muted">—</span>}</td>
              <td data-label="Next attempt">{d.status === "pending" || d.status === "failed" ? fmtTime(d.nextAttemptAt) : "—"}</td>
            </tr>
          ))}
        </Table>
      </Listing>
      <LoadMore hasMore={data.hasMore} loading={data.loading} onClick={data.loadMore} />
    </>
  );
}
