// Browser test of the assets area: equipment tree and asset page, the phone request form, the approval queue, parts stock.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { apiAs, BASE, closeBrowser, newPage, screenshot, signIn, users } from "./support.mjs";

after(closeBrowser);

const stamp = Date.now().toString(36);

/** An asset of the demo fleet that has sensors (the first sensor's equipment). */
async function machineWithSensors(api) {
  const sensors = await api("GET", "sensors");
  assert.equal(sensors.status, 200, JSON.stringify(sensors.body));
  assert.ok(sensors.body.data.length > 0, "the demo fleet has sensors");
  const eq = await api("GET", `equipment/${sensors.body.data[0].equipmentId}`);
  assert.equal(eq.status, 200);
  return eq.body.data;
}

let asset;
let requestTitle;

/** The machine the tests use (found once). */
async function theMachine() {
  asset ??= await machineWithSensors(await apiAs("admin"));
  return asset;
}

test("admin finds a machine in the tree, opens its page with sensors and QR code", async () => {
  await theMachine();
  const page = await newPage();
  await signIn(page, "admin");
  await page.goto(`${BASE}/equipment`);
  await page.getByRole("tree", { name: "Equipment tree" }).waitFor();
  await page.getByRole("searchbox", { name: "Search equipment" }).fill(asset.assetTag);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const row = page.getByTestId(`eq-result-${asset.assetTag}`);
  await row.waitFor();
  assert.match(page.url(), /[?&]q=/);
  await row.getByRole("link", { name: asset.name }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(asset.name) }).waitFor();
  const sensors = page.getByRole("table", { name: "Sensors" });
  await sensors.waitFor();
  assert.ok((await sensors.locator("tbody tr").count()) > 0, "sensors are listed");
  await page.getByRole("link", { name: "Open in trend explorer" }).waitFor();
  const qr = page.getByRole("img", { name: `QR code of ${asset.assetTag}` });
  await qr.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await qr.elementHandle());
  // Let the sparklines arrive before the picture.
  await page.locator("svg.sparkline polyline").first().waitFor({ timeout: 10_000 }).catch(() => undefined);
  await screenshot(page, "asset", { fullPage: true });
  await page.context().close();
});

test("a requester files a request from the QR link on a phone", async () => {
  await theMachine();
  const page = await newPage({ phone: true });
  await page.goto(`${BASE}/request?asset=${asset.id}`);
  await page.getByLabel("E-mail").fill(users.requester.email);
  await page.getByLabel("Password").fill(users.requester.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const shown = page.getByTestId("request-asset");
  await shown.waitFor();
  assert.match(await shown.innerText(), new RegExp(asset.assetTag));
  requestTitle = `Strange noise ${stamp}`;
  await page.getByLabel("What is wrong?").fill(requestTitle);
  await page.getByText("Urgent", { exact: true }).click();
  await page.getByLabel("Details (optional)").fill("Grinding sound from the bearing since this morning.");
  await screenshot(page, "request-form-phone");
  await page.getByRole("button", { name: "Send request" }).click();
  await page.getByTestId("request-filed").waitFor();
  await page.context().close();
});

test("a manager approves it in the queue", async () => {
  assert.ok(requestTitle, "the request was filed");
  const page = await newPage();
  await signIn(page, "manager");
  await page.goto(`${BASE}/requests`);
  const card = page.locator("li.req-card", { hasText: requestTitle });
  await card.waitFor();
  assert.match(await card.innerText(), /Urgent|High/);
  await card.getByRole("button", { name: "Approve…" }).click();
  assert.equal(await card.getByLabel("Priority").inputValue(), "high", "the urgency suggests the priority");
  await card.getByRole("button", { name: "Approve and create work order" }).click();
  const flash = page.getByTestId("request-flash");
  await flash.waitFor();
  assert.match(await flash.innerText(), new RegExp(requestTitle));
  const code = await flash.getByRole("link", { name: /^WO-/ }).innerText();
  // It has left the approval queue.
  await card.waitFor({ state: "detached" });
  const api = await apiAs("manager");
  const wos = await api("GET", `work-orders?q=${encodeURIComponent(code)}`);
  assert.equal(wos.body.data[0]?.code, code);
  assert.equal(wos.body.data[0]?.equipmentId, asset.id);
  await page.context().close();
});

test("stock received through the UI shows on the part", async () => {
  const api = await apiAs("admin");
  const sku = `E2E-${stamp}`;
  const part = await api("POST", "parts", { sku, name: `Bearing 6204 ${stamp}`, unit: "each", reorderPoint: 5, reorderQty: 20 });
  assert.equal(part.status, 201, JSON.stringify(part.body));
  const loc = await api("POST", "stock-locations", { name: `Store ${stamp}` });
  assert.equal(loc.status, 201, JSON.stringify(loc.body));
  const page = await newPage();
  await signIn(page, "admin");
  await page.goto(`${BASE}/parts?low=1&q=${sku}`);
  const row = page.getByTestId(`part-${sku}`);
  await row.waitFor();
  await row.getByRole("link", { name: sku }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(sku) }).waitFor();
  assert.equal((await page.getByTestId("part-on-hand").innerText()).trim(), "0");
  await page.getByRole("button", { name: "Receive", exact: true }).click();
  const form = page.getByRole("form", { name: "Receive stock" });
  await form.getByLabel("Location").selectOption({ label: `Store ${stamp} (none here)` });
  // A bad quantity is refused at the field.
  await form.getByLabel(/Quantity/).fill("0");
  await form.getByRole("button", { name: "Record receipt" }).click();
  await form.getByText("Enter a whole number above 0").waitFor();
  await form.getByLabel(/Quantity/).fill("12");
  await form.getByRole("button", { name: "Record receipt" }).click();
  await page.getByTestId(`stock-Store ${stamp}`).waitFor();
  assert.equal((await page.getByTestId("part-on-hand").innerText()).trim(), "12");
  await page.getByRole("table", { name: "Movements" }).getByText("+12").waitFor();
  const after = await api("GET", `parts/${part.body.data.id}`);
  assert.equal(after.body.data.onHand, 12);
  await page.context().close();
});
