// A value shown only once (device secret, webhook signing secret, invitation
// link) with its copy button, and the copy button on its own.
import { useEffect, useState, type ReactNode } from "react";

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

/** One labelled value with its copy button (`testId` on the value). */
export function SecretLine({ label, value, testId, copyLabel }: { label: string; value: string; testId: string; copyLabel: string }) {
  return (
    <div className="secret-line">
      <span className="label">{label}</span>
      <code className="secret-value" data-testid={testId}>
        {value}
      </code>
      <CopyButton text={value} label={copyLabel} />
    </div>
  );
}

/** A value shown once: copy it now or lose it. */
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
      <SecretLine label={label} value={value} testId="secret-value" copyLabel={`Copy ${label.toLowerCase()}`} />
      {children}
      <div className="row">
        <button type="button" className="btn" onClick={onDone}>
          I have stored it — hide
        </button>
      </div>
    </section>
  );
}
