// Failure codes: the problem / cause / remedy catalog — list by kind, add a code, edit a description, (de)activate.
import { useMemo, useState, type FormEvent } from "react";
import { get, patch, post } from "../../api";
import { Badge, Card, Field, Listing, Notice, Options, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync } from "../../ui/hooks";
import { humanize } from "../../format";
import { FormActions, FormError, formErrorsOf, FormToggle, otherFieldErrors, useFormSubmit } from "../../ui/forms";
import { useConfirm } from "../../ui/Modal";
import { useQueryState } from "../../ui/useQueryState";
import { CODE_KINDS, type CodeKind, type FailureCode } from "./types";

export function FailureCodesPage() {
  const [q, setQ] = useQueryState(["kind", "active"] as const);
  const data = useAsync(
    (signal) => get<FailureCode[]>("failure-codes", { kind: q.kind || undefined, active: q.active || undefined }, signal),
    [q.kind, q.active],
  );
  const [showForm, setShowForm] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { dialog, ask } = useConfirm();
  const codes = data.data ?? [];
  const order = useMemo(() => [...codes].sort((a, b) => CODE_KINDS.indexOf(a.kind) - CODE_KINDS.indexOf(b.kind) || a.code.localeCompare(b.code)), [codes]);

  const replace = (c: FailureCode) => data.setData((old) => old?.map((x) => (x.id === c.id ? c : x)));

  const toggle = (c: FailureCode) => {
    ask({
      title: c.active ? "Deactivate the code?" : "Activate the code?",
      message: c.active ? (
        <p>
          <strong>{c.code}</strong> ({c.description}) stays on the work orders that have it but can no longer be given to others.
        </p>
      ) : (
        <p>
          <strong>{c.code}</strong> can be given to work orders again.
        </p>
      ),
      confirmLabel: c.active ? "Deactivate" : "Activate",
      danger: c.active,
      run: async () => {
        replace(await patch<FailureCode>(`failure-codes/${c.id}`, { active: !c.active }));
        setNotice(`${c.code} ${c.active ? "deactivated" : "activated"}.`);
      },
    });
  };

  return (
    <>
      <PageHeader title="Failure codes" sub="What was wrong, why, and what was done — chosen when closing work orders">
        <FormToggle open={showForm} setOpen={setShowForm} label="Add code" />
      </PageHeader>
      {dialog}
      <Notice>{notice}</Notice>
      {showForm && (
        <NewCodeForm
          initialKind={(q.kind as CodeKind) || "problem"}
          onCancel={() => setShowForm(false)}
          onCreated={(c) => {
            setShowForm(false);
            setNotice(`${humanize(c.kind)} code ${c.code} added.`);
            data.reload();
          }}
        />
      )}
      <div className="filters">
        <select aria-label="Kind" value={q.kind} onChange={(e) => setQ({ kind: e.target.value })}>
          <Options values={CODE_KINDS} any="All kinds" />
        </select>
        <select aria-label="Status" value={q.active} onChange={(e) => setQ({ active: e.target.value })}>
          <option value="">Active and inactive</option>
          <option value="true">Active only</option>
          <option value="false">Inactive only</option>
        </select>
      </div>
      <Listing
        of={data}
        loadingText="Loading failure codes"
        isEmpty={order.length === 0}
        empty="No codes match these filters."
      >
        <Table label="Failure codes" stack columns={["Kind", "Code", "Description", "Status"]} actions>
          {order.map((c) => (
            <tr key={c.id} data-testid={`failure-code-${c.kind}-${c.code}`}>
              <td data-label="Kind">{humanize(c.kind)}</td>
              <td data-label="Code">
                <code>{c.code}</code>
              </td>
              <td data-label="Description">
                {editing === c.id ? (
                  <EditDescription
                    code={c}
                    onCancel={() => setEditing(null)}
                    onSaved={(n) => {
                      replace(n);
                      setEditing(null);
                      setNotice(`${n.code} updated.`);
                    }}
                  />
                ) : (
                  c.description
                )}
              </td>
              <td data-label="Status">
                <Badge value={c.active ? "active" : "inactive"} />
              </td>
              <td data-label="Actions">
                {editing !== c.id && (
                  <div className="cell-actions">
                    <button type="button" className="btn small" onClick={() => setEditing(c.id)}>
                      Edit
                    </button>
                    <button type="button" className={`btn small${c.active ? " danger" : ""}`} onClick={() => toggle(c)}>
                      {c.active ? "Deactivate" : "Activate"}
                    </button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </Table>
      </Listing>
    </>
  );
}

function EditDescription({ code, onSaved, onCancel }: { code: FailureCode; onSaved: (c: FailureCode) => void; onCancel: () => void }) {
  const [text, setText] = useState(code.description);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSaved(await patch<FailureCode>(`failure-codes/${code.id}`, { description: text.trim() }));
    } catch (err) {
      const fe = formErrorsOf(err);
      setError(fe.fields.description ?? otherFieldErrors(fe, []));
      setBusy(false);
    }
  };
  return (
    <form className="row" onSubmit={save} aria-label={`Edit ${code.code}`}>
      <Field label={`Description of ${code.code}`} error={error}>
        <input autoFocus required maxLength={200} value={text} onChange={(e) => setText(e.target.value)} />
      </Field>
      <button type="submit" className="btn small primary" disabled={busy}>
        Save
      </button>
      <button type="button" className="btn small" onClick={onCancel} disabled={busy}>
        Cancel
      </button>
    </form>
  );
}

function NewCodeForm({ initialKind, onCreated, onCancel }: { initialKind: CodeKind; onCreated: (c: FailureCode) => void; onCancel: () => void }) {
  const [kind, setKind] = useState<CodeKind>(initialKind);
  const [code, setCode] = useState("");
  const [description, setDescription] = useState("");
  const { busy, errors, submit } = useFormSubmit(async () => {
    onCreated(await post<FailureCode>("failure-codes", { kind, code: code.trim(), description: description.trim() }));
  }, "code");
  const general = otherFieldErrors(errors, ["kind", "code", "description"]);
  return (
    <Card title="Add a failure code">
      <form className="admin-form" onSubmit={submit} aria-label="Add a failure code">
        <Field label="Kind" error={errors.fields.kind}>
          <select value={kind} onChange={(e) => setKind(e.target.value as CodeKind)}>
            <Options values={CODE_KINDS} />
          </select>
        </Field>
        <Field label="Code" error={errors.fields.code} hint="Up to 16 of A-Z, 0-9, _ and -; stored upper-case">
          <input required maxLength={16} value={code} onChange={(e) => setCode(e.target.value.toUpperCase())} autoComplete="off" />
        </Field>
        <div className="wide">
          <Field label="Description" error={errors.fields.description}>
            <input required maxLength={200} value={description} onChange={(e) => setDescription(e.target.value)} autoComplete="off" />
          </Field>
        </div>
        <FormError message={general} wide />
        <FormActions busy={busy} label="Add code" busyLabel="Adding…" onCancel={onCancel} className="form-actions" />
      </form>
    </Card>
  );
}
