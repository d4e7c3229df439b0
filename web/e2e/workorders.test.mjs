// Browser test of the work-order area: create through the form, move on the
// board by drag and drop (open → in progress → completed through the
// dialog), a refused move explained, live updates in a second session,
// comment and time log on the detail page, desktop and phone screenshots.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, apiAs, closeBrowser, newPage, screenshot, signIn, users } from "./support.mjs";

after(closeBrowser);

const live = { timeout: 15_000 };

/** signIn for phone-sized pages, where the header hides the user's name (support's signIn waits for it to be visible). */
async function signInPhone(page, who) {
  await page.goto(`${BASE}/`);
  await page.getByLabel("E-mail").fill(users[who].email);
  await page.getByLabel("Password").fill(users[who].password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("who").waitFor({ state: "attached" });
}

test("work order: create, drag across the board, complete, comment, log time", { timeout: 120_000 }, async () => {
  const api = await apiAs("manager");
  const codes = await api("GET", "failure-codes?active=true");
  const byKind = (k) => (codes.body.data ?? []).find((c) => c.kind === k && c.active);
  const haveCodes = byKind("problem") && byKind("cause") && byKind("remedy");
  const title = `E2E gearbox oil leak ${Date.now().toString(36)}`;

  // Create through the form.
  const page = await newPage();
  await signIn(page, "manager");
  await page.goto(`${BASE}/work-orders/new`);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Description").fill("Oil under the gearbox of line 2; check seals.");
  await page.getByLabel("Kind").selectOption(haveCodes ? "corrective" : "preventive");
  await page.getByLabel("Priority").selectOption("high");
  const assets = page.getByRole("listbox", { name: "Equipment" }).getByRole("option");
  await assets.first().waitFor();
  await page.getByLabel("Search equipment").fill("pump");
  if ((await assets.count()) === 0) await page.getByLabel("Search equipment").fill("");
  await assets.first().click();
  await page.getByRole("button", { name: "+ Add checklist item" }).click();
  await page.getByLabel("Checklist item 1", { exact: true }).fill("Wipe and re-check after 1 h");
  await page.getByRole("button", { name: "Create work order" }).click();
  await page.waitForURL(/\/work-orders\/[0-9a-f-]{36}$/);
  const code = (await page.getByTestId("wo-code").textContent()).trim();
  assert.match(code, /^WO-\d+$/);
  const id = page.url().split("/").pop();

  // Two sessions on the board.
  await page.goto(`${BASE}/work-orders`);
  const other = await newPage();
  await signIn(other, "technician");
  await other.goto(`${BASE}/work-orders`);
  const card = page.getByTestId(`wo-card-${code}`);
  await page.getByTestId("column-open").getByTestId(`wo-card-${code}`).waitFor(live);
  await other.getByTestId("column-open").getByTestId(`wo-card-${code}`).waitFor(live);
  await card.getByText(title).waitFor();

  // open → in progress by drag and drop; the other session follows live.
  await card.dragTo(page.getByTestId("column-in_progress"));
  await page.getByTestId("column-in_progress").getByTestId(`wo-card-${code}`).waitFor(live);
  await other.getByTestId("column-in_progress").getByTestId(`wo-card-${code}`).waitFor(live);

  // A move the status machine refuses (in progress → open) is explained.
  await page.getByTestId("column-in_progress").getByTestId(`wo-card-${code}`).dragTo(page.getByTestId("column-open"));
  const notice = page.getByTestId("board-notice");
  await notice.waitFor();
  assert.match(await notice.textContent(), /not allowed/i);
  assert.equal(await page.getByTestId("column-in_progress").getByTestId(`wo-card-${code}`).count(), 1);

  // in progress → completed: the dialog asks what completing needs.
  await page.getByTestId("column-in_progress").getByTestId(`wo-card-${code}`).dragTo(page.getByTestId("column-completed"));
  const dialog = page.getByTestId("move-dialog");
  await dialog.waitFor();
  if (haveCodes) {
    // Without codes the API's 422 shows next to the fields.
    await dialog.getByRole("button", { name: "Complete work order" }).click();
    await dialog.locator(".field-error").first().waitFor();
    await dialog.getByLabel(/Problem code/).selectOption(byKind("problem").code);
    await dialog.getByLabel(/Cause code/).selectOption(byKind("cause").code);
    await dialog.getByLabel(/Remedy code/).selectOption(byKind("remedy").code);
  }
  await dialog.getByLabel(/Note/).fill("Seal replaced, no more leak.");
  await dialog.getByRole("button", { name: "Complete work order" }).click();
  // The required checklist item is not done: the dialog says so.
  await dialog.getByText(/Wipe and re-check after 1 h.*not done/).waitFor();
  const items = await api("GET", `work-orders/${id}/checklist`);
  const ticked = await api("POST", `work-orders/${id}/checklist/${items.body.data[0].id}`, { done: true });
  assert.equal(ticked.status, 200);
  await dialog.getByRole("button", { name: "Complete work order" }).click();
  await page.getByTestId("column-completed").getByTestId(`wo-card-${code}`).waitFor(live);
  await other.getByTestId("column-completed").getByTestId(`wo-card-${code}`).waitFor(live);
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, "board");

  // The detail page shows it completed; comment and log time there.
  await page.getByTestId("column-completed").getByTestId(`wo-card-${code}`).getByRole("link", { name: code }).click();
  await page.waitForURL(`${BASE}/work-orders/${id}`);
  await page.getByTestId("wo-status").getByText("Completed").waitFor();
  await page.getByLabel("Comment", { exact: true }).fill("Checked again after an hour: dry.");
  await page.getByRole("button", { name: "Add comment" }).click();
  await page.getByTestId("wo-comments").getByText("Checked again after an hour: dry.").waitFor();
  await page.getByLabel("Minutes").fill("45");
  await page.getByLabel("Work note").fill("Seal replacement");
  await page.getByRole("button", { name: "Log time" }).click();
  await page.getByTestId("wo-time-logs").getByText("45 min").waitFor();

  // Someone else's comment appears without a reload.
  const tech = await apiAs("technician");
  const posted = await tech("POST", `work-orders/${id}/comments`, { body: "Technician: seal part number noted." });
  assert.equal(posted.status, 201);
  await page.getByTestId("wo-comments").getByText("Technician: seal part number noted.").waitFor(live);

  const check = await api("GET", `work-orders/${id}`);
  assert.equal(check.body.data.status, "completed");

  // The same work order on a phone.
  const phone = await newPage({ phone: true });
  await signInPhone(phone, "technician");
  await phone.goto(`${BASE}/work-orders/${id}`);
  await phone.getByTestId("wo-comments").getByText("Checked again after an hour: dry.").waitFor();
  await screenshot(phone, "work-order-phone");
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 392, `detail page scrolls sideways on a phone (${width}px)`);

  await Promise.all([page.context().close(), other.context().close(), phone.context().close()]);
});
