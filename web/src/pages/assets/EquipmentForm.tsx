// The form to register an asset or edit one (name, tag, parent, location, criticality, status).
import { useState, type FormEvent } from "react";
import { patch, post } from "../../api";
import { Field, Options } from "../../ui/common";
import { CRITICALITIES, EQUIPMENT_STATUSES, type Equipment, type EquipmentNode } from "./types";
import { FormActions, FormError, useFormErrors } from "../../ui/forms";
import { descendantsOf, flatten } from "./util";

const FIELDS = ["name", "assetTag", "parentId", "location", "criticality", "status", "description"];

export function EquipmentForm({
  forest,
  existing,
  defaultParent,
  onDone,
  onCancel,
}: {
  forest: EquipmentNode[];
  existing?: Equipment;
  defaultParent?: string;
  onDone: (e: Equipment) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState(existing?.name ?? "");
  const [assetTag, setAssetTag] = useState(existing?.assetTag ?? "");
  const [parentId, setParentId] = useState(existing ? (existing.parentId ?? "") : (defaultParent ?? ""));
  const [location, setLocation] = useState(existing?.location ?? "");
  const [criticality, setCriticality] = useState(existing?.criticality ?? "medium");
  const [status, setStatus] = useState(existing?.status ?? "active");
  const [description, setDescription] = useState(existing?.description ?? "");
  const [busy, setBusy] = useState(false);
  const errs = useFormErrors();
  const blocked = existing ? descendantsOf(forest, existing.id) : new Set<string>();
  const options = flatten(forest).filter(({ node }) => !blocked.has(node.id));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    if (!name.trim()) return errs.setField("name", "Enter a name");
    if (!existing && !assetTag.trim()) return errs.setField("assetTag", "Enter an asset tag");
    if (existing && status !== existing.status && (status === "decommissioned" || status === "retired")) {
      const ok = window.confirm(`Mark ${existing.assetTag} as ${status}? Everything below it becomes ${status} too.`);
      if (!ok) return;
    }
    setBusy(true);
    try {
      let saved: Equipment;
      if (existing) {
        const change: Record<string, unknown> = {};
        if (name !== existing.name) change.name = name;
        if (location !== existing.location) change.location = location;
        if (criticality !== existing.criticality) change.criticality = criticality;
        if (status !== existing.status) change.status = status;
        if (description !== existing.description) change.description = description;
        if ((existing.parentId ?? "") !== parentId) {
          if (parentId) change.parentId = parentId;
          else change.moveToRoot = true;
        }
        saved = Object.keys(change).length ? await patch<Equipment>(`equipment/${existing.id}`, change) : existing;
      } else {
        saved = await post<Equipment>("equipment", {
          name: name.trim(),
          assetTag: assetTag.trim(),
          parentId: parentId || null,
          location: location.trim(),
          criticality,
          description: description.trim(),
        });
      }
      onDone(saved);
    } catch (err) {
      errs.take(err, FIELDS);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} aria-label={existing ? "Edit asset" : "New asset"} className="eq-form" noValidate>
      <div className="grid cols-2">
        <Field label="Name" error={errs.fields.name}>
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} required />
        </Field>
        <Field label="Asset tag" error={errs.fields.assetTag} hint={existing ? "The tag cannot be changed" : "Unique, e.g. P-101"}>
          <input value={assetTag} onChange={(e) => setAssetTag(e.target.value)} maxLength={64} disabled={!!existing} required={!existing} />
        </Field>
        <Field label="Parent" error={errs.fields.parentId}>
          <select value={parentId} onChange={(e) => setParentId(e.target.value)}>
            <option value="">— None (top level) —</option>
            {options.map(({ node, depth }) => (
              <option key={node.id} value={node.id}>
                {"\u00a0\u00a0".repeat(depth)}
                {node.assetTag} · {node.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Location" error={errs.fields.location}>
          <input value={location} onChange={(e) => setLocation(e.target.value)} />
        </Field>
        <Field label="Criticality" error={errs.fields.criticality}>
          <select value={criticality} onChange={(e) => setCriticality(e.target.value)}>
            <Options values={CRITICALITIES} />
          </select>
        </Field>
        {existing && (
          <Field label="Status" error={errs.fields.status} hint="Decommissioning or retiring also applies to everything below">
            <select value={status} onChange={(e) => setStatus(e.target.value)}>
              <Options values={EQUIPMENT_STATUSES} />
            </select>
          </Field>
        )}
      </div>
      <Field label="Description" error={errs.fields.description}>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      <FormError message={errs.form} />
      <FormActions busy={busy} label={existing ? "Save changes" : "Add asset"} busyLabel="Saving…" onCancel={onCancel} lockCancel />
    </form>
  );
}
