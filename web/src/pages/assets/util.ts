// Helpers of the assets area: tree flattening, money, request urgency.
import type { EquipmentNode } from "./types";

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Every node of a forest with its depth, in display order. */
export function flatten(forest: EquipmentNode[], depth = 0, out: Array<{ node: EquipmentNode; depth: number }> = []) {
  for (const n of forest) {
    out.push({ node: n, depth });
    flatten(n.children, depth + 1, out);
  }
  return out;
}

/** Ids of `id` and everything below it (a parent cannot move under these). */
export function descendantsOf(forest: EquipmentNode[], id: string): Set<string> {
  const out = new Set<string>();
  const walk = (n: EquipmentNode, inside: boolean) => {
    const now = inside || n.id === id;
    if (now) out.add(n.id);
    n.children.forEach((c) => walk(c, now));
  };
  forest.forEach((n) => walk(n, false));
  return out;
}

export function fmtMoney(cents?: number | null): string {
  if (cents === undefined || cents === null) return "—";
  return (cents / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** Urgency of a request, as the form offers it, and the work-order priority it suggests. */
export const URGENCIES = [
  { value: "low", label: "Can wait", hint: "Fix when convenient" },
  { value: "medium", label: "Soon", hint: "This week" },
  { value: "high", label: "Urgent", hint: "Affects production" },
  { value: "critical", label: "Stopped / unsafe", hint: "Machine down or a safety risk" },
] as const;

const URGENCY_LINE = /^Urgency: (low|medium|high|critical)\s*$/m;

/** The API has no urgency field on requests: the form writes it as the description's first line. */
export function withUrgency(urgency: string, details: string): string {
  return `Urgency: ${urgency}${details.trim() ? `\n\n${details.trim()}` : ""}`;
}

export function splitUrgency(description: string): { urgency: string | null; text: string } {
  const m = URGENCY_LINE.exec(description);
  if (!m) return { urgency: null, text: description };
  return { urgency: m[1], text: description.replace(URGENCY_LINE, "").trim() };
}

export function hoursText(h?: number | null): string {
  if (h === undefined || h === null || !Number.isFinite(h)) return "—";
  if (h < 48) return `${h.toFixed(1)} h`;
  return `${(h / 24).toFixed(1)} d`;
}
