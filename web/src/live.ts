// Live events: one WebSocket per tab to /api/v1/events/ws, reconnecting
// (resuming after the last event seen) when it drops. Pages subscribe with
// `useLiveEvents(kinds, handler)` and refresh what the event touched.
import { useEffect, useRef, useSyncExternalStore } from "react";
import { accessToken, refreshSession } from "./api";
import type { LiveEvent } from "./types";

type Handler = (e: LiveEvent) => void;

const handlers = new Set<Handler>();
const statusListeners = new Set<() => void>();
let socket: WebSocket | null = null;
let lastId: number | undefined;
let connected = false;
let wanted = false;
let retry = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function setConnected(v: boolean) {
  if (connected !== v) {
    connected = v;
    statusListeners.forEach((f) => f());
  }
}

function connect() {
  const token = accessToken();
  if (!wanted || !token || socket) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const after = lastId !== undefined ? `?after=${lastId}` : "";
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/events/ws${after}`, ["bearer", token]);
  socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    retry = 0;
    setConnected(true);
  };
  ws.onmessage = (m) => {
    try {
      const e = JSON.parse(String(m.data)) as LiveEvent;
      if (typeof e.id === "number") lastId = Math.max(lastId ?? 0, e.id);
      handlers.forEach((h) => h(e));
    } catch {
      // Not an event frame: ignore.
    }
  };
  ws.onclose = () => {
    socket = null;
    setConnected(false);
    if (!wanted) return;
    // Refused before opening: most likely an expired token.
    const again = () => {
      retry = Math.min(retry + 1, 6);
      timer = setTimeout(connect, 500 * 2 ** (retry - 1));
    };
    if (!opened) void refreshSession(token).finally(again);
    else again();
  };
}

/** Starts (or stops) the live connection; the app calls it on sign-in/out. */
export function setLive(on: boolean) {
  wanted = on;
  if (on) connect();
  else {
    if (timer) clearTimeout(timer);
    socket?.close();
    socket = null;
    lastId = undefined;
  }
}

/** Calls `handler` for each live event whose kind starts with one of `prefixes`. */
export function useLiveEvents(prefixes: string[], handler: Handler) {
  const ref = useRef(handler);
  ref.current = handler;
  const key = prefixes.join(",");
  useEffect(() => {
    const list = key.split(",");
    const h: Handler = (e) => {
      if (list.some((p) => e.kind.startsWith(p))) ref.current(e);
    };
    handlers.add(h);
    return () => {
      handlers.delete(h);
    };
  }, [key]);
}

/** Whether the live connection is up (for the header's indicator). */
export function useLiveStatus(): boolean {
  return useSyncExternalStore(
    (f) => {
      statusListeners.add(f);
      return () => statusListeners.delete(f);
    },
    () => connected,
  );
}
