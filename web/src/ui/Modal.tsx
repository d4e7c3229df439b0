// Modal dialogs on the native <dialog> element: a titled modal with a close
// button (work-order moves) and the confirmation for consequential actions
// (useConfirm), both on one Dialog that opens itself while mounted.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { messageOf } from "../api";

/** A native <dialog> shown modally while mounted (focus trap); Escape calls `onCancel`. */
function Dialog({ className, labelledBy, testId, onCancel, children }: { className: string; labelledBy: string; testId?: string; onCancel: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className={className}
      aria-labelledby={labelledBy}
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      {children}
    </dialog>
  );
}

/** A modal with a title and a close button (✕ or Escape). */
export function Modal({ title, onClose, children, testId }: { title: string; onClose: () => void; children: ReactNode; testId?: string }) {
  return (
    <Dialog className="wo-modal" labelledBy="wo-modal-title" testId={testId} onCancel={onClose}>
      <div className="wo-modal-head">
        <h2 id="wo-modal-title">{title}</h2>
        <button type="button" className="btn small" aria-label="Close" onClick={onClose}>
          ✕
        </button>
      </div>
      {children}
    </Dialog>
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
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
    <Dialog className="confirm-dialog" labelledBy="confirm-title" onCancel={() => !busy && onClose()}>
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
    </Dialog>
  );
}
