// Unit tests of the assets area's helpers (urgency line in requests, tree walking).
import { describe, expect, it } from "vitest";
import type { EquipmentNode } from "./types";
import { descendantsOf, flatten, splitUrgency, withUrgency } from "./util";

describe("request urgency", () => {
  it("round-trips through the description", () => {
    const d = withUrgency("high", "  Oil under the pump ");
    expect(d).toBe("Urgency: high\n\nOil under the pump");
    expect(splitUrgency(d)).toEqual({ urgency: "high", text: "Oil under the pump" });
  });
  it("leaves descriptions without the line alone", () => {
    expect(splitUrgency("Just text")).toEqual({ urgency: null, text: "Just text" });
    expect(withUrgency("low", "")).toBe("Urgency: low");
  });
});

function node(id: string, children: EquipmentNode[] = []): EquipmentNode {
  return {
    id,
    parentId: null,
    name: id,
    assetTag: id,
    description: "",
    location: "",
    criticality: "medium",
    status: "active",
    createdAt: "",
    updatedAt: "",
    children,
  };
}

describe("tree helpers", () => {
  const forest = [node("a", [node("b", [node("c")]), node("d")]), node("e")];
  it("flattens in display order with depth", () => {
    expect(flatten(forest).map((x) => `${x.node.id}${x.depth}`)).toEqual(["a0", "b1", "c2", "d1", "e0"]);
  });
  it("finds a node and its descendants", () => {
    expect([...descendantsOf(forest, "b")].sort()).toEqual(["b", "c"]);
  });
});
