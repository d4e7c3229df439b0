// Shapes of the administration API (users, devices, webhooks, dead letters, audit, failure codes).
import type { User } from "../../types";

export type { CodeKind, FailureCode, Sensor, User } from "../../types";
export { CODE_KINDS } from "../../types";

export const ROLES = ["admin", "manager", "technician", "requester"] as const;

export interface InviteResponse {
  user: User;
  inviteToken: string;
  expiresAt: string;
}

export interface Device {
  id: string;
  name: string;
  description: string;
  active: boolean;
  lastSeenAt?: string | null;
  createdAt: string;
}

export interface DeviceCredentials {
  device: Device;
  secret: string;
}

export interface DeadLetter {
  id: number;
  receivedAt: string;
  topic: string;
  payloadText: string;
  reason: string;
  detail: string;
}

/** Reasons the ingest pipeline gives (ingest/src/codec.rs, sparkplug.rs). */
export const DEAD_LETTER_REASONS = [
  "bad_topic",
  "malformed_payload",
  "bad_timestamp",
  "future_timestamp",
  "invalid_value",
  "unknown_device",
  "inactive_device",
  "unknown_sensor",
  "unknown_alias",
  "no_usable_metrics",
];

export interface Webhook {
  id: string;
  url: string;
  eventKinds: string[];
  active: boolean;
  createdAt: string;
}

export interface CreatedWebhook extends Webhook {
  secret: string;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed" | "dead";

export interface Delivery {
  id: number;
  webhookId: string;
  eventId: number;
  eventKind: string;
  attempt: number;
  status: DeliveryStatus;
  nextAttemptAt?: string | null;
  lastStatusCode?: number | null;
  lastError?: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Event kinds a webhook can subscribe to (the outbox's kinds). */
export const EVENT_KINDS = [
  "work_order.created",
  "work_order.updated",
  "work_order.commented",
  "work_order.time_logged",
  "work_order.escalated",
  "work_order.attachment_added",
  "work_order.checklist_updated",
  "anomaly.opened",
  "anomaly.closed",
  "request.created",
  "part.low_stock",
  "device.created",
  "device.revoked",
  "user.created",
];

export interface AuditEntry {
  id: number;
  tableName: string;
  rowId?: string | null;
  action: "insert" | "update" | "delete" | string;
  actorUserId?: string | null;
  actor: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  changedAt: string;
}

export const AUDIT_TABLES = [
  "users",
  "user_invites",
  "devices",
  "sensors",
  "equipment",
  "work_orders",
  "work_order_comments",
  "work_order_time_logs",
  "work_order_assignees",
  "work_order_downtime",
  "work_order_checklist_items",
  "work_requests",
  "anomalies",
  "parts",
  "stock_locations",
  "stock_movements",
  "part_reservations",
  "pm_schedules",
  "failure_codes",
  "webhooks",
  "attachments",
  "detector_tuning",
];


