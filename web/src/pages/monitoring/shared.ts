// Shapes and helpers of the monitoring area (anomalies, sensors, trends), as the API sends them.
import { getAll, get } from "../../api";
import { fmtDuration } from "../../format";
import type { Anomaly, Equipment, TrendSeries } from "../../types";

export type { Anomaly, Bucket, Equipment, LatestValue, Sensor, TrendSeries, WorkOrder } from "../../types";
export { ACTIVE_WO } from "../../types";

export const SEVERITIES = ["critical", "high", "medium", "low"] as const;
export const KINDS = ["high", "low", "out_of_range", "stuck", "drift", "no_data", "multivariate", "predicted_high", "predicted_low"];
/** The API's limit of sensors per multi-sensor trend call and of points per series. */
export const MAX_SENSORS = 20;
export const MAX_POINTS = 10_000;

export type Health = "alarm" | "warning" | "healthy";

/** An asset's health from its open anomalies: high/critical → alarm, low/medium → warning. */
export function healthOf(open: Anomaly[]): Health {
  if (open.some((a) => a.severity === "high" || a.severity === "critical")) return "alarm";
  return open.length ? "warning" : "healthy";
}

export const sec = (iso: string) => new Date(iso).getTime() / 1000;

/** Several sensors' trends in one range, in calls of at most 20 sensors. */
export async function fetchTrends(ids: string[], query: { from: string; to: string; maxPoints: number }, signal?: AbortSignal): Promise<TrendSeries[]> {
  const out: TrendSeries[] = [];
  for (let i = 0; i < ids.length; i += MAX_SENSORS) {
    const part = ids.slice(i, i + MAX_SENSORS);
    out.push(...(await get<TrendSeries[]>("readings", { sensorIds: part, ...query }, signal)));
  }
  return out;
}

/** Equipment by id (every page; the demo fleet is small). */
export async function equipmentMap(): Promise<Map<string, Equipment>> {
  const all = await getAll<Equipment>("equipment", {}, 5000);
  return new Map(all.map((e) => [e.id, e]));
}

export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** A bucket width for people: "250 ms", "2 s", "1 min". */
export function fmtBucket(seconds: number): string {
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : fmtDuration(seconds);
}
