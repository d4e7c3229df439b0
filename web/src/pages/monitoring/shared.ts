// Shapes and helpers of the monitoring area (anomalies, sensors, trends), as the API sends them.
import { getAll, get } from "../../api";
import { fmtDuration } from "../../format";

export interface Anomaly {
  id: string;
  sensorId: string;
  equipmentId: string;
  kind: string;
  detector: string;
  status: "open" | "closed";
  severity: "low" | "medium" | "high" | "critical";
  score: number;
  startedAt: string;
  endedAt?: string | null;
  peakValue: number;
  baseline?: number | null;
  points: number;
  details: Record<string, unknown>;
  workOrderId?: string | null;
  createdAt: string;
  failureMode?: string | null;
  verdict?: string | null;
  suppressedReason?: string | null;
  suppressedUntil?: string | null;
}

export interface Sensor {
  id: string;
  deviceId: string;
  equipmentId: string;
  metric: string;
  name: string;
  unit: string;
  minValue?: number | null;
  maxValue?: number | null;
  createdAt: string;
}

export interface LatestValue {
  sensorId: string;
  equipmentId: string;
  deviceId: string;
  metric: string;
  name: string;
  unit: string;
  ts?: string | null;
  value?: number | null;
}

export interface Equipment {
  id: string;
  parentId?: string | null;
  name: string;
  assetTag: string;
  location: string;
  criticality: string;
  status: string;
}

export interface Bucket {
  ts: string;
  min: number;
  avg: number;
  max: number;
  count: number;
}

export interface TrendSeries {
  sensorId: string;
  from: string;
  to: string;
  resolution: "raw" | "1m" | "1h";
  bucketSeconds: number;
  lttb: boolean;
  rowsScanned: number;
  buckets: Bucket[];
}

export interface WorkOrder {
  id: string;
  code: string;
  title: string;
  status: string;
  priority: string;
  source: string;
  equipmentId?: string | null;
  sensorId?: string | null;
  anomalyId?: string | null;
  occurrenceCount: number;
  lastOccurrenceAt?: string | null;
  createdAt: string;
  failureMode?: string | null;
  evidence?: Record<string, unknown> | null;
  verdict?: string | null;
}

export const SEVERITIES = ["critical", "high", "medium", "low"] as const;
export const KINDS = ["high", "low", "out_of_range", "stuck", "drift", "no_data", "multivariate", "predicted_high", "predicted_low"];
/** Work-order statuses that still need work. */
export const ACTIVE_WO = ["open", "in_progress", "on_hold"];
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
