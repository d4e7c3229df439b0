// The web UI's entry point: session, live events and the route table. Each
// area (monitoring, work orders, assets, admin) declares its own routes in
// pages/<area>/index.tsx.
import { StrictMode, useEffect } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider, useLocation } from "react-router-dom";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { AuthProvider, useAuth } from "./auth";
import { setLive } from "./live";
import { Layout } from "./ui/Layout";
import { Loading } from "./ui/common";
import { Login } from "./pages/Login";
import { monitoringRoutes } from "./pages/monitoring";
import { workordersRoutes } from "./pages/workorders";
import { assetsRoutes, publicRoutes } from "./pages/assets";
import { adminPublicRoutes, adminRoutes } from "./pages/admin";

/** Signed-in pages: the sign-in form until there is a session. */
function Gate() {
  const { state, can } = useAuth();
  const location = useLocation();
  useEffect(() => {
    setLive(state.status === "signedIn");
  }, [state.status]);
  if (state.status === "loading") return <Loading what="Starting" />;
  if (state.status === "signedOut") return <Login />;
  // The dashboard is for people who may see anomalies; others start at their work.
  if (location.pathname === "/" && !can("anomalies:view")) {
    return <Navigate to={can("work_orders:view") ? "/work-orders" : "/requests"} replace />;
  }
  return <Layout />;
}

function NotFound() {
  return (
    <div className="forbidden">
      <h1>Page not found</h1>
      <p>
        <a href="/">Back to the start</a>
      </p>
    </div>
  );
}

const router = createBrowserRouter([
  ...publicRoutes,
  ...adminPublicRoutes,
  {
    path: "/",
    element: <Gate />,
    children: [...monitoringRoutes, ...workordersRoutes, ...assetsRoutes, ...adminRoutes, { path: "*", element: <NotFound /> }],
  },
]);

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <AuthProvider>
        <RouterProvider router={router} />
      </AuthProvider>
    </StrictMode>,
  );
}
