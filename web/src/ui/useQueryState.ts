// Filters kept in the URL query string (shareable links, a working back
// button): read a set of keys, change some of them at once; a search box
// that writes its text there once typing pauses.
import { useCallback, useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";

export type QueryPatch<K extends string> = Partial<Record<K, string | boolean>>;

/**
 * The values of `keys` ("" when absent) and a setter taking several at once:
 * "" or false removes a key, true stores "1". Changes replace the current
 * history entry when `replace` says so (default: always), else push one; a
 * call's own `replace` argument overrides it.
 */
export function useQueryState<K extends string>(
  keys: readonly K[],
  replace: boolean | ((patch: QueryPatch<K>) => boolean) = true,
): [Record<K, string>, (patch: QueryPatch<K>, replace?: boolean) => void] {
  const [params, setParams] = useSearchParams();
  const values = {} as Record<K, string>;
  for (const k of keys) values[k] = params.get(k) ?? "";
  const set = useCallback(
    (patch: QueryPatch<K>, replaceThis?: boolean) => {
      setParams(
        (old) => {
          const next = new URLSearchParams(old);
          for (const [k, v] of Object.entries(patch) as Array<[string, string | boolean | undefined]>) {
            const s = v === true ? "1" : v || "";
            if (s) next.set(k, s);
            else next.delete(k);
          }
          return next;
        },
        { replace: replaceThis ?? (typeof replace === "function" ? replace(patch) : replace) },
      );
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [setParams],
  );
  return [values, set];
}

/**
 * A search box's text: follows `value` (the URL's, so the back button works)
 * and hands the trimmed text to `commit` `delay` ms after typing stops.
 */
export function useSearchText(value: string, commit: (text: string) => void, delay = 400): [string, (text: string) => void] {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    if (text === value) return;
    const t = setTimeout(() => commit(text.trim()), delay);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text]);
  return [text, setText];
}
