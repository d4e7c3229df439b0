// The e-mail and password form that starts a session: the sign-in page and
// the phone request form (before filing a request) both use it.
import { useState, type FormEvent, type ReactNode } from "react";
import { messageOf } from "../api";
import { useAuth } from "../auth";
import { FormError } from "./forms";

export function SignInForm({
  className,
  intro,
  buttonClassName,
  messageFor = messageOf,
}: {
  className: string;
  /** The heading and line above the fields. */
  intro: ReactNode;
  buttonClassName: string;
  /** What to say when signing in fails. */
  messageFor?: (err: unknown) => string;
}) {
  const { login } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
    } catch (err) {
      setError(messageFor(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className={className} onSubmit={submit} aria-label="Sign in">
      {intro}
      <label className="field">
        <span className="label">E-mail</span>
        <input name="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label className="field">
        <span className="label">Password</span>
        <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <FormError message={error} />
      <button className={buttonClassName} type="submit" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
