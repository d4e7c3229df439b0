// Users and roles: paged list with search/role/status filters, create or invite (token shown once), change role, (de)activate.
import { useEffect, useState } from "react";
import { post, patch } from "../../api";
import { useAuth } from "../../auth";
import { Badge, Card, Field, Listing, LoadMore, Notice, Options, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { usePaged } from "../../ui/hooks";
import { fmtTime, humanize } from "../../format";
import { FormActions, FormError, FormToggle, otherFieldErrors, useFormSubmit } from "../../ui/forms";
import { useConfirm } from "../../ui/Modal";
import { OneTimeSecret, SecretLine } from "../../ui/Secret";
import { useQueryState } from "../../ui/useQueryState";
import { ROLES, type InviteResponse, type User } from "./types";

export function UsersPage() {
  const [q, setQ] = useQueryState(["q", "role", "active"] as const);
  const [search, setSearch] = useState(q.q);
  useEffect(() => setSearch(q.q), [q.q]);
  const list = usePaged<User>("users", { q: q.q || undefined, role: q.role || undefined, active: q.active || undefined }, 50);
  const [showForm, setShowForm] = useState(false);
  const [invite, setInvite] = useState<InviteResponse | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { dialog, ask } = useConfirm();
  const { me } = useAuth();

  const onCreated = (u: User, inv?: InviteResponse) => {
    setShowForm(false);
    setInvite(inv ?? null);
    setNotice(inv ? null : `User ${u.name} (${u.email}) created as ${humanize(u.role)}.`);
    list.reload();
  };

  const changeRole = (u: User, role: string) => {
    ask({
      title: "Change role?",
      message: (
        <p>
          Change <strong>{u.name}</strong> from <strong>{humanize(u.role)}</strong> to <strong>{humanize(role)}</strong>? The new role applies at their next
          token refresh (within 15 minutes).
        </p>
      ),
      confirmLabel: "Change role",
      run: async () => {
        await patch<User>(`users/${u.id}`, { role });
        setNotice(`${u.name} is now ${humanize(role)}.`);
        list.reload();
      },
    });
  };

  const setActive = (u: User, active: boolean) => {
    ask({
      title: active ? "Activate user?" : "Deactivate user?",
      message: active ? (
        <p>
          Let <strong>{u.name}</strong> sign in again?
        </p>
      ) : (
        <p>
          <strong>{u.name}</strong> will no longer be able to sign in; their sessions and pending invitations are revoked at once (an access token already
          issued runs out within 15 minutes). You can activate them again later.
        </p>
      ),
      confirmLabel: active ? "Activate" : "Deactivate",
      danger: !active,
      run: async () => {
        await post<User>(`users/${u.id}/${active ? "activate" : "deactivate"}`);
        setNotice(`${u.name} ${active ? "activated" : "deactivated"}.`);
        list.reload();
      },
    });
  };

  const reinvite = (u: User) => {
    ask({
      title: "Issue a new invitation?",
      message: (
        <p>
          A new invitation link for <strong>{u.name}</strong> replaces any earlier one (those stop working).
        </p>
      ),
      confirmLabel: "New invitation",
      run: async () => {
        const inv = await post<InviteResponse>(`users/${u.id}/invite`);
        setInvite(inv);
        setNotice(null);
      },
    });
  };

  return (
    <>
      <PageHeader title="Users" sub="People who sign in to this organization and their roles">
        <FormToggle open={showForm} setOpen={setShowForm} label="Add user" />
      </PageHeader>
      {dialog}
      {invite && <InvitePanel invite={invite} onDone={() => setInvite(null)} />}
      <Notice>{notice}</Notice>
      {showForm && <NewUserForm onCreated={onCreated} onCancel={() => setShowForm(false)} />}
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setQ({ q: search.trim() });
        }}
      >
        <input type="search" aria-label="Search name or e-mail" placeholder="Search name or e-mail" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit" className="btn">
          Search
        </button>
        <select aria-label="Role" value={q.role} onChange={(e) => setQ({ role: e.target.value })}>
          <Options values={ROLES} any="All roles" />
        </select>
        <select aria-label="Status" value={q.active} onChange={(e) => setQ({ active: e.target.value })}>
          <option value="">Active and inactive</option>
          <option value="true">Active only</option>
          <option value="false">Deactivated or invited</option>
        </select>
        {(q.q || q.role || q.active) && (
          <button
            type="button"
            className="btn small"
            onClick={() => {
              setSearch("");
              setQ({ q: "", role: "", active: "" });
            }}
          >
            Clear filters
          </button>
        )}
      </form>
      <Listing
        of={list}
        loadingText="Loading users"
        isEmpty={list.items.length === 0}
        empty="No users match these filters."
      >
        <Table label="Users" stack columns={["Name", "E-mail", "Role", "Status", "Created"]} actions>
          {list.items.map((u) => {
            const self = u.id === me?.user.id;
            return (
              <tr key={u.id} data-testid={`user-row-${u.email}`}>
                <td data-label="Name">
                  {u.name} {self && <span className="muted">(you)</span>}
                </td>
                <td data-label="E-mail">{u.email}</td>
                <td data-label="Role">
                  {self ? (
                    <Badge value={u.role} />
                  ) : (
                    <select aria-label={`Role of ${u.name}`} value={u.role} onChange={(e) => changeRole(u, e.target.value)}>
                      <Options values={ROLES} />
                    </select>
                  )}
                </td>
                <td data-label="Status">
                  <Badge value={u.active ? "active" : "inactive"} title={u.active ? undefined : "Deactivated, or invited and not yet accepted"} />
                </td>
                <td data-label="Created">{fmtTime(u.createdAt)}</td>
                <td data-label="Actions">
                  {!self && (
                    <div className="cell-actions">
                      {u.active ? (
                        <button type="button" className="btn small danger" onClick={() => setActive(u, false)}>
                          Deactivate
                        </button>
                      ) : (
                        <>
                          <button type="button" className="btn small" onClick={() => setActive(u, true)}>
                            Activate
                          </button>
                          <button type="button" className="btn small" onClick={() => reinvite(u)} title="For an invitee who has not accepted yet">
                            New invitation
                          </button>
                        </>
                      )}
                    </div>
                  )}
                </td>
              </tr>
            );
          })}
        </Table>
      </Listing>
      <LoadMore hasMore={list.hasMore} loading={list.loading} onClick={list.loadMore} />
    </>
  );
}

