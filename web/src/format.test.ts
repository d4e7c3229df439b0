// Unit tests of the display formatters (ages, durations, numbers, humanized names).
import { describe, expect, it } from "vitest";
import { fmtAgo, fmtDuration, fmtNumber, humanize } from "./format";

describe("format", () => {
  it("says how long ago", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(fmtAgo("2026-01-01T11:59:50Z", now)).toBe("just now");
    expect(fmtAgo("2026-01-01T11:50:00Z", now)).toBe("10 min ago");
    expect(fmtAgo("2026-01-01T09:00:00Z", now)).toBe("3 h ago");
    expect(fmtAgo("2025-12-29T12:00:00Z", now)).toBe("3 d ago");
    expect(fmtAgo("not a date", now)).toBe("—");
  });
  it("formats durations and numbers", () => {
    expect(fmtDuration(30)).toBe("30 s");
    expect(fmtDuration(600)).toBe("10 min");
    expect(fmtDuration(7200)).toBe("2.0 h");
    expect(fmtNumber(null)).toBe("—");
    expect(fmtNumber(1.2345e7)).toBe("1.23e+7");
    expect(humanize("in_progress")).toBe("In progress");
  });
});
