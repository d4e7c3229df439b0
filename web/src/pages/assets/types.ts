// Shapes of the assets area (criticality, reliability, stock, requests) as the API sends them; the
// domain objects other areas read too live in ../../types.
import type { Part, User } from "../../types";

export type { Anomaly, Bucket, Equipment, EquipmentNode, LatestValue, Part, Sensor, StockLocation, TrendSeries, WorkOrder } from "../../types";
export { ACTIVE_WO } from "../../types";

/** Who a request or work order can go to (GET users). */
export type UserLite = Pick<User, "id" | "name" | "email" | "role" | "active">;

export type Criticality = "low" | "medium" | "high" | "critical";
export const CRITICALITIES: Criticality[] = ["low", "medium", "high", "critical"];
export const EQUIPMENT_STATUSES = ["active", "maintenance", "decommissioned", "retired"] as const;

export interface AssetReliability {
  equipmentId: string;
  name: string;
  assetTag: string;
  failures: number;
  mttrHours: number | null;
  mtbfHours: number | null;
  availability: number;
  openWorkOrders: number;
  overdueWorkOrders: number;
  labourMinutes: number;
  partsCostCents: number;
}

export interface ReliabilityReport {
  from: string;
  to: string;
  assets: AssetReliability[];
}

export interface LocationStock {
  locationId: string;
  locationName: string;
  onHand: number;
  reserved: number;
  available: number;
}

export interface PartDetail extends Part {
  locations: LocationStock[];
}

export interface StockMovement {
  id: string;
  partId: string;
  locationId: string;
  kind: "receive" | "issue" | "adjust" | "return";
  quantity: number;
  unitCostCents: number;
  workOrderId: string | null;
  note: string;
  onHandAfter: number;
  createdBy: string | null;
  createdAt: string;
}

export interface WorkRequest {
  id: string;
  title: string;
  description: string;
  equipmentId: string | null;
  requestedBy: string;
  status: "pending" | "approved" | "rejected";
  rejectionReason: string | null;
  workOrderId: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  createdAt: string;
}

