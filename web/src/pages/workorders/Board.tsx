// The work-order board (/work-orders): a column per status, cards moved by
// drag and drop or by each card's "Move to…" menu, only along the moves the
// status machine allows; filters live in the URL; live events keep it current.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { getPage, messageOf, post, type Query } from "../../api";
import { useAuth } from "../../auth";
import { fmtTime, humanize } from "../../format";
import { useLiveEvents } from "../../live";
import type { User } from "../../types";
import { Badge, ErrorBox, Loading, Options, PageHeader } from "../../ui/common";
import { useQueryState, useSearchText } from "../../ui/useQueryState";
import { MoveDialog, needsDialog, NewWorkOrderLink, nextOf, refusalText, useEquipment, useStatusMachine, useUsers } from "./shared";
import { PRIORITIES, type Equipment, type Status, type StatusInfo, type WorkOrder } from "./types";

interface Column {
  items: WorkOrder[];
  cursor?: string;
  loading: boolean;
  error?: unknown;
}

const PAGE = 50;

/** Board filters from the URL. */
function useBoardFilters() {
  const [q, set] = useQueryState(["mine", "priority", "equipmentId", "q", "closed"] as const, (p) => "q" in p);
  const f = { ...q, mine: q.mine === "1", closed: q.closed === "1" };
  return { f, set: (k: keyof typeof q, v: string | boolean) => set({ [k]: v }) };
}

