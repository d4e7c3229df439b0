// Routes of the admin area: the section index with tabs (only what the role may use) and each section's page.
import type { ReactNode } from "react";
import { Link, NavLink, Outlet, type RouteObject } from "react-router-dom";
import { useAuth } from "../../auth";
import { Require } from "../../ui/Layout";
import { PageHeader } from "../../ui/common";
import { AcceptInvite } from "./AcceptInvite";
import { AuditPage } from "./Audit";
import { DeadLettersPage } from "./DeadLetters";
import { DevicesPage } from "./Devices";
import { FailureCodesPage } from "./FailureCodes";
import { UsersPage } from "./Users";
import { WebhookDeliveriesPage, WebhooksPage } from "./Webhooks";
import "./admin.css";

interface Section {
  to: string;
  label: string;
  perm: string;
  blurb: string;
}

/** The admin sections and the permission each needs (docs/permissions.md). */
export const SECTIONS: Section[] = [
  { to: "users", label: "Users", perm: "users:manage", blurb: "People of the organization: create, invite, change roles, deactivate." },
  { to: "devices", label: "Devices", perm: "devices:manage", blurb: "MQTT publishers and their sensors: register, rotate secrets, revoke." },
  { to: "dead-letters", label: "Dead letters", perm: "devices:manage", blurb: "Telemetry that could not be stored, with the reason." },
  { to: "webhooks", label: "Webhooks", perm: "webhooks:manage", blurb: "Endpoints receiving events, their signing secrets and delivery logs." },
  { to: "audit", label: "Audit log", perm: "audit:view", blurb: "Who changed what, when: every write to the organization's data." },
  { to: "failure-codes", label: "Failure codes", perm: "failure_codes:manage", blurb: "The problem / cause / remedy catalog used when closing work orders." },
];

export const ADMIN_PERMISSIONS = [...new Set(SECTIONS.map((s) => s.perm))];

function AdminShell() {
  const { can } = useAuth();
  const mine = SECTIONS.filter((s) => can(s.perm));
  return (
    <Require any={ADMIN_PERMISSIONS}>
      <div className="admin">
      <nav className="admin-tabs" aria-label="Administration">
        <NavLink to="/admin" end>
          Overview
        </NavLink>
        {mine.map((s) => (
          <NavLink key={s.to} to={`/admin/${s.to}`}>
            {s.label}
          </NavLink>
        ))}
      </nav>
      <Outlet />
      </div>
    </Require>
  );
}

function AdminHome() {
  const { can, me } = useAuth();
  const mine = SECTIONS.filter((s) => can(s.perm));
  return (
    <div className="admin-home">
      <PageHeader title="Administration" sub={`${me?.organization.name ?? "Organization"} — what your role (${me?.user.role ?? "?"}) may manage`} />
      <div className="grid cols-3">
        {mine.map((s) => (
          <section className="card" key={s.to} data-testid={`admin-section-${s.to}`}>
            <h2>
              <Link to={`/admin/${s.to}`}>{s.label}</Link>
            </h2>
            <p>{s.blurb}</p>
          </section>
        ))}
      </div>
    </div>
  );
}

function section(path: string, perm: string, element: ReactNode): RouteObject {
  return { path, element: <Require any={[perm]}>{element}</Require> };
}

export const adminRoutes: RouteObject[] = [
  {
    path: "admin",
    element: <AdminShell />,
    children: [
      { index: true, element: <AdminHome /> },
      section("users", "users:manage", <UsersPage />),
      section("devices", "devices:manage", <DevicesPage />),
      section("dead-letters", "devices:manage", <DeadLettersPage />),
      section("webhooks", "webhooks:manage", <WebhooksPage />),
      section("webhooks/:id", "webhooks:manage", <WebhookDeliveriesPage />),
      section("audit", "audit:view", <AuditPage />),
      section("failure-codes", "failure_codes:manage", <FailureCodesPage />),
    ],
  },
];

/** Pages that need no session: accepting an invitation (the link an administrator passes on). */
export const adminPublicRoutes: RouteObject[] = [{ path: "/accept-invite", element: <AcceptInvite /> }];
