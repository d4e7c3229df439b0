// The signed-in session: who the user is, what their role may do, sign in
// and sign out. Pages ask `useAuth().can("work_orders:update")` before
// offering an action; the API enforces the same permissions anyway.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { get, onSignedOut, post, refreshSession, refreshToken, storeTokens, accessToken } from "./api";
import type { Me } from "./types";

type State = { status: "loading" } | { status: "signedOut" } | { status: "signedIn"; me: Me };

interface Auth {
  state: State;
  me: Me | null;
  can: (permission: string) => boolean;
  login: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ status: "loading" });

  const loadMe = useCallback(async () => {
    try {
      const me = await get<Me>("me");
      setState({ status: "signedIn", me });
    } catch {
      setState({ status: "signedOut" });
    }
  }, []);

  useEffect(() => {
    // A stored session: check it (the access token may have expired; the
    // client refreshes it on the first 401).
    if (refreshToken()) {
      void (accessToken() ? loadMe() : refreshSession(null).then((ok) => (ok ? loadMe() : setState({ status: "signedOut" }))));
    } else {
      setState({ status: "signedOut" });
    }
    return onSignedOut(() => setState({ status: "signedOut" }));
  }, [loadMe]);

  const login = useCallback(
    async (email: string, password: string) => {
      const tokens = await post<{ accessToken: string; refreshToken: string }>("auth/login", { email, password });
      storeTokens({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken });
      await loadMe();
    },
    [loadMe],
  );

  const logout = useCallback(async () => {
    const token = refreshToken();
    storeTokens(null);
    setState({ status: "signedOut" });
    if (token) await post("auth/logout", { refreshToken: token }).catch(() => undefined);
  }, []);

  const value = useMemo<Auth>(() => {
    const me = state.status === "signedIn" ? state.me : null;
    const perms = new Set(me?.permissions ?? []);
    return { state, me, can: (p) => perms.has(p), login, logout };
  }, [state, login, logout]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error("useAuth outside AuthProvider");
  return a;
}
