// Public page behind an invitation link: the invitee chooses a password, which activates their account.
import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { ApiError, post } from "../../api";
import { FormError, formErrorsOf } from "../../ui/forms";
import type { User } from "./types";

export function AcceptInvite() {
  const [params] = useSearchParams();
  const [token, setToken] = useState(params.get("token") ?? "");
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<User | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== again) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setDone(await post<User>("auth/accept-invite", { token: token.trim(), password }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError("This invitation is unknown, already used, withdrawn or expired. Ask your administrator for a new one.");
      else {
        const fe = formErrorsOf(err);
        setError(fe.fields.password ?? fe.general ?? Object.values(fe.fields).join("; "));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login-page">
      {done ? (
        <div className="login card" role="status">
          <h1>Welcome, {done.name}</h1>
          <p className="sub">Your account is active. Sign in with {done.email} and the password you chose.</p>
          <a className="btn primary" href="/">
            Sign in
          </a>
        </div>
      ) : (
        <form className="login card" onSubmit={submit} aria-label="Accept invitation">
          <h1>MaintAInPro</h1>
          <p className="sub">Choose a password to activate your account</p>
          {!params.get("token") && (
            <label className="field">
              <span className="label">Invitation token</span>
              <input required value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" />
            </label>
          )}
          <label className="field">
            <span className="label">New password</span>
            <input type="password" required minLength={8} autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
          <label className="field">
            <span className="label">Repeat the password</span>
            <input type="password" required minLength={8} autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
          </label>
          <FormError message={error} />
          <button type="submit" className="btn primary" disabled={busy}>
            {busy ? "Activating…" : "Activate my account"}
          </button>
        </form>
      )}
    </div>
  );
}
