// Shapes shared by the areas, as the API sends them (camelCase JSON): the
// session, and the domain objects several areas read. Area-only shapes live
// next to their pages.

export type Role = "admin" | "manager" | "technician" | "requester";

export interface User {
  id: string;
  organizationId: string;
  email: string;
  name: string;
  role: Role;
  active: boolean;
  createdAt: string;
}

export interface Organization {
  id: string;
  slug: string;
  name: string;
}

export interface Me {
  user: User;
  organization: Organization;
  permissions: string[];
}

/** An outbox event, as streamed over the WebSocket. */
export interface LiveEvent {
  id: number;
  kind: string;
  subjectId?: string | null;
  payload: unknown;
  createdAt: string;
}

// ---- Domain shapes every area reads (models/src/*.rs; Option<T> is sent as null) ----

export type Severity = "low" | "medium" | "high" | "critical";

/** An asset of the plant (models/src/equipment.rs). */
export interface Equipment {
  id: string;
  parentId: string | null;
  name: string;
  assetTag: string;
  description: string;
  location: string;
  /** low | medium | high | critical */
  criticality: string;
  /** active | maintenance | decommissioned | retired */
  status: string;
  createdAt: string;
  updatedAt: string;
}

/** An asset with what sits below it (GET equipment/tree). */
export interface EquipmentNode extends Equipment {
  children: EquipmentNode[];
}

/** A measured quantity of a device on an asset (models/src/devices.rs). */
export interface Sensor {
  id: string;
  deviceId: string;
  equipmentId: string;
  metric: string;
  name: string;
  unit: string;
  minValue: number | null;
  maxValue: number | null;
  createdAt: string;
}

/** The newest reading of a sensor (GET readings/latest). */
export interface LatestValue {
  sensorId: string;
  equipmentId: string;
  deviceId: string;
  metric: string;
  name: string;
  unit: string;
  ts: string | null;
  value: number | null;
}

/** One time bucket of a sensor's readings. */
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

/** An anomaly episode found by a detector (models/src/anomalies.rs). */
export interface Anomaly {
  id: string;
  sensorId: string;
  equipmentId: string;
  kind: string;
  detector: string;
  status: "open" | "closed";
  severity: Severity;
  score: number;
  startedAt: string;
  endedAt: string | null;
  peakValue: number;
  baseline: number | null;
  points: number;
  details: Record<string, unknown>;
  workOrderId: string | null;
  createdAt: string;
  failureMode: string | null;
  verdict: string | null;
  suppressedReason: string | null;
  suppressedUntil: string | null;
}

export type WorkOrderStatus = "open" | "in_progress" | "on_hold" | "completed" | "verified" | "cancelled";
export type WorkOrderKind = "corrective" | "preventive" | "inspection" | "emergency";
export type Priority = "low" | "medium" | "high" | "critical";
export type WorkOrderSource = "manual" | "auto";
export type Verdict = "true_alarm" | "false_alarm";

/** Work-order statuses that still need work. */
export const ACTIVE_WO = ["open", "in_progress", "on_hold"];

/** A work order (models/src/work_orders.rs). */
export interface WorkOrder {
  id: string;
  code: string;
  number: number;
  title: string;
  description: string;
  kind: WorkOrderKind;
  status: WorkOrderStatus;
  priority: Priority;
  source: WorkOrderSource;
  equipmentId: string | null;
  sensorId: string | null;
  anomalyId: string | null;
  occurrenceCount: number;
  lastOccurrenceAt: string | null;
  requestedBy: string | null;
  assignedTo: string | null;
  assignees: string[];
  problemCode: string | null;
  causeCode: string | null;
  remedyCode: string | null;
  dueAt: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  failureMode: string | null;
  evidence: Record<string, unknown> | null;
  verdict: Verdict | null;
}

/** A spare part of the catalog with its stock over all locations (models/src/parts.rs). */
export interface Part {
  id: string;
  sku: string;
  name: string;
  description: string;
  unit: string;
  unitCostCents: number;
  reorderPoint: number;
  reorderQty: number;
  onHand: number;
  reserved: number;
  available: number;
  lowStock: boolean;
  createdAt: string;
}

export interface StockLocation {
  id: string;
  name: string;
  description: string;
  createdAt: string;
}

export type CodeKind = "problem" | "cause" | "remedy";
export const CODE_KINDS: CodeKind[] = ["problem", "cause", "remedy"];

/** A problem / cause / remedy code of the catalog (models/src/failure_codes.rs). */
export interface FailureCode {
  id: string;
  kind: CodeKind;
  code: string;
  description: string;
  active: boolean;
  createdAt: string;
  updatedAt: string;
}
