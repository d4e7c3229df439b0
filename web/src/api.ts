// The API client: the JSON envelope, typed errors, the session's tokens and
// their silent refresh. Every page talks to the server through this module.
//
// Tokens live in localStorage so a reload keeps the session. Refresh tokens
// rotate and a reused one signs the session out everywhere, so refreshing
// happens under a Web Lock: a second tab waiting on the lock adopts the
// tokens the first one stored instead of spending the old refresh token.

export interface FieldError {
  field: string;
  message: string;
}

/** An error answer in the project's envelope (or a network failure, status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly requestId?: string;
  constructor(status: number, code: string, message: string, details?: unknown, requestId?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }
  /** Field errors of a 422, for forms. */
  get fieldErrors(): FieldError[] {
    const d = this.details as { fields?: FieldError[] } | FieldError[] | undefined;
    if (Array.isArray(d)) return d.filter((x) => x && typeof x.field === "string");
    if (d && Array.isArray(d.fields)) return d.fields;
    return [];
  }
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

interface Tokens {
  accessToken: string;
  refreshToken: string;
}

const TOKENS_KEY = "mp.tokens";
let signedOutListeners: Array<() => void> = [];

function loadTokens(): Tokens | null {
  try {
    const raw = localStorage.getItem(TOKENS_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

export function storeTokens(t: Tokens | null): void {
  if (t) localStorage.setItem(TOKENS_KEY, JSON.stringify(t));
  else localStorage.removeItem(TOKENS_KEY);
}

export function accessToken(): string | null {
  return loadTokens()?.accessToken ?? null;
}

export function refreshToken(): string | null {
  return loadTokens()?.refreshToken ?? null;
}

/** Called when the session ends (refresh refused): the app shows the sign-in page. */
export function onSignedOut(f: () => void): () => void {
  signedOutListeners.push(f);
  return () => {
    signedOutListeners = signedOutListeners.filter((g) => g !== f);
  };
}

function signedOut() {
  storeTokens(null);
  for (const f of signedOutListeners) f();
}

async function withLock<T>(f: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? locks.request("mp-refresh", f) : f();
}

/** Exchanges the refresh token for new tokens; false when the session is over. */
export async function refreshSession(usedAccess: string | null): Promise<boolean> {
  return withLock(async () => {
    const current = loadTokens();
    if (!current) return false;
    // Another tab refreshed while we waited: use its tokens.
    if (usedAccess && current.accessToken !== usedAccess) return true;
    const res = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refreshToken: current.refreshToken }),
    }).catch(() => null);
    if (!res) return false;
    if (!res.ok) {
      signedOut();
      return false;
    }
    const body = await res.json();
    storeTokens({ accessToken: body.data.accessToken, refreshToken: body.data.refreshToken });
    return true;
  });
}

export type Query = Record<string, string | number | boolean | undefined | null | string[]>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) {
      if (v.length) q.set(k, v.join(","));
    } else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

interface RequestOptions {
  query?: Query;
  body?: unknown;
  form?: FormData;
  signal?: AbortSignal;
}

async function send(method: string, path: string, opts: RequestOptions): Promise<Response> {
  const url = withQuery(path.startsWith("/") ? path : `/api/v1/${path}`, opts.query);
  const attempt = (token: string | null) => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: BodyInit | undefined;
    if (opts.form) body = opts.form;
    else if (opts.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    return fetch(url, { method, headers, body, signal: opts.signal });
  };
  let token = accessToken();
  let res: Response;
  try {
    res = await attempt(token);
    if (res.status === 401 && token && (await refreshSession(token))) {
      token = accessToken();
      res = await attempt(token);
    }
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK", "The server cannot be reached. Check your connection and try again.");
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = await res.json();
    const e = body?.error ?? {};
    return new ApiError(res.status, e.code ?? "ERROR", e.message ?? res.statusText, e.details, e.requestId);
  } catch {
    return new ApiError(res.status, "ERROR", `${res.status} ${res.statusText}`);
  }
}

async function envelope<T>(method: string, path: string, opts: RequestOptions): Promise<{ data: T; nextCursor?: string }> {
  const res = await send(method, path, opts);
  if (res.status === 204) return { data: undefined as T };
  const body = await res.json();
  return { data: body.data as T, nextCursor: body.meta?.nextCursor };
}

/** GET a resource; `path` is either absolute or relative to /api/v1/. */
export async function get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  return (await envelope<T>("GET", path, { query, signal })).data;
}

/** GET one page of a list (`limit`, `cursor` and filters in `query`). */
export async function getPage<T>(path: string, query?: Query, signal?: AbortSignal): Promise<Page<T>> {
  const r = await envelope<T[]>("GET", path, { query, signal });
  return { items: r.data ?? [], nextCursor: r.nextCursor };
}

/** Every page of a list, up to `max` items. */
export async function getAll<T>(path: string, query: Query = {}, max = 2000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await getPage<T>(path, { limit: 200, ...query, cursor });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && out.length < max);
  return out;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  return (await envelope<T>("POST", path, { body: body ?? {} })).data;
}

export async function postForm<T>(path: string, form: FormData): Promise<T> {
  return (await envelope<T>("POST", path, { form })).data;
}

export async function patch<T>(path: string, body: unknown): Promise<T> {
  return (await envelope<T>("PATCH", path, { body })).data;
}

export async function put<T>(path: string, body: unknown): Promise<T> {
  return (await envelope<T>("PUT", path, { body })).data;
}

export async function del(path: string): Promise<void> {
  await send("DELETE", path, {});
}

/** Fetches a file with the session's token and hands it to the browser as a download. */
export async function download(path: string, filename: string, query?: Query): Promise<void> {
  const res = await send("GET", path, { query });
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** A binary resource (an image, an attachment) as an object URL, fetched with the token. */
export async function objectUrl(path: string): Promise<string> {
  const res = await send("GET", path, {});
  return URL.createObjectURL(await res.blob());
}

/** A person-readable message for any error thrown by this module. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) {
    const fields = e.fieldErrors;
    if (fields.length) return `${e.message}: ${fields.map((f) => `${f.field} ${f.message}`).join("; ")}`;
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}
