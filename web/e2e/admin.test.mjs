// Browser test of the admin area: devices (one-time secret, rotation), users (create, invite), webhooks (create, list, delete), and the technician's refusal.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { apiAs, BASE, closeBrowser, newPage, screenshot, signIn } from "./support.mjs";

after(closeBrowser);

const stamp = Date.now().toString(36);

test("an admin registers a device, rotates its secret, creates users and a webhook", async () => {
  const page = await newPage();
  await signIn(page, "admin");

  // The index offers every section to an admin.
  await page.goto(`${BASE}/admin`);
  await page.getByRole("heading", { name: "Administration" }).waitFor();
  const tabs = page.getByRole("navigation", { name: "Administration" });
  for (const name of ["Users", "Devices", "Dead letters", "Webhooks", "Audit log", "Failure codes"]) {
    await tabs.getByRole("link", { name, exact: true }).waitFor();
  }

  // Devices: register one, its secret is shown once.
  const device = `e2e-${stamp}`;
  await tabs.getByRole("link", { name: "Devices", exact: true }).click();
  await page.getByRole("heading", { name: "Devices" }).waitFor();
  await page.getByRole("button", { name: "Register device" }).click();
  await page.getByLabel("Device name").fill(device);
  await page.getByLabel("Description").fill("registered by the admin e2e test");
  await page.getByRole("button", { name: "Register", exact: true }).click();
  const created = page.getByRole("region", { name: `Device ${device} registered` });
  await created.waitFor();
  await created.getByText("shown only this once").waitFor();
  const secret1 = (await created.getByTestId("secret-value").textContent())?.trim() ?? "";
  assert.ok(secret1.length >= 16, `a device secret is shown (got ${JSON.stringify(secret1)})`);
  await created.getByRole("button", { name: "Copy secret" }).waitFor();
  const row = page.getByTestId(`device-row-${device}`);
  await row.getByText("Active").waitFor();

  // Hiding it makes it gone for good; rotating shows a new one after a confirmation.
  await created.getByRole("button", { name: /I have stored it/ }).click();
  await created.waitFor({ state: "detached" });
  await row.getByRole("button", { name: "Rotate secret" }).click();
  const dialog = page.getByRole("dialog", { name: "Rotate the secret?" });
  await dialog.getByText("stops working at once").waitFor();
  await dialog.getByRole("button", { name: "Rotate secret" }).click();
  const rotated = page.getByRole("region", { name: `New secret for ${device}` });
  await rotated.waitFor();
  const secret2 = (await rotated.getByTestId("secret-value").textContent())?.trim() ?? "";
  assert.ok(secret2.length >= 16 && secret2 !== secret1, "rotation shows a different secret");

  // Revoking asks first, then the device shows as revoked (rotating would re-enable it).
  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("dialog", { name: "Revoke the device?" }).getByRole("button", { name: "Revoke" }).click();
  await row.getByText("Revoked").waitFor();
  await row.getByRole("button", { name: "Re-enable" }).waitFor();

  // Users: create a technician with a password.
  const email = `e2e-tech-${stamp}@example.com`;
  await tabs.getByRole("link", { name: "Users", exact: true }).click();
  await page.getByRole("heading", { name: "Users" }).waitFor();
  await page.getByRole("button", { name: "Add user" }).click();
  const form = page.getByRole("form", { name: "New user" });
  await page.getByLabel("Create with a password").check();
  await form.getByLabel("Name").fill(`E2E Technician ${stamp}`);
  await form.getByLabel("E-mail").fill(email);
  await form.getByLabel("Role").selectOption("technician");
  await form.getByLabel("Password").fill("e2e-password-123");
  await form.getByRole("button", { name: "Create user" }).click();
  await page.getByRole("status").getByText(`(${email}) created as Technician`).waitFor();
  const userRow = page.getByTestId(`user-row-${email}`);
  await userRow.waitFor();
  assert.equal(await userRow.getByLabel(/Role of/).inputValue(), "technician");
  await screenshot(page, "admin-users");

  // An invitation shows its one-time link.
  await page.getByRole("button", { name: "Add user" }).click();
  await form.getByLabel("Name").fill(`E2E Invitee ${stamp}`);
  await form.getByLabel("E-mail").fill(`e2e-invitee-${stamp}@example.com`);
  await form.getByRole("button", { name: "Send invitation" }).click();
  const invite = page.getByRole("region", { name: `Invitation for E2E Invitee ${stamp}` });
  await invite.waitFor();
  const link = (await invite.getByTestId("secret-value").textContent())?.trim() ?? "";
  assert.match(link, /\/accept-invite\?token=/);

  // The invitee opens the link and chooses a password; the account becomes active.
  const invitee = await newPage({ phone: true });
  await invitee.goto(link);
  await invitee.getByLabel("New password").fill("invitee-pass-123");
  await invitee.getByLabel("Repeat the password").fill("invitee-pass-123");
  await invitee.getByRole("button", { name: "Activate my account" }).click();
  await invitee.getByRole("heading", { name: `Welcome, E2E Invitee ${stamp}` }).waitFor();
  await invitee.context().close();
  await invite.getByRole("button", { name: /I have stored it/ }).click();
  await page.getByRole("searchbox", { name: "Search name or e-mail" }).fill(`e2e-invitee-${stamp}`);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const inviteeRow = page.getByTestId(`user-row-e2e-invitee-${stamp}@example.com`);
  await inviteeRow.getByText("Active", { exact: true }).waitFor();
  assert.match(page.url(), /[?&]q=e2e-invitee-/, "the search is in the URL");

  // Deactivating asks first.
  await inviteeRow.getByRole("button", { name: "Deactivate" }).click();
  await page.getByRole("dialog", { name: "Deactivate user?" }).getByRole("button", { name: "Deactivate" }).click();
  await inviteeRow.getByText("Inactive", { exact: true }).waitFor();

  // Webhooks: create one (secret shown once), see it listed, delete it.
  const url = `https://93.184.215.14/mp-e2e-${stamp}`;
  await tabs.getByRole("link", { name: "Webhooks", exact: true }).click();
  await page.getByRole("heading", { name: "Webhooks" }).waitFor();
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByLabel("Target URL").fill(url);
  await page.getByRole("checkbox", { name: "part.low_stock" }).check();
  await page.getByRole("button", { name: "Create webhook" }).click();
  const hookSecret = page.getByRole("region", { name: `Webhook ${url} created` });
  await hookSecret.waitFor();
  assert.match((await hookSecret.getByTestId("secret-value").textContent()) ?? "", /^whsec_/);
  const hookRow = page.getByTestId("webhook-row").filter({ hasText: url });
  await hookRow.getByText("part.low_stock").waitFor();
  await hookRow.getByRole("link", { name: "Deliveries" }).click();
  await page.getByRole("heading", { name: "Deliveries" }).waitFor();
  await page.getByText("Nothing delivered yet.").waitFor();
  await page.getByRole("link", { name: "All webhooks" }).click();
  await hookRow.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog", { name: "Delete the webhook?" }).getByRole("button", { name: "Delete" }).click();
  await hookRow.waitFor({ state: "detached" });

  // Failure codes: add one, then edit its description.
  const code = `Z${stamp.toUpperCase().slice(-8)}`;
  await tabs.getByRole("link", { name: "Failure codes", exact: true }).click();
  await page.getByRole("button", { name: "Add code" }).click();
  const codeForm = page.getByRole("form", { name: "Add a failure code" });
  await codeForm.getByLabel("Kind").selectOption("cause");
  await codeForm.getByLabel("Code").fill(code);
  await codeForm.getByLabel("Description").fill("Added by the e2e test");
  await codeForm.getByRole("button", { name: "Add code" }).click();
  const codeRow = page.getByTestId(`failure-code-cause-${code}`);
  await codeRow.getByText("Added by the e2e test").waitFor();
  await codeRow.getByRole("button", { name: "Edit" }).click();
  await codeRow.getByLabel(`Description of ${code}`).fill("Edited by the e2e test");
  await codeRow.getByRole("button", { name: "Save" }).click();
  await codeRow.getByText("Edited by the e2e test").waitFor();
  await page.context().close();
});

test("a technician sees no admin pages and the API refuses", async () => {
  const page = await newPage();
  await signIn(page, "technician");
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link").first().waitFor();
  assert.equal(await nav.getByRole("link", { name: "Admin" }).count(), 0, "no Admin link in the nav");
  for (const path of ["/admin", "/admin/users", "/admin/devices"]) {
    await page.goto(`${BASE}${path}`);
    await page.getByRole("heading", { name: "Not available" }).waitFor();
    assert.equal(await page.getByRole("button", { name: /Add user|Register device/ }).count(), 0);
  }
  await page.context().close();

  const api = await apiAs("technician");
  const create = await api("POST", "users", { email: `nope-${stamp}@example.com`, name: "Nope", role: "admin", password: "whatever-123" });
  assert.equal(create.status, 403, JSON.stringify(create.body));
  assert.equal((await api("GET", "webhooks")).status, 403);
  assert.equal((await api("GET", "audit-log")).status, 403);
  assert.equal((await api("POST", "devices", { name: `nope-${stamp}` })).status, 403);
});
