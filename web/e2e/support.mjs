// Shared helpers for the browser tests: launch Debian's chromium headless
// through playwright-core, sign in, take screenshots for the README.
//
// The tests run against a live MaintAInPro started by the Rust launcher
// (tests/web/main.rs), which passes what they need in the environment:
//   MP_BASE_URL              the API serving the built UI
//   MP_ADMIN_EMAIL/PASSWORD  the demo organization's admin
//   MP_TECH_EMAIL/PASSWORD   a technician of the same organization
//   MP_MANAGER_EMAIL/PASSWORD a manager
//   MP_REQUESTER_EMAIL/PASSWORD a requester
//   MP_SCREENSHOTS           where screenshots go (default docs/screenshots)
// Run by hand against any running instance:
//   MP_BASE_URL=http://127.0.0.1:8080 MP_ADMIN_EMAIL=… node --test e2e/
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));

export const BASE = (process.env.MP_BASE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
export const SHOTS = process.env.MP_SCREENSHOTS ?? path.resolve(here, "../../docs/screenshots");

export const users = {
  admin: { email: process.env.MP_ADMIN_EMAIL, password: process.env.MP_ADMIN_PASSWORD },
  manager: { email: process.env.MP_MANAGER_EMAIL, password: process.env.MP_MANAGER_PASSWORD },
  technician: { email: process.env.MP_TECH_EMAIL, password: process.env.MP_TECH_PASSWORD },
  requester: { email: process.env.MP_REQUESTER_EMAIL, password: process.env.MP_REQUESTER_PASSWORD },
};

/** Debian's chromium (installed by scripts/install-deps), or CHROMIUM. */
export function chromiumPath() {
  const candidates = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no chromium found (tried ${candidates.join(", ")}); run scripts/install-deps`);
  return found;
}

let browserPromise;
/** One browser per test process; contexts keep sessions apart. */
export function browser() {
  browserPromise ??= chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  return browserPromise;
}

export async function closeBrowser() {
  if (browserPromise) await (await browserPromise).close();
  browserPromise = undefined;
}

/** A fresh browser session (own storage), optionally phone-sized. */
export async function newPage({ phone = false } = {}) {
  const b = await browser();
  const context = await b.newContext(
    phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1440, height: 900 } },
  );
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[browser error] ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`[browser console] ${m.text()}`);
    else if (m.text().startsWith("[mp]")) console.log(m.text());
  });
  return page;
}

/** Signs in through the form and waits for the signed-in frame. */
export async function signIn(page, who) {
  const u = users[who];
  if (!u?.email) throw new Error(`no credentials for ${who} in the environment (see e2e/support.mjs)`);
  await page.goto(`${BASE}/`);
  await page.getByLabel("E-mail").fill(u.email);
  await page.getByLabel("Password").fill(u.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  // Attached, not visible: the name is hidden on phones.
  await page.getByTestId("who").waitFor({ state: "attached" });
}

/** Saves a screenshot as docs/screenshots/<name>.png (linked from the README). */
export async function screenshot(page, name, { fullPage = false } = {}) {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  console.log(`screenshot: ${path.relative(process.cwd(), file)}`);
  return file;
}

/** A signed-in API call from outside the browser (for setup and checks). */
export async function apiAs(who) {
  const u = users[who];
  const r = await fetch(`${BASE}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: u.email, password: u.password }),
  });
  if (!r.ok) throw new Error(`sign-in of ${who} failed: ${r.status}`);
  const token = (await r.json()).data.accessToken;
  return async (method, p, body) => {
    const res = await fetch(`${BASE}/api/v1/${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
}
