// The signed-in frame: navigation (only what the role may open), the live
// indicator, the user menu, and the page outlet.
import { useEffect, useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router-dom";
import { useAuth } from "../auth";
import { useLiveStatus } from "../live";

export interface NavItem {
  to: string;
  label: string;
  /** Shown when the user has any of these permissions. */
  any: string[];
  end?: boolean;
}

export const NAV: NavItem[] = [
  { to: "/", label: "Dashboard", any: ["anomalies:view"], end: true },
  { to: "/anomalies", label: "Anomalies", any: ["anomalies:view"] },
  { to: "/trends", label: "Trends", any: ["readings:view"] },
  { to: "/equipment", label: "Equipment", any: ["equipment:view"] },
  { to: "/work-orders", label: "Work orders", any: ["work_orders:view"] },
  { to: "/parts", label: "Parts", any: ["parts:view"] },
  { to: "/requests", label: "Requests", any: ["work_orders:create", "requests:approve"] },
  { to: "/admin", label: "Admin", any: ["users:manage", "devices:manage", "webhooks:manage"] },
];

export function Layout() {
  const { me, can, logout } = useAuth();
  const live = useLiveStatus();
  const [open, setOpen] = useState(false);
  const location = useLocation();
  useEffect(() => setOpen(false), [location.pathname]);
  const items = NAV.filter((n) => n.any.some(can));
  return (
    <div className="app">
      <header className="topbar">
        <button type="button" className="menu-toggle" aria-label="Menu" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
          ☰
        </button>
        <NavLink to="/" className="brand">
          MaintAInPro
        </NavLink>
        <nav className={`nav${open ? " open" : ""}`} aria-label="Main">
          {items.map((n) => (
            <NavLink key={n.to} to={n.to} end={n.end} className={({ isActive }) => (isActive ? "active" : undefined)}>
              {n.label}
            </NavLink>
          ))}
        </nav>
        <div className="user">
          <span className={`live-dot${live ? " on" : ""}`} title={live ? "Live updates on" : "Live updates reconnecting"} />
          <span className="who" data-testid="who">
            {me?.user.name} <small>({me?.user.role})</small>
          </span>
          <button type="button" className="btn small ghost" onClick={() => void logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main className="content">
        <Outlet />
      </main>
    </div>
  );
}

/** Wraps a page that needs a permission: others see a clear refusal, not a broken page. */
export function Require({ any, children }: { any: string[]; children: React.ReactNode }) {
  const { can } = useAuth();
  if (!any.some(can)) {
    return (
      <div className="forbidden" role="alert">
        <h1>Not available</h1>
        <p>Your role does not give access to this page.</p>
      </div>
    );
  }
  return <>{children}</>;
}
