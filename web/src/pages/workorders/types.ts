// Shapes of the work-order area as the API sends them (camelCase JSON).

export type Status = "open" | "in_progress" | "on_hold" | "completed" | "verified" | "cancelled";
export type Kind = "corrective" | "preventive" | "inspection" | "emergency";
export type Priority = "low" | "medium" | "high" | "critical";
export type Source = "manual" | "auto";
export type Verdict = "true_alarm" | "false_alarm";

export const KINDS: Kind[] = ["corrective", "preventive", "inspection", "emergency"];
export const PRIORITIES: Priority[] = ["low", "medium", "high", "critical"];
export const SOURCES: Source[] = ["manual", "auto"];

export interface WorkOrder {
  id: string;
  code: string;
  number: number;
  title: string;
  description: string;
  kind: Kind;
  status: Status;
  priority: Priority;
  source: Source;
  equipmentId?: string | null;
  sensorId?: string | null;
  anomalyId?: string | null;
  occurrenceCount: number;
  lastOccurrenceAt?: string | null;
  requestedBy?: string | null;
  assignedTo?: string | null;
  assignees: string[];
  problemCode?: string | null;
  causeCode?: string | null;
  remedyCode?: string | null;
  dueAt?: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt?: string | null;
  failureMode?: string | null;
  evidence?: Record<string, unknown> | null;
  verdict?: Verdict | null;
}

export interface Anomaly {
  id: string;
  sensorId: string;
  equipmentId: string;
  kind: string;
  detector: string;
  status: string;
  severity: string;
  score: number;
  startedAt: string;
  endedAt?: string | null;
  peakValue: number;
  baseline?: number | null;
  points: number;
  details: unknown;
  workOrderId?: string | null;
  failureMode?: string | null;
  verdict?: string | null;
}

export interface WorkOrderDetail extends WorkOrder {
  anomaly?: Anomaly | null;
}

/** One status of the status machine (GET work-orders/statuses). */
export interface StatusInfo {
  status: Status;
  next: Status[];
  active: boolean;
}

export interface FailureCode {
  id: string;
  kind: "problem" | "cause" | "remedy";
  code: string;
  description: string;
  active: boolean;
}

export interface Comment {
  id: string;
  workOrderId: string;
  authorId?: string | null;
  body: string;
  createdAt: string;
}

export interface TimeLog {
  id: string;
  workOrderId: string;
  userId: string;
  minutes: number;
  performedOn: string;
  note: string;
  createdAt: string;
}

export interface TimeSheet {
  entries: TimeLog[];
  totalMinutes: number;
}

export interface ChecklistItem {
  id: string;
  workOrderId: string;
  position: number;
  label: string;
  required: boolean;
  done: boolean;
  doneBy?: string | null;
  doneAt?: string | null;
  note: string;
  updatedAt: string;
}

export interface Attachment {
  id: string;
  workOrderId: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  uploadedBy?: string | null;
  createdAt: string;
}

export type DowntimeReason = "breakdown" | "planned_maintenance" | "waiting_parts" | "waiting_labor" | "inspection" | "other";
export const DOWNTIME_REASONS: DowntimeReason[] = ["breakdown", "planned_maintenance", "waiting_parts", "waiting_labor", "inspection", "other"];

export interface Downtime {
  id: string;
  workOrderId: string;
  equipmentId: string;
  startedAt: string;
  endedAt?: string | null;
  reason: DowntimeReason;
  note: string;
  recordedBy?: string | null;
}

export interface Part {
  id: string;
  sku: string;
  name: string;
  unit: string;
  unitCostCents: number;
  onHand: number;
  reserved: number;
  available: number;
}

export interface StockLocation {
  id: string;
  name: string;
}

export interface Reservation {
  id: string;
  workOrderId: string;
  partId: string;
  sku: string;
  partName: string;
  locationId: string;
  locationName: string;
  quantity: number;
}

export interface IssuedPart {
  partId: string;
  sku: string;
  name: string;
  unit: string;
  issued: number;
  returned: number;
  netQuantity: number;
  costCents: number;
}

export interface WorkOrderParts {
  workOrderId: string;
  issued: IssuedPart[];
  reserved: Reservation[];
  totalCostCents: number;
}

export interface Equipment {
  id: string;
  parentId?: string | null;
  name: string;
  assetTag: string;
  description: string;
  location: string;
  criticality: string;
  status: string;
}

export interface EquipmentNode extends Equipment {
  children: EquipmentNode[];
}
