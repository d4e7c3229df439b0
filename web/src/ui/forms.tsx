// Forms: errors from the API's answers (a 422's field errors by field, the
// messages no field shows, a hook holding both), a form's error line, its
// submit / cancel buttons and the button that opens or closes it.
import { useCallback, useState, type Dispatch, type FormEvent, type SetStateAction } from "react";
import { ApiError, messageOf } from "../api";
import { ErrorBox } from "./common";

/** True when `e` is an API answer with field errors (a 422 the form shows by its fields). */
export function hasFieldErrors(e: unknown): e is ApiError {
  return e instanceof ApiError && e.fieldErrors.length > 0;
}

/** 422 field errors as field → message: the first message per field, or all of them joined with "; ". */
export function fieldMap(e: unknown, all = false): Record<string, string> {
  const out: Record<string, string> = {};
  if (e instanceof ApiError) {
    for (const f of e.fieldErrors) out[f.field] = out[f.field] === undefined ? f.message : all ? `${out[f.field]}; ${f.message}` : out[f.field];
  }
  return out;
}

/** A form's error: messages per field (422) and a general message. */
export interface FormErrors {
  fields: Record<string, string>;
  general?: string;
}

export function formErrorsOf(e: unknown): FormErrors {
  const fields = fieldMap(e, true);
  if (e instanceof ApiError) {
    if (Object.keys(fields).length) return { fields, general: e.status === 422 ? undefined : e.message };
    return { fields, general: e.message };
  }
  return { fields, general: messageOf(e) };
}

/**
 * A form's submit handler: keeps the page, runs `run` with `busy` set and
 * holds its error as FormErrors; a conflict (409, e.g. a taken name) is put
 * next to `conflictField` when given.
 */
export function useFormSubmit(run: () => Promise<void>, conflictField?: string) {
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({ fields: {} });
    try {
      await run();
    } catch (err) {
      if (conflictField && err instanceof ApiError && err.status === 409) setErrors({ fields: { [conflictField]: err.message } });
      else setErrors(formErrorsOf(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, errors, submit };
}

/** Field errors the form has no field for, shown with the general message. */
export function otherFieldErrors(errors: FormErrors, shown: string[]): string | undefined {
  const rest = Object.entries(errors.fields).filter(([k]) => !shown.includes(k));
  const parts = [errors.general, ...rest.map(([k, v]) => `${k}: ${v}`)].filter(Boolean);
  return parts.length ? parts.join(" — ") : undefined;
}

/** Errors of a form as state: per field (from a 422's details) and one line for the form. */
export function useFormErrors() {
  const [fields, setFields] = useState<Record<string, string>>({});
  const [form, setForm] = useState<string | null>(null);
  const clear = useCallback(() => {
    setFields({});
    setForm(null);
  }, []);
  /** Takes an error thrown by the API client; `known` lists fields shown next to inputs. */
  const take = useCallback((e: unknown, known: string[]) => {
    const f: Record<string, string> = {};
    const rest: string[] = [];
    if (e instanceof ApiError) {
      for (const fe of e.fieldErrors) {
        if (known.includes(fe.field)) f[fe.field] = fe.message;
        else rest.push(`${fe.field} ${fe.message}`);
      }
      if (e.fieldErrors.length === 0) rest.push(e.message);
      else if (rest.length) rest.unshift(e.message);
    } else rest.push(messageOf(e));
    setFields(f);
    setForm(rest.length ? rest.join(": ") : Object.keys(f).length ? "Please correct the fields marked in red." : null);
  }, []);
  return { fields, form, clear, take, setField: (k: string, v: string) => setFields((o) => ({ ...o, [k]: v })) };
}

/**
 * The form's own error line (nothing when empty). `wide` is the admin forms'
 * layout: a full-width grid cell holding an ErrorBox.
 */
export function FormError({ message, wide }: { message?: string | null; wide?: boolean }) {
  if (!message) return null;
  if (wide) {
    return (
      <div className="wide">
        <ErrorBox error={new Error(message)} />
      </div>
    );
  }
  return (
    <div className="error-box" role="alert">
      {message}
    </div>
  );
}

/**
 * A form's submit button ("Saving…" style text while busy) and its Cancel,
 * in a `row` (or the admin forms' `form-actions`). `lockCancel` disables
 * Cancel while busy too; `danger` colours the submit as destructive.
 */
export function FormActions({
  busy,
  label,
  busyLabel,
  onCancel,
  lockCancel,
  danger,
  className = "row",
}: {
  busy: boolean;
  label: string;
  busyLabel: string;
  onCancel: () => void;
  lockCancel?: boolean;
  danger?: boolean;
  className?: string;
}) {
  return (
    <div className={className}>
      <button type="submit" className={`btn ${danger ? "danger" : "primary"}`} disabled={busy}>
        {busy ? busyLabel : label}
      </button>
      <button type="button" className="btn" onClick={onCancel} disabled={lockCancel ? busy : undefined}>
        Cancel
      </button>
    </div>
  );
}

/** The page header's button that shows a form ("Add …") or closes it again. */
export function FormToggle({ open, setOpen, label }: { open: boolean; setOpen: Dispatch<SetStateAction<boolean>>; label: string }) {
  return (
    <button type="button" className="btn primary" onClick={() => setOpen((s) => !s)} aria-expanded={open}>
      {open ? "Close form" : label}
    </button>
  );
}
