// Building blocks of the admin pages: confirmation dialog, one-time secret panel, copy button, URL-held filters, form errors.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { useSearchParams } from "react-router-dom";
import { ApiError, messageOf } from "../../api";

/** Filters kept in the URL query string (shareable links, working back button). */
export function useQueryState<K extends string>(keys: readonly K[]): [Record<K, string>, (patch: Partial<Record<K, string>>) => void] {
  const [params, setParams] = useSearchParams();
  const values = {} as Record<K, string>;
  for (const k of keys) values[k] = params.get(k) ?? "";
  const set = useCallback(
    (patch: Partial<Record<K, string>>) => {
      setParams(
        (old) => {
          const next = new URLSearchParams(old);
          for (const [k, v] of Object.entries(patch) as Array<[string, string | undefined]>) {
            if (v) next.set(k, v);
            else next.delete(k);
          }
          return next;
        },
        { replace: true },
      );
    },
    [setParams],
  );
  return [values, set];
}

/** A form's error: messages per field (422) and a general message. */
export interface FormErrors {
  fields: Record<string, string>;
  general?: string;
}

export function formErrorsOf(e: unknown): FormErrors {
  const fields: Record<string, string> = {};
  if (e instanceof ApiError) {
    for (const f of e.fieldErrors) fields[f.field] = fields[f.field] ? `${fields[f.field]}; ${f.message}` : f.message;
    if (Object.keys(fields).length) return { fields, general: e.status === 422 ? undefined : e.message };
    return { fields, general: e.message };
  }
  return { fields, general: messageOf(e) };
}

/** Field errors the form has no field for, shown with the general message. */
export function otherFieldErrors(errors: FormErrors, shown: string[]): string | undefined {
  const rest = Object.entries(errors.fields).filter(([k]) => !shown.includes(k));
  const parts = [errors.general, ...rest.map(([k, v]) => `${k}: ${v}`)].filter(Boolean);
  return parts.length ? parts.join(" — ") : undefined;
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Not a secure context or no permission: fall back to a selected textarea.
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const t = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button type="button" className="btn small" onClick={() => void copyText(text).then((ok) => setState(ok ? "copied" : "failed"))}>
      {state === "copied" ? "Copied ✓" : state === "failed" ? "Select and copy by hand" : label}
    </button>
  );
}

/** A value shown once (device secret, webhook signing secret, invitation): copy it now or lose it. */
export function OneTimeSecret({
  title,
  label,
  value,
  onDone,
  children,
}: {
  title: string;
  label: string;
  value: string;
  onDone: () => void;
  children?: ReactNode;
}) {
  return (
    <section className="secret-once" role="region" aria-label={title} data-testid="one-time-secret">
      <h2>{title}</h2>
      <p className="secret-warning">
        <strong>Copy it now: it is shown only this once.</strong> It is stored only as a hash and cannot be displayed again; if it is lost, issue a new
        one.
      </p>
      <div className="secret-line">
        <span className="label">{label}</span>
        <code className="secret-value" data-testid="secret-value">
          {value}
        </code>
        <CopyButton text={value} label={`Copy ${label.toLowerCase()}`} />
      </div>
      {children}
      <div className="row">
        <button type="button" className="btn" onClick={onDone}>
          I have stored it — hide
        </button>
      </div>
    </section>
  );
}

export interface ConfirmRequest {
  title: string;
  message: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  /** Runs when confirmed; an error keeps the dialog open and shows it. */
  run: () => Promise<void>;
}

/** A modal confirmation for a consequential action. Render `dialog`, call `ask(...)`. */
export function useConfirm(): { dialog: ReactNode; ask: (r: ConfirmRequest) => void } {
  const [req, setReq] = useState<ConfirmRequest | null>(null);
  const dialog = req ? <ConfirmDialog key={req.title} req={req} onClose={() => setReq(null)} /> : null;
  return { dialog, ask: setReq };
}

function ConfirmDialog({ req, onClose }: { req: ConfirmRequest; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await req.run();
      onClose();
    } catch (e) {
      setError(messageOf(e));
      setBusy(false);
    }
  };
  return (
    <dialog
      ref={ref}
      className="confirm-dialog"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      <h2 id="confirm-title">{req.title}</h2>
      <div className="confirm-body">{req.message}</div>
      {error && (
        <div className="error-box" role="alert">
          {error}
        </div>
      )}
      <div className="row confirm-actions">
        <button type="button" className="btn" disabled={busy} onClick={onClose}>
          Cancel
        </button>
        <button type="button" className={`btn ${req.danger ? "danger" : "primary"}`} disabled={busy} onClick={() => void confirm()}>
          {busy ? "Working…" : req.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
