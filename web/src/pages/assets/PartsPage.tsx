// The parts catalog (/parts): search, low-stock view, stock per location, and "new part".
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { get, post } from "../../api";
import { useAuth } from "../../auth";
import { fmtNumber } from "../../format";
import { Card, ErrorBox, Field, Listing, LoadMore, Loading, PageHeader } from "../../ui/common";
import { useAsync, usePaged } from "../../ui/hooks";
import { useQueryState } from "../../ui/useQueryState";
import type { Part, PartDetail } from "./types";
import { FormActions, FormError, useFormErrors } from "../../ui/forms";
import { fmtMoney } from "./util";

export function PartsPage() {
  const { can } = useAuth();
  const navigate = useNavigate();
  const [params, setParams] = useQueryState(["q", "low", "new"] as const, false);
  const q = params.q;
  const low = params.low === "1";
  const adding = params.new === "1";
  const [text, setText] = useState(q);
  const list = usePaged<Part>("parts", { q, lowStock: low ? true : undefined }, 50);
  const [expanded, setExpanded] = useState<Set<string>>(new Set());

  const setParam = (k: "q" | "low" | "new", v: string) => setParams({ [k]: v });
  const search = (e: FormEvent) => {
    e.preventDefault();
    setParam("q", text.trim());
  };
  const toggle = (id: string) =>
    setExpanded((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  return (
    <div className="assets-page">
      <PageHeader title="Parts" sub="Spare parts, what is on the shelf and where">
        {can("parts:manage") && !adding && (
          <button type="button" className="btn primary" onClick={() => setParam("new", "1")}>
            New part
          </button>
        )}
      </PageHeader>
      {adding && (
        <Card title="New part">
          <NewPartForm onCancel={() => setParam("new", "")} onDone={(p) => navigate(`/parts/${p.id}`)} />
        </Card>
      )}
      <div className="tabs" role="tablist" aria-label="Parts view">
        <button type="button" role="tab" aria-selected={!low} className={!low ? "active" : undefined} onClick={() => setParam("low", "")}>
          All parts
        </button>
        <button type="button" role="tab" aria-selected={low} className={low ? "active" : undefined} onClick={() => setParam("low", "1")}>
          Low stock
        </button>
      </div>
      <form className="filters" role="search" onSubmit={search}>
        <input type="search" aria-label="Search parts" placeholder="SKU or name" value={text} onChange={(e) => setText(e.target.value)} className="grow" />
        <button type="submit" className="btn">
          Search
        </button>
        {q && (
          <button
            type="button"
            className="btn"
            onClick={() => {
              setText("");
              setParam("q", "");
            }}
          >
            Clear
          </button>
        )}
      </form>
      <Listing
        of={list}
        loadingText="Loading parts"
        isEmpty={list.items.length === 0}
        empty={low ? "No part is below its reorder point." : q ? "No part matches." : "No parts in the catalog yet."}
        errorInPlace
      >
        <div className="table-wrap">
          <table className="list" aria-label="Parts">
            <thead>
              <tr>
                <th aria-label="Locations" />
                <th>SKU</th>
                <th>Name</th>
                <th className="num">On hand</th>
                <th className="num hide-phone">Reserved</th>
                <th className="num">Available</th>
                <th className="num hide-phone">Reorder at</th>
                <th className="num hide-phone">Unit cost</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((p) => (
                <PartRow key={p.id} part={p} open={expanded.has(p.id)} toggle={() => toggle(p.id)} />
              ))}
            </tbody>
          </table>
        </div>
      </Listing>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </div>
  );
}

function PartRow({ part: p, open, toggle }: { part: Part; open: boolean; toggle: () => void }) {
  return (
    <>
      <tr data-testid={`part-${p.sku}`} className={p.lowStock ? "low-stock" : undefined}>
        <td>
          <button type="button" className="twisty" aria-expanded={open} aria-label={`Stock per location of ${p.sku}`} onClick={toggle}>
            {open ? "▾" : "▸"}
          </button>
        </td>
        <td className="mono">
          <Link to={`/parts/${p.id}`}>{p.sku}</Link>
        </td>
        <td>
          <Link to={`/parts/${p.id}`}>{p.name}</Link> {p.lowStock && <span className="badge badge-critical">Low stock</span>}
        </td>
        <td className="num" data-testid="on-hand">
          {fmtNumber(p.onHand, 0)} <span className="muted small">{p.unit}</span>
        </td>
        <td className="num hide-phone">{fmtNumber(p.reserved, 0)}</td>
        <td className="num">
          <strong>{fmtNumber(p.available, 0)}</strong>
        </td>
        <td className="num hide-phone">{fmtNumber(p.reorderPoint, 0)}</td>
        <td className="num hide-phone">{fmtMoney(p.unitCostCents)}</td>
      </tr>
      {open && (
        <tr className="sub-row">
          <td />
          <td colSpan={7}>
            <LocationsInline id={p.id} unit={p.unit} />
          </td>
        </tr>
      )}
    </>
  );
}

function LocationsInline({ id, unit }: { id: string; unit: string }) {
  const d = useAsync((signal) => get<PartDetail>(`parts/${id}`, undefined, signal), [id]);
  if (d.error) return <ErrorBox error={d.error} onRetry={d.reload} />;
  if (!d.data) return <Loading />;
  if (d.data.locations.length === 0) return <span className="muted">Not stocked anywhere yet.</span>;
  return (
    <ul className="loc-inline">
      {d.data.locations.map((l) => (
        <li key={l.locationId}>
          <strong>{l.locationName}</strong>: {l.onHand} {unit} on hand, {l.available} available
          {l.reserved > 0 && <span className="muted"> ({l.reserved} reserved)</span>}
        </li>
      ))}
    </ul>
  );
}

const PART_FIELDS = ["sku", "name", "unit", "unitCostCents", "reorderPoint", "reorderQty", "description"];

function NewPartForm({ onDone, onCancel }: { onDone: (p: Part) => void; onCancel: () => void }) {
  const [v, setV] = useState({ sku: "", name: "", unit: "each", cost: "", reorderPoint: "0", reorderQty: "0", description: "" });
  const [busy, setBusy] = useState(false);
  const errs = useFormErrors();
  const set = (k: keyof typeof v) => (e: { target: { value: string } }) => setV((o) => ({ ...o, [k]: e.target.value }));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    const cost = v.cost.trim() === "" ? undefined : Math.round(Number(v.cost.replace(",", ".")) * 100);
    if (cost !== undefined && !Number.isFinite(cost)) return errs.setField("unitCostCents", "Enter a price, e.g. 12.50");
    setBusy(true);
    try {
      const p = await post<Part>("parts", {
        sku: v.sku.trim(),
        name: v.name.trim(),
        unit: v.unit.trim() || undefined,
        unitCostCents: cost,
        reorderPoint: Number(v.reorderPoint) || 0,
        reorderQty: Number(v.reorderQty) || 0,
        description: v.description.trim(),
      });
      onDone(p);
    } catch (err) {
      errs.take(err, PART_FIELDS);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-label="New part" noValidate>
      <div className="grid cols-3">
        <Field label="SKU" error={errs.fields.sku}>
          <input value={v.sku} onChange={set("sku")} required />
        </Field>
        <Field label="Name" error={errs.fields.name}>
          <input value={v.name} onChange={set("name")} required />
        </Field>
        <Field label="Unit" error={errs.fields.unit} hint="each, m, l, kg…">
          <input value={v.unit} onChange={set("unit")} />
        </Field>
        <Field label="Unit cost" error={errs.fields.unitCostCents}>
          <input value={v.cost} onChange={set("cost")} inputMode="decimal" placeholder="0.00" />
        </Field>
        <Field label="Reorder point" error={errs.fields.reorderPoint} hint="Low stock below this">
          <input type="number" min={0} value={v.reorderPoint} onChange={set("reorderPoint")} />
        </Field>
        <Field label="Reorder quantity" error={errs.fields.reorderQty}>
          <input type="number" min={0} value={v.reorderQty} onChange={set("reorderQty")} />
        </Field>
      </div>
      <Field label="Description" error={errs.fields.description}>
        <textarea value={v.description} onChange={set("description")} />
      </Field>
      <FormError message={errs.form} />
      <FormActions busy={busy} label="Create part" busyLabel="Saving…" onCancel={onCancel} />
    </form>
  );
}