function inviteLink(token: string): string {
  return `${window.location.origin}/accept-invite?token=${encodeURIComponent(token)}`;
}

function InvitePanel({ invite, onDone }: { invite: InviteResponse; onDone: () => void }) {
  const link = inviteLink(invite.inviteToken);
  return (
    <OneTimeSecret title={`Invitation for ${invite.user.name}`} label="Invitation link" value={link} onDone={onDone}>
      <SecretLine label="Token" value={invite.inviteToken} testId="invite-token" copyLabel="Copy token" />
      <p className="muted">
        Send the link to {invite.user.email}; they choose their password there. It works once and expires {fmtTime(invite.expiresAt)}.
      </p>
    </OneTimeSecret>
  );
}

function NewUserForm({ onCreated, onCancel }: { onCreated: (u: User, inv?: InviteResponse) => void; onCancel: () => void }) {
  const [mode, setMode] = useState<"invite" | "password">("invite");
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<string>("technician");
  const [password, setPassword] = useState("");
  // A taken e-mail (409) belongs next to the e-mail field.
  const { busy, errors, submit } = useFormSubmit(async () => {
    if (mode === "invite") {
      const inv = await post<InviteResponse>("users/invite", { name: name.trim(), email: email.trim(), role });
      onCreated(inv.user, inv);
    } else {
      const u = await post<User>("users", { name: name.trim(), email: email.trim(), role, password });
      onCreated(u);
    }
  }, "email");
  const general = otherFieldErrors(errors, ["name", "email", "role", "password"]);
  return (
    <Card title="New user">
      <div className="row" role="radiogroup" aria-label="How the user gets access" style={{ marginBottom: 10 }}>
        <label>
          <input type="radio" name="mode" checked={mode === "invite"} onChange={() => setMode("invite")} /> Invite (they choose their password)
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === "password"} onChange={() => setMode("password")} /> Create with a password
        </label>
      </div>
      <form className="admin-form" onSubmit={submit} aria-label="New user">
        <Field label="Name" error={errors.fields.name}>
          <input required value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
        </Field>
        <Field label="E-mail" error={errors.fields.email}>
          <input required type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" />
        </Field>
        <Field label="Role" error={errors.fields.role}>
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            <Options values={ROLES} />
          </select>
        </Field>
        {mode === "password" && (
          <Field label="Password" error={errors.fields.password} hint="At least 8 characters">
            <input required type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
          </Field>
        )}
        <FormError message={general} wide />
        <FormActions busy={busy} label={mode === "invite" ? "Send invitation" : "Create user"} busyLabel="Saving…" onCancel={onCancel} className="form-actions" />
      </form>
    </Card>
  );
}
