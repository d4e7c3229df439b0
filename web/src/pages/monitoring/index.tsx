// Routes of the monitoring area: the fleet dashboard, anomalies and the trend explorer.
import type { RouteObject } from "react-router-dom";
import { Require } from "../../ui/Layout";
import { Dashboard } from "./Dashboard";
import { AnomalyList } from "./Anomalies";
import { AnomalyPage } from "./AnomalyPage";
import { Trends } from "./Trends";
import "./monitoring.css";

export const monitoringRoutes: RouteObject[] = [
  {
    index: true,
    element: (
      <Require any={["anomalies:view"]}>
        <Dashboard />
      </Require>
    ),
  },
  {
    path: "anomalies",
    element: (
      <Require any={["anomalies:view"]}>
        <AnomalyList />
      </Require>
    ),
  },
  {
    path: "anomalies/:id",
    element: (
      <Require any={["anomalies:view"]}>
        <AnomalyPage />
      </Require>
    ),
  },
  {
    path: "trends",
    element: (
      <Require any={["readings:view"]}>
        <Trends />
      </Require>
    ),
  },
];
