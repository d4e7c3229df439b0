// Asset health from open anomalies: count and worst severity per asset (and rolled up the tree).
import { getAll } from "../../api";
import { useAsync } from "../../ui/hooks";
import type { Anomaly, EquipmentNode } from "./types";

export interface Health {
  count: number;
  severity: string | null;
}

const RANK: Record<string, number> = { low: 1, medium: 2, high: 3, critical: 4 };

export function worse(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return (RANK[b] ?? 0) > (RANK[a] ?? 0) ? b : a;
}

/** Open anomalies per asset; undefined map while loading or when the role may not see anomalies. */
export function useHealth(enabled: boolean) {
  return useAsync<Map<string, Health> | undefined>(async () => {
    if (!enabled) return undefined;
    const open = await getAll<Anomaly>("anomalies", { status: "open" }, 1000);
    const m = new Map<string, Health>();
    for (const a of open) {
      const h = m.get(a.equipmentId) ?? { count: 0, severity: null };
      h.count += 1;
      h.severity = worse(h.severity, a.severity);
      m.set(a.equipmentId, h);
    }
    return m;
  }, [enabled]);
}

/** Health of a node and everything below it. */
export function rollup(node: EquipmentNode, own: Map<string, Health>, out: Map<string, Health>): Health {
  const mine = own.get(node.id) ?? { count: 0, severity: null };
  const total: Health = { count: mine.count, severity: mine.severity };
  for (const c of node.children) {
    const h = rollup(c, own, out);
    total.count += h.count;
    total.severity = worse(total.severity, h.severity);
  }
  out.set(node.id, total);
  return total;
}
