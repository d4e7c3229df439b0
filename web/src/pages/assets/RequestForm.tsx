// The phone request form (/request?asset=<id>), opened from an asset's QR code: signs in if needed, then files a work request.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ApiError, get, getPage, messageOf, post } from "../../api";
import { useAuth } from "../../auth";
import { Field, Loading } from "../../ui/common";
import { useAsync } from "../../ui/hooks";
import type { Equipment, WorkRequest } from "./types";
import { FormError, useFormErrors } from "../../ui/forms";
import { SignInForm } from "../../ui/SignInForm";
import { URGENCIES, UUID_RE, withUrgency } from "./util";
import "./assets.css";

export function RequestFormPage() {
  const { state, me, logout } = useAuth();
  return (
    <div className="req-page">
      <header className="req-top">
        <Link to="/" className="req-brand">
          MaintAInPro
        </Link>
        {me && (
          <span className="req-who">
            {me.user.name} ·{" "}
            <button type="button" className="linklike" onClick={() => void logout()}>
              Sign out
            </button>
          </span>
        )}
      </header>
      <main className="req-main">
        {state.status === "loading" ? <Loading what="Starting" /> : state.status === "signedOut" ? <CompactSignIn /> : <RequestForm />}
      </main>
    </div>
  );
}

function CompactSignIn() {
  return (
    <SignInForm
      className="req-card"
      buttonClassName="btn primary big"
      messageFor={(err) => (err instanceof ApiError && err.status === 401 ? "E-mail or password is not right." : messageOf(err))}
      intro={
        <>
          <h1>Report a problem</h1>
          <p className="muted">Sign in first, then describe what is wrong.</p>
        </>
      }
    />
  );
}

function RequestForm() {
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const assetId = params.get("asset") ?? "";
  const validId = !assetId || UUID_RE.test(assetId);
  const asset = useAsync(
    (signal) => (assetId && validId ? get<Equipment>(`equipment/${assetId}`, undefined, signal) : Promise.resolve(undefined)),
    [assetId],
  );
  const [title, setTitle] = useState("");
  const [details, setDetails] = useState("");
  const [urgency, setUrgency] = useState<string>("medium");
  const [busy, setBusy] = useState(false);
  const [filed, setFiled] = useState<WorkRequest | null>(null);
  const errs = useFormErrors();
  const titleRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (asset.data) titleRef.current?.focus();
  }, [asset.data]);

  if (!can("work_orders:create")) {
    return (
      <div className="req-card" role="alert">
        <h1>Not available</h1>
        <p>Your role cannot file work requests.</p>
      </div>
    );
  }
  if (!validId) {
    return (
      <div className="req-card">
        <h1>Report a problem</h1>
        <div className="error-box" role="alert">
          This QR code does not name a valid asset.
        </div>
        <button type="button" className="btn big" onClick={() => setParams({})}>
          Report without an asset
        </button>
      </div>
    );
  }

  if (filed) {
    return (
      <div className="req-card req-done" role="status" data-testid="request-filed">
        <div className="req-check" aria-hidden>
          ✓
        </div>
        <h1>Request sent</h1>
        <p>
          “{filed.title}” is waiting for review by maintenance. Reference <span className="mono">{filed.id.slice(-8).toUpperCase()}</span>.
        </p>
        <button
          type="button"
          className="btn primary big"
          onClick={() => {
            setFiled(null);
            setTitle("");
            setDetails("");
            setUrgency("medium");
          }}
        >
          Report another problem
        </button>
        <Link className="btn big" to="/requests">
          See my requests
        </Link>
      </div>
    );
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    errs.clear();
    if (!title.trim()) {
      errs.setField("title", "Say in a few words what is wrong");
      titleRef.current?.focus();
      return;
    }
    setBusy(true);
    try {
      const r = await post<WorkRequest>("requests", {
        title: title.trim(),
        description: withUrgency(urgency, details),
        equipmentId: asset.data?.id ?? null,
      });
      setFiled(r);
    } catch (err) {
      errs.take(err, ["title", "description", "equipmentId"]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="req-card" onSubmit={submit} aria-label="Report a problem" noValidate>
      <h1>Report a problem</h1>
      {assetId ? (
        asset.error ? (
          <div className="error-box" role="alert">
            {asset.error instanceof ApiError && asset.error.status === 404 ? "This asset was not found in your organization." : messageOf(asset.error)}
          </div>
        ) : asset.data ? (
          <div className="req-asset" data-testid="request-asset">
            <span className="mono req-tag">{asset.data.assetTag}</span>
            <strong>{asset.data.name}</strong>
            {asset.data.location && <span className="muted">{asset.data.location}</span>}
            <button type="button" className="linklike small" onClick={() => setParams({})}>
              Not this one?
            </button>
          </div>
        ) : (
          <Loading what="Finding the asset" />
        )
      ) : (
        <AssetPicker onPick={(id) => setParams({ asset: id })} />
      )}
      <Field label="What is wrong?" error={errs.fields.title}>
        <input
          ref={titleRef}
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          maxLength={200}
          placeholder="e.g. Leaking oil under the pump"
          enterKeyHint="next"
        />
      </Field>
      <fieldset className="req-urgency">
        <legend>How urgent?</legend>
        {URGENCIES.map((u) => (
          <label key={u.value} className={urgency === u.value ? "on" : undefined}>
            <input type="radio" name="urgency" value={u.value} checked={urgency === u.value} onChange={() => setUrgency(u.value)} />
            <span className="u-label">{u.label}</span>
            <span className="u-hint">{u.hint}</span>
          </label>
        ))}
      </fieldset>
      <Field label="Details (optional)" error={errs.fields.description}>
        <textarea value={details} onChange={(e) => setDetails(e.target.value)} placeholder="What did you see, hear or smell? Since when?" rows={4} />
      </Field>
      {errs.fields.equipmentId && <div className="error-box">{errs.fields.equipmentId}</div>}
      <FormError message={errs.form} />
      <button type="submit" className="btn primary big" disabled={busy || (!!assetId && !asset.data && !asset.error)}>
        {busy ? "Sending…" : "Send request"}
      </button>
    </form>
  );
}

function AssetPicker({ onPick }: { onPick: (id: string) => void }) {
  const [q, setQ] = useState("");
  const [found, setFound] = useState<Equipment[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const text = q.trim();
    if (text.length < 2) {
      setFound(null);
      return;
    }
    const ctl = new AbortController();
    const t = window.setTimeout(() => {
      getPage<Equipment>("equipment", { q: text, limit: 6 }, ctl.signal)
        .then((p) => {
          setFound(p.items);
          setError(null);
        })
        .catch((e) => {
          if (!ctl.signal.aborted) setError(e);
        });
    }, 250);
    return () => {
      ctl.abort();
      window.clearTimeout(t);
    };
  }, [q]);
  return (
    <div className="req-picker">
      <Field label="Which machine? (optional)" hint="Type a tag or name; or scan the QR code on the machine">
        <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="e.g. P-101 or pump" />
      </Field>
      {error ? <div className="error-box">{messageOf(error)}</div> : null}
      {found && (
        <ul className="req-found" aria-label="Matching assets">
          {found.length === 0 && <li className="muted">No asset matches.</li>}
          {found.map((e) => (
            <li key={e.id}>
              <button type="button" onClick={() => onPick(e.id)}>
                <span className="mono">{e.assetTag}</span> {e.name}
                {e.location && <span className="muted small"> · {e.location}</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
