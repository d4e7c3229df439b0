// Data-loading hooks shared by every page: one resource, a cursor-paged
// list with "load more", or a newest-first list without a cursor that
// "load more" asks for longer.
import { useCallback, useEffect, useRef, useState } from "react";
import { get, getPage, type Query } from "../api";

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (f: (old: T | undefined) => T | undefined) => void;
}

/** Runs `load` now and whenever `deps` change; `reload()` runs it again (keeping the old data meanwhile). */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    loadRef
      .current(ctl.signal)
      .then((d) => {
        if (!ctl.signal.aborted) {
          setDataState(d);
          setError(undefined);
        }
      })
      .catch((e) => {
        if (!ctl.signal.aborted) setError(e);
      })
      .finally(() => {
        if (!ctl.signal.aborted) setLoading(false);
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const setData = useCallback((f: (old: T | undefined) => T | undefined) => setDataState(f), []);
  return { data, error, loading, reload, setData };
}

export interface Paged<T> {
  items: T[];
  error: unknown;
  loading: boolean;
  hasMore: boolean;
  loadMore: () => void;
  reload: () => void;
}

/** A cursor-paged list (`meta.nextCursor`); `query` changes start it over. */
export function usePaged<T>(path: string, query: Query, limit = 50): Paged<T> {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const key = JSON.stringify([path, query, limit]);
  const gen = useRef(0);

  const fetchPage = useCallback(
    async (after: string | undefined, replace: boolean) => {
      const mine = ++gen.current;
      setLoading(true);
      try {
        const page = await getPage<T>(path, { ...query, limit, cursor: after });
        if (mine !== gen.current) return;
        setItems((old) => (replace ? page.items : [...old, ...page.items]));
        setCursor(page.nextCursor);
        setError(undefined);
      } catch (e) {
        if (mine === gen.current) setError(e);
      } finally {
        if (mine === gen.current) setLoading(false);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );

  useEffect(() => {
    void fetchPage(undefined, true);
  }, [fetchPage, tick]);

  return {
    items,
    error,
    loading,
    hasMore: cursor !== undefined,
    loadMore: () => {
      if (cursor !== undefined && !loading) void fetchPage(cursor, false);
    },
    reload: () => setTick((t) => t + 1),
  };
}

export interface Latest<T> extends Async<T[]> {
  /** What has been loaded (empty before the first answer). */
  all: T[];
  hasMore: boolean;
  /** Asks for `step` more (up to `max`). */
  loadMore: () => void;
}

/** The latest `limit` items of a list without a cursor (`?limit=`); `loadMore` grows the limit by `step` up to `max`. */
export function useLatest<T>(path: string, step: number, max: number): Latest<T> {
  const [limit, setLimit] = useState(step);
  const data = useAsync((signal) => get<T[]>(path, { limit }, signal), [path, limit]);
  const all = data.data ?? [];
  return { ...data, all, hasMore: all.length >= limit && limit < max, loadMore: () => setLimit((l) => Math.min(max, l + step)) };
}
