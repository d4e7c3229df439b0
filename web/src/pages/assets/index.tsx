// Routes of the assets area: equipment tree and asset pages, parts, work requests, and the public QR request form.
import type { RouteObject } from "react-router-dom";
import { Require } from "../../ui/Layout";
import { AssetPage } from "./AssetPage";
import { EquipmentPage } from "./EquipmentPage";
import { PartPage } from "./PartPage";
import { PartsPage } from "./PartsPage";
import { RequestFormPage } from "./RequestForm";
import { RequestsPage } from "./RequestsPage";
import "./assets.css";

export const assetsRoutes: RouteObject[] = [
  {
    path: "equipment",
    element: (
      <Require any={["equipment:view"]}>
        <EquipmentPage />
      </Require>
    ),
  },
  {
    path: "equipment/:id",
    element: (
      <Require any={["equipment:view"]}>
        <AssetPage />
      </Require>
    ),
  },
  {
    path: "parts",
    element: (
      <Require any={["parts:view"]}>
        <PartsPage />
      </Require>
    ),
  },
  {
    path: "parts/:id",
    element: (
      <Require any={["parts:view"]}>
        <PartPage />
      </Require>
    ),
  },
  {
    path: "requests",
    element: (
      <Require any={["work_orders:create", "requests:approve"]}>
        <RequestsPage />
      </Require>
    ),
  },
];

/** Pages that need no session (the QR request form signs in by itself). */
export const publicRoutes: RouteObject[] = [{ path: "/request", element: <RequestFormPage /> }];
