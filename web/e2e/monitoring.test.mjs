// Browser test of the monitoring area: fleet dashboard, an anomaly page, the trend explorer and drag-to-zoom (chart timings are logged, not asserted).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { apiAs, BASE, closeBrowser, newPage, screenshot, signIn } from "./support.mjs";

after(closeBrowser);

/** Waits until the chart's `attr` data attribute differs from `before` (a new draw / zoom answer). */
async function waitForAttr(chart, attr, before, timeout = 20_000) {
  const handle = await chart.elementHandle();
  await chart.page().waitForFunction(
    ([el, a, b]) => el.getAttribute(a) !== null && el.getAttribute(a) !== b,
    [handle, attr, before],
    { timeout },
  );
  return chart.getAttribute(attr);
}

test("monitoring: dashboard, anomaly, trends and zoom", async () => {
  const api = await apiAs("admin");
  const sensors = (await api("GET", "sensors")).body.data;
  assert.ok(sensors.length >= 4, "the demo fleet has sensors");
  const equipment = (await api("GET", "equipment?limit=200")).body.data;
  const monitored = equipment.filter((e) => sensors.some((s) => s.equipmentId === e.id));
  assert.ok(monitored.length >= 1, "the demo fleet has monitored assets");

  const page = await newPage();
  await signIn(page, "admin");

  // Dashboard: the fleet's assets with their latest readings.
  await page.getByRole("heading", { name: "Fleet overview" }).waitFor();
  await page.getByTestId("asset-card").first().waitFor();
  await page.getByTestId("latest-reading").first().waitFor();
  for (const e of monitored.slice(0, 3)) {
    await page.getByTestId("asset-card").filter({ hasText: e.name }).first().waitFor();
  }
  const readingRows = await page.getByTestId("latest-reading").count();
  assert.ok(readingRows >= 4, `latest readings shown (${readingRows})`);
  await page.waitForTimeout(400); // sparklines arrive with the second request
  await screenshot(page, "dashboard");

  // An anomaly page, if the fleet has raised one yet.
  const anomalies = (await api("GET", "anomalies?limit=20")).body.data;
  if (anomalies.length) {
    const a = anomalies.find((x) => x.workOrderId) ?? anomalies[0];
    await page.goto(`${BASE}/anomalies/${a.id}`);
    await page.getByRole("heading", { name: "Trend around the anomaly" }).waitFor();
    await page.getByTestId("anomaly-evidence").waitFor();
    if (a.workOrderId) {
      const href = await page.getByTestId("anomaly-wo-link").getAttribute("href");
      assert.equal(href, `/work-orders/${a.workOrderId}`);
    }
    await page.getByTestId("anomaly-chart").waitFor().catch(() => {});
    await page.waitForTimeout(300);
    await screenshot(page, "anomaly");
  } else {
    console.log("no anomaly yet: anomaly page skipped");
  }

  // Trend explorer with several sensors (two assets' worth).
  const picked = sensors.slice(0, Math.min(8, sensors.length)).map((s) => s.id);
  await page.goto(`${BASE}/trends?s=${picked.join(",")}&range=1h`);
  const chart = page.getByTestId("trend-chart");
  await chart.waitFor();
  await waitForAttr(chart, "data-points", "0");
  const points = Number(await chart.getAttribute("data-points"));
  assert.ok(points > 0, "the chart drew readings");
  console.log(`[mp] trends: ${picked.length} sensors, ${points} points, render ${await chart.getAttribute("data-render-ms")} ms, ${await page.getByTestId("trend-source").textContent()}`);
  assert.equal(await page.getByRole("checkbox", { checked: true }).count() >= picked.length, true);
  await page.getByText("live · last 1 h").waitFor();
  await screenshot(page, "trends");

  // Zoom: drag across the middle of the plot; the page re-fetches that range and redraws.
  const over = chart.locator(".u-over");
  const box = await over.boundingBox();
  assert.ok(box, "the plot area is visible");
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.55, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 6 });
  await page.mouse.move(box.x + box.width * 0.85, y, { steps: 6 });
  await page.mouse.up();
  const zoomMs = await waitForAttr(chart, "data-zoom-ms", null);
  assert.ok(Number(zoomMs) >= 0);
  assert.match(page.url(), /from=.*to=/, "the zoomed range is in the URL");
  await page.getByText("live · last 1 h").waitFor({ state: "detached" });
  console.log(`[mp] zoom: ${zoomMs} ms, ${await chart.getAttribute("data-points")} points, ${await page.getByTestId("trend-source").textContent()}`);

  // CSV of one sensor over the zoomed range (raw readings).
  const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: /^Download CSV of/ }).first().click()]);
  assert.match(file.suggestedFilename(), /\.csv$/);

  // Detail: the API's maximum resolution (10,000 points per sensor) for 10 sensors over the last
  // 9,990 s of one-second readings: up to 100,000 points when the demo's history is that long.
  const ten = sensors.slice(0, Math.min(10, sensors.length)).map((s) => s.id);
  const to = new Date();
  const from = new Date(to.getTime() - 9_990_000);
  await page.goto(`${BASE}/trends?s=${ten.join(",")}&from=${from.toISOString()}&to=${to.toISOString()}&detail=1`);
  await chart.waitFor();
  await waitForAttr(chart, "data-points", "0", 30_000);
  console.log(`[mp] detail: ${ten.length} sensors, ${await chart.getAttribute("data-points")} points, render ${await chart.getAttribute("data-render-ms")} ms`);
});
