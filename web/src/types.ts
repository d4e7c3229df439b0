// Shapes shared by several pages, as the API sends them (camelCase JSON).
// Area-specific shapes live next to their pages.

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
