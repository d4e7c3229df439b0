// Formatting of times, durations and numbers for people.

export function fmtTime(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function fmtAgo(iso?: string | null, now = Date.now()): string {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "—";
  const s = Math.round((now - t) / 1000);
  if (Math.abs(s) < 45) return s >= 0 ? "just now" : "in a moment";
  const units: Array<[number, string]> = [
    [60, "min"],
    [3600, "h"],
    [86400, "d"],
  ];
  const abs = Math.abs(s);
  let out = `${Math.round(abs / 86400)} d`;
  for (let i = 0; i < units.length; i++) {
    const next = units[i + 1]?.[0] ?? Infinity;
    if (abs < next) {
      out = `${Math.round(abs / units[i][0])} ${units[i][1]}`;
      break;
    }
  }
  return s >= 0 ? `${out} ago` : `in ${out}`;
}

export function fmtDuration(seconds?: number | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function fmtNumber(v?: number | null, digits = 2): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return "—";
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2);
  return v.toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** "in_progress" → "In progress". */
export function humanize(s?: string | null): string {
  if (!s) return "—";
  const t = s.replace(/[_-]+/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}
