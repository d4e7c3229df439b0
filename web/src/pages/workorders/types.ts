// Shapes of the work-order area as the API sends them (camelCase JSON); the work order,
// anomaly, equipment, part and failure-code shapes are shared (../../types).
import type { Anomaly, Priority, WorkOrder, WorkOrderKind, WorkOrderSource, WorkOrderStatus } from "../../types";

export type { Anomaly, Equipment, EquipmentNode, FailureCode, Part, Priority, StockLocation, Verdict, WorkOrder } from "../../types";
export type Status = WorkOrderStatus;
export type Kind = WorkOrderKind;
export type Source = WorkOrderSource;

export const KINDS: Kind[] = ["corrective", "preventive", "inspection", "emergency"];
export const PRIORITIES: Priority[] = ["low", "medium", "high", "critical"];
export const SOURCES: Source[] = ["manual", "auto"];

export interface WorkOrderDetail extends WorkOrder {
  anomaly?: Anomaly | null;
}

/** One status of the status machine (GET work-orders/statuses). */
export interface StatusInfo {
  status: Status;
  next: Status[];
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

