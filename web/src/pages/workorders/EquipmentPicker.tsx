// Asset picker for work-order forms: the equipment tree, searchable by
// name, asset tag or location; picks one piece of equipment (or none).
import { useMemo, useState } from "react";
import { get } from "../../api";
import { humanize } from "../../format";
import { ErrorBox, Loading } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import type { EquipmentNode } from "./types";

interface Row {
  node: EquipmentNode;
  depth: number;
  path: string;
}

function flatten(nodes: EquipmentNode[], depth = 0, path = ""): Row[] {
  const out: Row[] = [];
  for (const n of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    out.push({ node: n, depth, path });
    out.push(...flatten(n.children ?? [], depth + 1, path ? `${path} › ${n.name}` : n.name));
  }
  return out;
}

export function EquipmentPicker({ value, onChange, invalid }: { value: string; onChange: (id: string) => void; invalid?: boolean }) {
  const tree = useAsync((signal) => get<EquipmentNode[]>("equipment/tree", undefined, signal), []);
  const [q, setQ] = useState("");
  const rows = useMemo(() => flatten(tree.data ?? []), [tree.data]);
  const needle = q.trim().toLowerCase();
  const shown = needle
    ? rows.filter(({ node }) => [node.name, node.assetTag, node.location].some((s) => s?.toLowerCase().includes(needle)))
    : rows;
  const selected = rows.find((r) => r.node.id === value)?.node;
  return (
    <div className="wo-picker" aria-invalid={invalid || undefined}>
      <div className="row" style={{ marginBottom: 6 }}>
        <input type="search" aria-label="Search equipment" placeholder="Search name, tag or location" value={q} onChange={(e) => setQ(e.target.value)} style={{ flex: 1 }} />
        {value && (
          <button type="button" className="btn small" onClick={() => onChange("")}>
            Clear
          </button>
        )}
      </div>
      <div className="muted" style={{ marginBottom: 4 }} aria-live="polite">
        {selected ? (
          <>
            Selected: <strong>{selected.name}</strong> ({selected.assetTag})
          </>
        ) : (
          "No asset selected"
        )}
      </div>
      <ErrorBox error={tree.error} onRetry={tree.reload} />
      {tree.loading && !tree.data ? (
        <Loading what="Loading equipment" />
      ) : (
        <div className="wo-tree" role="listbox" aria-label="Equipment">
          {shown.slice(0, 300).map(({ node, depth, path }) => (
            <button
              type="button"
              key={node.id}
              role="option"
              aria-selected={node.id === value}
              aria-pressed={node.id === value}
              style={{ paddingLeft: needle ? 8 : 8 + depth * 16 }}
              onClick={() => onChange(node.id)}
            >
              {node.name}
              <span className="tag">{node.assetTag}</span>
              {node.status !== "active" && <span className="tag">({humanize(node.status)})</span>}
              {needle && path && <span className="tag">· {path}</span>}
            </button>
          ))}
          {!shown.length && <div className="muted" style={{ padding: 8 }}>No equipment matches “{q}”.</div>}
        </div>
      )}
    </div>
  );
}
