// One part (/parts/:id): stock per location, receive / issue / return / adjust forms, and the movement ledger.
import { useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { get, getPage, post } from "../../api";
import { useAuth } from "../../auth";
import { fmtNumber, fmtTime, humanize } from "../../format";
import { Card, Empty, ErrorBox, Field, Listing, LoadMore, Loading, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync, usePaged } from "../../ui/hooks";
import { ACTIVE_WO, type PartDetail, type StockLocation, type StockMovement, type WorkOrder } from "./types";
import { FormActions, FormError, useFormErrors } from "../../ui/forms";
import { fmtMoney } from "./util";

type Kind = "receive" | "issue" | "return" | "adjust";
const KIND_LABEL: Record<Kind, string> = { receive: "Receive", issue: "Issue", return: "Return", adjust: "Adjust count" };
const SUBMIT_LABEL: Record<Kind, string> = {
  receive: "Record receipt",
  issue: "Issue to work order",
  return: "Return to stock",
  adjust: "Save adjustment",
};

export function PartPage() {
  const { id = "" } = useParams();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const locationFilter = params.get("location") ?? "";
  const part = useAsync((signal) => get<PartDetail>(`parts/${id}`, undefined, signal), [id]);
  const locations = useAsync((signal) => get<StockLocation[]>("stock-locations", undefined, signal), []);
  const movements = usePaged<StockMovement>(`parts/${id}/movements`, { locationId: locationFilter }, 30);
  const kinds: Kind[] = [
    ...(can("parts:manage") ? (["receive"] as Kind[]) : []),
    ...(can("parts:issue") ? (["issue", "return"] as Kind[]) : []),
    ...(can("parts:manage") ? (["adjust"] as Kind[]) : []),
  ];
  const [kind, setKind] = useState<Kind | null>(null);

  if (part.loading && !part.data) return <Loading what="Loading part" />;
  if (part.error || !part.data) return <ErrorBox error={part.error ?? "Part not found"} onRetry={part.reload} />;
  const p = part.data;
  const locName = new Map((locations.data ?? []).map((l) => [l.id, l.name]));
  p.locations.forEach((l) => locName.set(l.locationId, l.locationName));

  const done = () => {
    part.reload();
    movements.reload();
    locations.reload();
    setKind(null);
  };

  return (
    <div className="assets-page">
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/parts">Parts</Link> › <span aria-current="page">{p.sku}</span>
      </nav>
      <PageHeader
        title={
          <>
            <span className="mono tag-title">{p.sku}</span> {p.name}
          </>
        }
        sub={p.description || undefined}
      >
        {kinds.map((k) => (
          <button key={k} type="button" className={`btn${kind === k ? " primary" : ""}`} onClick={() => setKind(kind === k ? null : k)}>
            {KIND_LABEL[k]}
          </button>
        ))}
      </PageHeader>

      <div className="grid cols-4 stats-row" data-testid="part-stock">
        <div className="card stat">
          <span className="value" data-testid="part-on-hand">
            {fmtNumber(p.onHand, 0)}
          </span>
          <span className="label">On hand ({p.unit})</span>
        </div>
        <div className="card stat">
          <span className="value">{fmtNumber(p.reserved, 0)}</span>
          <span className="label">Reserved for work orders</span>
        </div>
        <div className={`card stat${p.lowStock ? " stat-bad" : ""}`}>
          <span className="value">{fmtNumber(p.available, 0)}</span>
          <span className="label">Available {p.lowStock && <span className="badge badge-critical">Low stock</span>}</span>
        </div>
        <div className="card stat">
          <span className="value">{fmtNumber(p.reorderPoint, 0)}</span>
          <span className="label">
            Reorder point · order {p.reorderQty} · {fmtMoney(p.unitCostCents)} each
          </span>
        </div>
      </div>

      {kind && (
        <Card title={`${KIND_LABEL[kind]} stock`} className="stock-form-card">
          <StockForm
            key={kind}
            kind={kind}
            partId={p.id}
            unit={p.unit}
            locations={locations.data ?? []}
            stocked={p.locations.map((l) => l.locationId)}
            canCreateLocation={can("parts:manage")}
            onDone={done}
            onCancel={() => setKind(null)}
          />
        </Card>
      )}

      <Card title="Stock per location">
        {p.locations.length === 0 ? (
          <Empty>Not stocked anywhere yet.</Empty>
        ) : (
          <Table label="Stock per location" columns={["Location", { label: "On hand", className: "num" }, { label: "Reserved", className: "num" }, { label: "Available", className: "num" }]}>
            {p.locations.map((l) => (
              <tr key={l.locationId} data-testid={`stock-${l.locationName}`}>
                <td>
                  <button type="button" className="linklike" onClick={() => setParams(locationFilter === l.locationId ? {} : { location: l.locationId })}>
                    {l.locationName}
                  </button>
                </td>
                <td className="num">{l.onHand}</td>
                <td className="num">{l.reserved}</td>
                <td className="num">
                  <strong>{l.available}</strong>
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>

      <Card
        title="Movements"
        actions={
          <select aria-label="Movements at location" value={locationFilter} onChange={(e) => setParams(e.target.value ? { location: e.target.value } : {})}>
            <option value="">All locations</option>
            {[...locName.entries()].map(([lid, name]) => (
              <option key={lid} value={lid}>
                {name}
              </option>
            ))}
          </select>
        }
      >
        <Listing
          of={movements}
          isEmpty={movements.items.length === 0}
          empty="No movements yet."
          errorInPlace
        >
          <Table label="Movements" columns={["When", "Kind", "Location", { label: "Quantity", className: "num" }, { label: "On hand after", className: "num" }, "Work order", "Note"]}>
            {movements.items.map((m) => (
              <tr key={m.id}>
                <td>{fmtTime(m.createdAt)}</td>
                <td>
                  <span className={`badge badge-mv-${m.kind}`}>{humanize(m.kind)}</span>
                </td>
                <td>{locName.get(m.locationId) ?? "—"}</td>
                <td className={`num ${m.quantity < 0 ? "neg" : "pos"}`}>
                  {m.quantity > 0 ? "+" : ""}
                  {m.quantity}
                </td>
                <td className="num">{m.onHandAfter}</td>
                <td>{m.workOrderId ? <Link to={`/work-orders/${m.workOrderId}`}>Open</Link> : <span className="muted">—</span>}</td>
                <td className="muted">{m.note || "—"}</td>
              </tr>
            ))}
          </Table>
        </Listing>
        <LoadMore hasMore={movements.hasMore} loading={movements.loading} onClick={movements.loadMore} />
      </Card>
    </div>
  );
}

const NEW_LOCATION = "__new__";
const STOCK_FIELDS = ["locationId", "quantity", "workOrderId", "note", "unitCostCents", "name"];

function StockForm({
  kind,
  partId,
  unit,
  locations,
  stocked,
  canCreateLocation,
  onDone,
  onCancel,
}: {
  kind: Kind;
  partId: string;
  unit: string;
  locations: StockLocation[];
  stocked: string[];
  canCreateLocation: boolean;
  onDone: () => void;
  onCancel: () => void;
}) {
  // Issue and adjust usually happen where the part is; receive and return anywhere.
  const preferred = kind === "issue" && stocked.length ? stocked[0] : (locations[0]?.id ?? "");
  const [locationId, setLocationId] = useState(preferred || (canCreateLocation && kind === "receive" ? NEW_LOCATION : ""));
  const [newLocation, setNewLocation] = useState("");
  const [quantity, setQuantity] = useState("");
  const [workOrderId, setWorkOrderId] = useState("");
  const [cost, setCost] = useState("");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const errs = useFormErrors();
  const needsWo = kind === "issue" || kind === "return";
  const workOrders = useAsync(
    async (signal) => {
      if (!needsWo) return [];
      const pages = await Promise.all(ACTIVE_WO.map((status) => getPage<WorkOrder>("work-orders", { status, limit: 100 }, signal)));
      return pages.flatMap((p) => p.items).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },
    [needsWo],
  );

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    const q = Number(quantity);
    if (!Number.isInteger(q) || q === 0 || (kind !== "adjust" && q < 0)) {
      return errs.setField("quantity", kind === "adjust" ? "Enter a whole number other than 0 (negative removes)" : "Enter a whole number above 0");
    }
    if (!locationId) return errs.setField("locationId", "Choose a location");
    if (locationId === NEW_LOCATION && !newLocation.trim()) return errs.setField("name", "Name the new location");
    if (needsWo && !workOrderId) return errs.setField("workOrderId", "Choose the work order");
    if (kind === "adjust" && !note.trim()) return errs.setField("note", "Say why the count changes");
    const cents = cost.trim() ? Math.round(Number(cost.replace(",", ".")) * 100) : undefined;
    if (cents !== undefined && !Number.isFinite(cents)) return errs.setField("unitCostCents", "Enter a price, e.g. 12.50");
    setBusy(true);
    try {
      let loc = locationId;
      if (loc === NEW_LOCATION) {
        const created = await post<StockLocation>("stock-locations", { name: newLocation.trim() });
        loc = created.id;
        setLocationId(loc);
      }
      const body: Record<string, unknown> = { locationId: loc, quantity: q, note: note.trim() || (kind === "adjust" ? note : undefined) };
      if (needsWo) body.workOrderId = workOrderId;
      if (kind === "receive" && cents !== undefined) body.unitCostCents = cents;
      await post(`parts/${partId}/${kind}`, body);
      onDone();
    } catch (err) {
      errs.take(err, STOCK_FIELDS);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} aria-label={`${KIND_LABEL[kind]} stock`} noValidate>
      <div className="grid cols-3">
        <Field label="Location" error={errs.fields.locationId}>
          <select value={locationId} onChange={(e) => setLocationId(e.target.value)}>
            {!locationId && <option value="">Choose…</option>}
            {locations.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name}
                {stocked.includes(l.id) ? "" : " (none here)"}
              </option>
            ))}
            {canCreateLocation && kind === "receive" && <option value={NEW_LOCATION}>+ New location…</option>}
          </select>
        </Field>
        {locationId === NEW_LOCATION && (
          <Field label="New location name" error={errs.fields.name}>
            <input value={newLocation} onChange={(e) => setNewLocation(e.target.value)} placeholder="e.g. Main store, shelf B3" />
          </Field>
        )}
        <Field
          label={`Quantity (${unit})`}
          error={errs.fields.quantity}
          hint={kind === "adjust" ? "Positive adds, negative removes" : undefined}
        >
          <input type="number" step={1} min={kind === "adjust" ? undefined : 1} value={quantity} onChange={(e) => setQuantity(e.target.value)} required />
        </Field>
        {needsWo && (
          <Field label="Work order" error={errs.fields.workOrderId}>
            <select value={workOrderId} onChange={(e) => setWorkOrderId(e.target.value)} disabled={!workOrders.data}>
              <option value="">{workOrders.data ? "Choose…" : "Loading…"}</option>
              {(workOrders.data ?? []).map((w) => (
                <option key={w.id} value={w.id}>
                  {w.code} — {w.title}
                </option>
              ))}
            </select>
          </Field>
        )}
        {kind === "receive" && (
          <Field label="Unit cost (optional)" error={errs.fields.unitCostCents} hint="Default: the part's unit cost">
            <input value={cost} onChange={(e) => setCost(e.target.value)} inputMode="decimal" placeholder="0.00" />
          </Field>
        )}
        <Field label={kind === "adjust" ? "Reason" : "Note (optional)"} error={errs.fields.note}>
          <input value={note} onChange={(e) => setNote(e.target.value)} required={kind === "adjust"} />
        </Field>
      </div>
      {workOrders.error ? <ErrorBox error={workOrders.error} /> : null}
      <FormError message={errs.form} />
      <FormActions busy={busy} label={SUBMIT_LABEL[kind]} busyLabel="Saving…" onCancel={onCancel} lockCancel />
    </form>
  );
}
