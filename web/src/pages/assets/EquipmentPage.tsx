// The equipment browser (/equipment): the asset tree with health and criticality, search, and "add asset".
import { useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { get } from "../../api";
import { useAuth } from "../../auth";
import { Badge, Card, Empty, ErrorBox, LoadMore, Loading, Options, PageHeader } from "../../ui/common";
import { useAsync, usePaged } from "../../ui/hooks";
import { useQueryState } from "../../ui/useQueryState";
import { EquipmentForm } from "./EquipmentForm";
import { rollup, useHealth, type Health } from "./health";
import { CRITICALITIES, EQUIPMENT_STATUSES, type Equipment, type EquipmentNode } from "./types";

/** What the page keeps in the URL: the filters, and the "add asset" form (under `parent`). */
const KEYS = ["q", "criticality", "status", "new", "parent"] as const;

const NO_ANOMALY: Health = { count: 0, severity: null };

export function HealthBadge({ health, rolled }: { health?: Health; rolled?: Health }) {
  if (!health && !rolled) return null;
  const own = health?.count ?? 0;
  const below = (rolled?.count ?? 0) - own;
  if (own === 0 && below <= 0) return <span className="badge badge-healthy">Healthy</span>;
  return (
    <span className="row tight">
      {own > 0 && (
        <span className={`badge badge-${health?.severity ?? "medium"}`} title={`Worst open anomaly: ${health?.severity}`}>
          ⚠ {own} open {own === 1 ? "anomaly" : "anomalies"}
        </span>
      )}
      {below > 0 && (
        <span className="badge badge-below" title={`Worst below: ${rolled?.severity}`}>
          {below} below
        </span>
      )}
    </span>
  );
}

export function EquipmentPage() {
  const { can } = useAuth();
  const [params, setParams] = useQueryState(KEYS, (p) => !("q" in p));
  const navigate = useNavigate();
  const { q, criticality, status } = params;
  const adding = params.new === "1";
  const filtered = Boolean(q || criticality || status);
  const [text, setText] = useState(q);

  const tree = useAsync((signal) => get<EquipmentNode[]>("equipment/tree", undefined, signal), []);
  const health = useHealth(can("anomalies:view"));
  const rolled = useMemo(() => {
    const out = new Map<string, Health>();
    if (health.data && tree.data) tree.data.forEach((n) => rollup(n, health.data!, out));
    return out;
  }, [health.data, tree.data]);

  const setParam = (k: (typeof KEYS)[number], v: string) => setParams({ [k]: v });
  const search = (e: FormEvent) => {
    e.preventDefault();
    setParam("q", text.trim());
  };

  return (
    <div className="assets-page">
      <PageHeader title="Equipment" sub="Every asset, where it sits in the plant and how it is doing">
        {can("equipment:create") && !adding && (
          <button type="button" className="btn primary" onClick={() => setParam("new", "1")}>
            Add asset
          </button>
        )}
      </PageHeader>

      {adding && tree.data && (
        <Card title="New asset">
          <EquipmentForm
            forest={tree.data}
            defaultParent={params.parent || undefined}
            onCancel={() => setParams({ new: "", parent: "" }, false)}
            onDone={(e) => navigate(`/equipment/${e.id}`)}
          />
        </Card>
      )}

      <form className="filters" role="search" onSubmit={search}>
        <input
          type="search"
          aria-label="Search equipment"
          placeholder="Search tag, name, location…"
          value={text}
          onChange={(e) => setText(e.target.value)}
          className="grow"
        />
        <button type="submit" className="btn">
          Search
        </button>
        <select aria-label="Criticality" value={criticality} onChange={(e) => setParam("criticality", e.target.value)}>
          <Options values={CRITICALITIES} any="Any criticality" />
        </select>
        <select aria-label="Status" value={status} onChange={(e) => setParam("status", e.target.value)}>
          <Options values={EQUIPMENT_STATUSES} any="Any status" />
        </select>
        {filtered && (
          <button
            type="button"
            className="btn"
            onClick={() => {
              setText("");
              setParams({ q: "", criticality: "", status: "", new: "", parent: "" }, false);
            }}
          >
            Clear
          </button>
        )}
      </form>

      {filtered ? (
        <SearchResults q={q} criticality={criticality} status={status} health={health.data} />
      ) : tree.loading && !tree.data ? (
        <Loading what="Loading equipment" />
      ) : tree.error ? (
        <ErrorBox error={tree.error} onRetry={tree.reload} />
      ) : tree.data && tree.data.length === 0 ? (
        <Empty>No equipment yet.{can("equipment:create") && " Add the first asset with “Add asset”."}</Empty>
      ) : (
        tree.data && <Tree forest={tree.data} health={health.data} rolled={rolled} />
      )}
    </div>
  );
}

function Tree({ forest, health, rolled }: { forest: EquipmentNode[]; health?: Map<string, Health>; rolled: Map<string, Health> }) {
  // Top-level nodes start open; the set holds what the user toggled away from that.
  const [open, setOpen] = useState<Set<string>>(() => new Set(forest.map((n) => n.id)));
  const all = useMemo(() => {
    const ids: string[] = [];
    const walk = (n: EquipmentNode) => {
      if (n.children.length) ids.push(n.id);
      n.children.forEach(walk);
    };
    forest.forEach(walk);
    return ids;
  }, [forest]);
  const toggle = (id: string) =>
    setOpen((o) => {
      const n = new Set(o);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  return (
    <Card
      className="tree-card"
      title={`${all.length ? "Plant hierarchy" : "Assets"}`}
      actions={
        <div className="row">
          <button type="button" className="btn small" onClick={() => setOpen(new Set(all))}>
            Expand all
          </button>
          <button type="button" className="btn small" onClick={() => setOpen(new Set())}>
            Collapse all
          </button>
        </div>
      }
    >
      <ul className="eq-tree" role="tree" aria-label="Equipment tree">
        {forest.map((n) => (
          <TreeNode key={n.id} node={n} depth={0} open={open} toggle={toggle} health={health} rolled={rolled} />
        ))}
      </ul>
    </Card>
  );
}

function TreeNode({
  node,
  depth,
  open,
  toggle,
  health,
  rolled,
}: {
  node: EquipmentNode;
  depth: number;
  open: Set<string>;
  toggle: (id: string) => void;
  health?: Map<string, Health>;
  rolled: Map<string, Health>;
}) {
  const isOpen = open.has(node.id);
  const hasKids = node.children.length > 0;
  return (
    <li role="treeitem" aria-expanded={hasKids ? isOpen : undefined} aria-level={depth + 1}>
      <div className="eq-row" data-testid={`eq-node-${node.assetTag}`} style={{ paddingLeft: depth * 22 + 4 }}>
        {hasKids ? (
          <button
            type="button"
            className="twisty"
            aria-label={`${isOpen ? "Collapse" : "Expand"} ${node.name}`}
            onClick={() => toggle(node.id)}
          >
            {isOpen ? "▾" : "▸"}
          </button>
        ) : (
          <span className="twisty" aria-hidden />
        )}
        <Link to={`/equipment/${node.id}`} className="eq-link">
          <span className="tag mono">{node.assetTag}</span> {node.name}
        </Link>
        {hasKids && <span className="muted small">({node.children.length})</span>}
        <span className="spacer" />
        {node.location && <span className="muted small eq-loc">{node.location}</span>}
        {node.status !== "active" && <Badge value={node.status} />}
        {health && (!hasKids || !isOpen || health.has(node.id)) && (
          <HealthBadge health={health.get(node.id) ?? NO_ANOMALY} rolled={isOpen ? health.get(node.id) : rolled.get(node.id)} />
        )}
        <span className="crit-col">
          <Badge value={node.criticality} title="Criticality" />
        </span>
      </div>
      {hasKids && isOpen && (
        <ul role="group">
          {node.children.map((c) => (
            <TreeNode key={c.id} node={c} depth={depth + 1} open={open} toggle={toggle} health={health} rolled={rolled} />
          ))}
        </ul>
      )}
    </li>
  );
}

function SearchResults({ q, criticality, status, health }: { q: string; criticality: string; status: string; health?: Map<string, Health> }) {
  const list = usePaged<Equipment>("equipment", { q, criticality, status }, 50);
  if (list.error) return <ErrorBox error={list.error} onRetry={list.reload} />;
  if (list.loading && list.items.length === 0) return <Loading what="Searching" />;
  if (list.items.length === 0) return <Empty>No equipment matches.</Empty>;
  return (
    <>
      <div className="table-wrap">
        <table className="list" aria-label="Equipment found">
          <thead>
            <tr>
              <th>Tag</th>
              <th>Name</th>
              <th>Location</th>
              <th>Criticality</th>
              <th>Status</th>
              {health && <th>Health</th>}
            </tr>
          </thead>
          <tbody>
            {list.items.map((e) => (
              <tr key={e.id} data-testid={`eq-result-${e.assetTag}`}>
                <td className="mono">
                  <Link to={`/equipment/${e.id}`}>{e.assetTag}</Link>
                </td>
                <td>
                  <Link to={`/equipment/${e.id}`}>{e.name}</Link>
                </td>
                <td>{e.location || <span className="muted">—</span>}</td>
                <td>
                  <Badge value={e.criticality} />
                </td>
                <td>
                  <Badge value={e.status} />
                </td>
                {health && (
                  <td>
                    <HealthBadge health={health.get(e.id) ?? { count: 0, severity: null }} />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </>
  );
}