export function Board() {
  const { me, can } = useAuth();
  const { f, set } = useBoardFilters();
  const machine = useStatusMachine();
  const { byId: users } = useUsers();
  const equipment = useEquipment();
  const [columns, setColumns] = useState<Partial<Record<Status, Column>>>({});
  const [dragging, setDragging] = useState<WorkOrder | null>(null);
  const [hover, setHover] = useState<Status | null>(null);
  const [notice, setNotice] = useState<{ text: string; bad: boolean } | null>(null);
  const [dialog, setDialog] = useState<{ wo: WorkOrder; to: Status } | null>(null);
  // The search box follows the URL (back button) and writes to it once typing pauses.
  const [search, setSearch] = useSearchText(f.q, (text) => set("q", text));
  const gen = useRef(0);
  const mayMove = can("work_orders:update");

  const query = useMemo<Query>(
    () => ({ priority: f.priority, equipmentId: f.equipmentId, q: f.q, assignedTo: f.mine ? me?.user.id : undefined }),
    [f.priority, f.equipmentId, f.q, f.mine, me?.user.id],
  );
  const statuses = useMemo(() => (machine.data ?? []).filter((s) => s.next.length > 0 || f.closed), [machine.data, f.closed]);
  const statusKey = statuses.map((s) => s.status).join(",");

  const loadColumn = useCallback(
    async (status: Status, cursor: string | undefined, mine: number) => {
      setColumns((c) => ({ ...c, [status]: { items: c[status]?.items ?? [], cursor: c[status]?.cursor, loading: true } }));
      try {
        const page = await getPage<WorkOrder>("work-orders", { ...query, status, limit: PAGE, cursor });
        if (mine !== gen.current) return;
        setColumns((c) => ({
          ...c,
          [status]: { items: cursor ? [...(c[status]?.items ?? []), ...page.items] : page.items, cursor: page.nextCursor, loading: false },
        }));
      } catch (e) {
        if (mine !== gen.current) return;
        setColumns((c) => ({ ...c, [status]: { items: c[status]?.items ?? [], cursor: c[status]?.cursor, loading: false, error: e } }));
      }
    },
    [query],
  );

  const reloadAll = useCallback(() => {
    const mine = ++gen.current;
    for (const s of statusKey ? statusKey.split(",") : []) void loadColumn(s as Status, undefined, mine);
  }, [statusKey, loadColumn]);

  useEffect(reloadAll, [reloadAll]);


  /** Whether a work order belongs on the board under the current filters (search needs the server). */
  const matches = useCallback(
    (wo: WorkOrder) =>
      (!f.priority || wo.priority === f.priority) &&
      (!f.equipmentId || wo.equipmentId === f.equipmentId) &&
      (!f.mine || (me ? wo.assignees.includes(me.user.id) || wo.assignedTo === me.user.id : false)),
    [f.priority, f.equipmentId, f.mine, me],
  );

  /** Puts a changed work order where it now belongs (or takes it off the board). */
  const place = useCallback(
    (wo: WorkOrder, known = true) => {
      setColumns((cols) => {
        const out: Partial<Record<Status, Column>> = {};
        let index = -1;
        for (const [s, col] of Object.entries(cols) as Array<[Status, Column]>) {
          const i = col.items.findIndex((x) => x.id === wo.id);
          if (i >= 0 && s === wo.status) index = i;
          out[s] = i >= 0 ? { ...col, items: col.items.filter((x) => x.id !== wo.id) } : col;
        }
        const target = out[wo.status];
        if (target && (known || matches(wo))) {
          const items = [...target.items];
          if (index >= 0) items.splice(index, 0, wo);
          else items.unshift(wo);
          out[wo.status] = { ...target, items };
        }
        return out;
      });
    },
    [matches],
  );

  const onBoard = useCallback((id: string) => Object.values(columns).some((c) => c?.items.some((x) => x.id === id)), [columns]);

  useLiveEvents(["work_order."], (e) => {
    const wo = e.payload as WorkOrder | null;
    if (!wo || typeof wo !== "object" || !("status" in wo) || !("code" in wo)) return;
    const known = onBoard(wo.id);
    if (f.q && !known) return; // a search is the server's to answer
    if (!known && !matches(wo)) return;
    place(wo, known && matches(wo));
  });

  const move = async (wo: WorkOrder, to: Status) => {
    setNotice(null);
    if (wo.status === to) return;
    if (!nextOf(machine.data, wo.status).includes(to)) {
      setNotice({ text: `${wo.code}: ${refusalText(machine.data, wo.status, to)}`, bad: true });
      return;
    }
    if (needsDialog(to)) {
      setDialog({ wo, to });
      return;
    }
    const before = wo;
    place({ ...wo, status: to });
    try {
      const updated = await post<WorkOrder>(`work-orders/${wo.id}/status`, { status: to });
      place(updated);
      setNotice({ text: `${wo.code} moved to ${humanize(to).toLowerCase()}.`, bad: false });
    } catch (e) {
      place(before);
      setNotice({ text: `${wo.code} could not move to ${humanize(to).toLowerCase()}: ${messageOf(e)}`, bad: true });
    }
  };

  const endDrag = () => {
    if (dragging && hover && hover !== dragging.status && !nextOf(machine.data, dragging.status).includes(hover)) {
      setNotice({ text: `${dragging.code}: ${refusalText(machine.data, dragging.status, hover)}`, bad: true });
    }
    setDragging(null);
    setHover(null);
  };

  const assets = [...equipment.list].sort((a, b) => a.name.localeCompare(b.name));

  return (
    <div className="wo-board-page">
      <PageHeader title="Work orders" sub="Drag a card to another column, or use its “Move to” menu.">
        <Link className="btn" to={`/work-orders/list`}>
          List view
        </Link>
        <NewWorkOrderLink />
      </PageHeader>
      <div className="filters" role="search">
        <label className="wo-check">
          <input type="checkbox" checked={f.mine} onChange={(e) => set("mine", e.target.checked)} /> Assigned to me
        </label>
        <select aria-label="Priority" value={f.priority} onChange={(e) => set("priority", e.target.value)}>
          <Options values={PRIORITIES} any="Any priority" />
        </select>
        <select aria-label="Asset" value={f.equipmentId} onChange={(e) => set("equipmentId", e.target.value)} className="wo-asset-filter">
          <option value="">Any asset</option>
          {assets.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name} ({a.assetTag})
            </option>
          ))}
        </select>
        <input type="search" aria-label="Search work orders" placeholder="Search title or description" value={search} onChange={(e) => setSearch(e.target.value)} />
        <label className="wo-check">
          <input type="checkbox" checked={f.closed} onChange={(e) => set("closed", e.target.checked)} /> Show verified &amp; cancelled
        </label>
      </div>
      {notice && (
        <div className={notice.bad ? "error-box" : "notice"} role={notice.bad ? "alert" : "status"} data-testid="board-notice">
          <span>{notice.text}</span>
          <button type="button" className="btn small" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}
      {machine.error ? <ErrorBox error={machine.error} onRetry={machine.reload} /> : null}
      {!machine.data && machine.loading && <Loading what="Loading the board" />}
      <div
        className="wo-board"
        style={{ ["--wo-cols" as string]: statuses.length }}
        onDragLeave={(e) => {
          // Left the board altogether: no column is targeted any more.
          if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setHover(null);
        }}
      >
        {statuses.map((s) => (
          <BoardColumn
            key={s.status}
            info={s}
            column={columns[s.status]}
            dragging={dragging}
            hover={hover === s.status}
            machine={machine.data}
            mayMove={mayMove}
            users={users}
            equipment={equipment.byId}
            onHover={setHover}
            onDragStart={setDragging}
            onDragEnd={endDrag}
            onDrop={(to) => {
              const wo = dragging;
              setDragging(null);
              setHover(null);
              if (wo) void move(wo, to);
            }}
            onMove={(wo, to) => void move(wo, to)}
            onMore={() => void loadColumn(s.status, columns[s.status]?.cursor, gen.current)}
            onRetry={() => void loadColumn(s.status, undefined, gen.current)}
          />
        ))}
      </div>
      {dialog && (
        <MoveDialog
          wo={dialog.wo}
          to={dialog.to}
          onClose={() => setDialog(null)}
          onMoved={(updated) => {
            setDialog(null);
            place(updated);
            setNotice({ text: `${updated.code} moved to ${humanize(updated.status).toLowerCase()}.`, bad: false });
          }}
        />
      )}
    </div>
  );
}

