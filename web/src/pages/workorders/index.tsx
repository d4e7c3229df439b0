// Routes of the work-order area: board, list, new, detail.
import type { RouteObject } from "react-router-dom";
import { Require } from "../../ui/Layout";
import { Board } from "./Board";
import { WorkOrderDetailPage } from "./Detail";
import { WorkOrderList } from "./List";
import { NewWorkOrder } from "./New";
import "./workorders.css";

const view = ["work_orders:view"];

export const workordersRoutes: RouteObject[] = [
  { path: "work-orders", element: <Require any={view}><Board /></Require> },
  { path: "work-orders/list", element: <Require any={view}><WorkOrderList /></Require> },
  { path: "work-orders/new", element: <Require any={["work_orders:create"]}><NewWorkOrder /></Require> },
  { path: "work-orders/:id", element: <Require any={view}><WorkOrderDetailPage /></Require> },
];
