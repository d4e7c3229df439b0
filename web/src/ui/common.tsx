// Small building blocks every page uses: loading and error states, badges,
// form fields and their options, page headers, notices, a list's states,
// "load more".
import type { ReactNode } from "react";
import { messageOf } from "../api";
import { humanize } from "../format";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden /> {what}…
    </div>
  );
}

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error-box" role="alert">
      <span>{messageOf(error)}</span>
      {onRetry && (
        <button type="button" className="btn small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A coloured label for a status, severity, priority or criticality value. */
export function Badge({ value, title }: { value?: string | null; title?: string }) {
  const v = value ?? "unknown";
  return (
    <span className={`badge badge-${v.replace(/[^a-z0-9_-]/gi, "").toLowerCase()}`} title={title}>
      {humanize(v)}
    </span>
  );
}

export function PageHeader({ title, children, sub }: { title: ReactNode; sub?: ReactNode; children?: ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {sub && <p className="sub">{sub}</p>}
      </div>
      {children && <div className="actions">{children}</div>}
    </header>
  );
}

export function Field({ label, error, children, hint }: { label: string; error?: string; hint?: string; children: ReactNode }) {
  return (
    <label className={`field${error ? " has-error" : ""}`}>
      <span className="label">{label}</span>
      {children}
      {hint && !error && <span className="hint">{hint}</span>}
      {error && <span className="field-error">{error}</span>}
    </label>
  );
}

export function LoadMore({ hasMore, loading, onClick }: { hasMore: boolean; loading: boolean; onClick: () => void }) {
  if (!hasMore) return null;
  return (
    <div className="load-more">
      <button type="button" className="btn" disabled={loading} onClick={onClick}>
        {loading ? "Loading…" : "Load more"}
      </button>
    </div>
  );
}

export function Card({ title, children, actions, className }: { title?: ReactNode; children: ReactNode; actions?: ReactNode; className?: string }) {
  return (
    <section className={`card${className ? ` ${className}` : ""}`}>
      {(title || actions) && (
        <div className="card-head">
          {title && <h2>{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

/** A line saying what just happened ("… saved."), announced politely; nothing when empty. */
export function Notice({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <div className="notice" role="status">
      {children}
    </div>
  );
}

/** The <option>s of a select over `values`, shown humanized; `any` first adds the empty choice with that text. */
export function Options({ values, any }: { values: readonly string[]; any?: string }) {
  return (
    <>
      {any !== undefined && <option value="">{any}</option>}
      {values.map((v) => (
        <option key={v} value={v}>
          {humanize(v)}
        </option>
      ))}
    </>
  );
}

/** What Listing reads from a useAsync or usePaged result. */
export type ListSource = { error: unknown; reload: () => void; loading: boolean } & ({ data: unknown } | { items: unknown[] });

/**
 * A loaded list's states around it: the error (with "Try again"), the first
 * load (nothing loaded yet), the empty message, else the list itself. The
 * error stands above the list, or instead of everything with `errorInPlace`.
 */
export function Listing({
  of,
  loadingText,
  isEmpty,
  empty,
  errorInPlace,
  children,
}: {
  of: ListSource;
  loadingText?: string;
  isEmpty: boolean;
  empty: ReactNode;
  errorInPlace?: boolean;
  children: ReactNode;
}) {
  const { error, reload } = of;
  const loading = of.loading && ("items" in of ? of.items.length === 0 : !of.data);
  if (errorInPlace && error) return <ErrorBox error={error} onRetry={reload} />;
  return (
    <>
      {!errorInPlace && <ErrorBox error={error} onRetry={reload} />}
      {loading ? <Loading what={loadingText} /> : isEmpty && !error ? <Empty>{empty}</Empty> : children}
    </>
  );
}
