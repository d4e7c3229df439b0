// Shapes of the assets area (equipment, sensors, parts, requests) as the API sends them.

export type Criticality = "low" | "medium" | "high" | "critical";
export const CRITICALITIES: Criticality[] = ["low", "medium", "high", "critical"];
export const EQUIPMENT_STATUSES = ["active", "maintenance", "decommissioned", "retired"] as const;

export interface Equipment {
  id: string;
  parentId: string | null;
  name: string;
  assetTag: string;
  description: string;
  location: string;
  criticality: string;
  status: string;
  createdAt: string;
  updatedAt: string;
}

export interface EquipmentNode extends Equipment {
  children: EquipmentNode[];
}

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

export interface LatestValue {
  sensorId: string;
  equipmentId: string;
  metric: string;
  name: string;
  unit: string;
  ts: string | null;
  value: number | null;
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
  buckets: Bucket[];
}

export interface Anomaly {
  id: string;
  sensorId: string;
  equipmentId: string;
  kind: string;
  status: string;
  severity: string;
  score: number;
  startedAt: string;
  endedAt: string | null;
  peakValue: number;
  workOrderId: string | null;
}

export interface WorkOrder {
  id: string;
  code: string;
  title: string;
  kind: string;
  status: string;
  priority: string;
  source: string;
  equipmentId: string | null;
  dueAt: string | null;
  createdAt: string;
  completedAt: string | null;
}

export const ACTIVE_WO = ["open", "in_progress", "on_hold"];

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
  updatedAt: string;
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

export interface StockLocation {
  id: string;
  name: string;
  description: string;
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

export interface UserLite {
  id: string;
  name: string;
  email: string;
  role: string;
  active: boolean;
}