interface ColumnProps {
  info: StatusInfo;
  column?: Column;
  dragging: WorkOrder | null;
  hover: boolean;
  machine?: StatusInfo[];
  mayMove: boolean;
  users: Map<string, User>;
  equipment: Map<string, Equipment>;
  onHover: (s: Status | null) => void;
  onDragStart: (wo: WorkOrder) => void;
  onDragEnd: () => void;
  onDrop: (to: Status) => void;
  onMove: (wo: WorkOrder, to: Status) => void;
  onMore: () => void;
  onRetry: () => void;
}

function BoardColumn(p: ColumnProps) {
  const status = p.info.status;
  const from = p.dragging?.status;
  const allowed = !!p.dragging && from !== status && nextOf(p.machine, from!).includes(status);
  const refused = !!p.dragging && from !== status && !allowed;
  const cls = ["wo-column", allowed ? "drop-ok" : "", refused ? "drop-no" : "", p.hover && allowed ? "drop-hover" : ""].filter(Boolean).join(" ");
  const items = p.column?.items ?? [];
  return (
    <section
      className={cls}
      data-testid={`column-${status}`}
      aria-label={humanize(status)}
      aria-dropeffect={allowed ? "move" : undefined}
      onDragEnter={() => p.dragging && p.onHover(status)}
      onDragOver={(e) => {
        if (!p.dragging) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = allowed ? "move" : "none";
      }}
      onDrop={(e) => {
        e.preventDefault();
        if (allowed) p.onDrop(status);
      }}
    >
      <header className="wo-column-head">
        <Badge value={status} />
        <span className="muted">
          {items.length}
          {p.column?.cursor ? "+" : ""}
        </span>
      </header>
      {refused && (
        <div className="wo-drop-why" aria-hidden={!p.hover}>
          {p.hover ? refusalText(p.machine, from!, status) : "Not allowed from " + humanize(from!).toLowerCase()}
        </div>
      )}
      {allowed && <div className="wo-drop-ok">Drop to move here</div>}
      <div className="wo-column-body">
        {p.column?.error ? <ErrorBox error={p.column.error} onRetry={p.onRetry} /> : null}
        {p.column?.loading && !items.length && <Loading />}
        {!p.column?.loading && !items.length && !p.column?.error && <div className="wo-column-empty">No work orders</div>}
        {items.map((wo) => (
          <BoardCard key={wo.id} wo={wo} {...p} />
        ))}
        {p.column?.cursor && (
          <button type="button" className="btn small wo-more" disabled={p.column.loading} onClick={p.onMore}>
            {p.column.loading ? "Loading…" : "Load more"}
          </button>
        )}
      </div>
    </section>
  );
}

function BoardCard({ wo, machine, mayMove, users, equipment, dragging, onDragStart, onDragEnd, onMove }: ColumnProps & { wo: WorkOrder }) {
  const next = nextOf(machine, wo.status);
  const asset = wo.equipmentId ? equipment.get(wo.equipmentId) : undefined;
  const overdue = wo.dueAt && new Date(wo.dueAt).getTime() < Date.now() && ["open", "in_progress", "on_hold"].includes(wo.status);
  const people = (wo.assignees.length ? wo.assignees : wo.assignedTo ? [wo.assignedTo] : []).map((id) => users.get(id)?.name ?? "Someone");
  const draggable = mayMove && next.length > 0;
  return (
    <article
      className={`wo-card prio-${wo.priority}${dragging?.id === wo.id ? " dragging" : ""}`}
      data-testid={`wo-card-${wo.code}`}
      draggable={draggable}
      onDragStart={(e) => {
        e.dataTransfer.setData("text/plain", wo.id);
        e.dataTransfer.effectAllowed = "move";
        onDragStart(wo);
      }}
      onDragEnd={onDragEnd}
    >
      <div className="wo-card-top">
        <Link to={`/work-orders/${wo.id}`} className="wo-code" draggable={false}>
          {wo.code}
        </Link>
        <Badge value={wo.priority} />
      </div>
      <Link to={`/work-orders/${wo.id}`} className="wo-card-title" draggable={false}>
        {wo.title}
      </Link>
      <div className="wo-card-meta">
        {asset ? <span title={asset.location}>⚙ {asset.name}</span> : wo.equipmentId ? <span>⚙ asset</span> : null}
        {wo.source === "auto" ? (
          <span className="wo-auto" title="Raised automatically by analytics">
            Auto{wo.occurrenceCount > 1 ? ` · ×${wo.occurrenceCount}` : ""}
          </span>
        ) : (
          <span className="muted">Manual</span>
        )}
        {wo.dueAt && <span className={overdue ? "wo-overdue" : "muted"}>Due {fmtTime(wo.dueAt)}</span>}
      </div>
      <div className="wo-card-bottom">
        <span className="wo-people" title={people.join(", ")}>
          {people.length ? people.map((n, i) => <span key={i} className="wo-avatar" aria-label={n}>{initials(n)}</span>) : <span className="muted">Unassigned</span>}
        </span>
        {mayMove && next.length > 0 && (
          <select
            className="wo-move"
            aria-label={`Move ${wo.code} to`}
            value=""
            onChange={(e) => {
              if (e.target.value) onMove(wo, e.target.value as Status);
            }}
          >
            <Options values={next} any="Move to…" />
          </select>
        )}
      </div>
    </article>
  );
}

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join("");
}
