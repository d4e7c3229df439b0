// Devices and their credentials: list with status, last seen and sensors; register (secret shown once), rotate the secret, revoke.
import { Fragment, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { get, post } from "../../api";
import { useAuth } from "../../auth";
import { Badge, Card, Field, Listing, Notice, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useAsync } from "../../ui/hooks";
import { fmtAgo, fmtNumber, fmtTime } from "../../format";
import { FormActions, FormError, FormToggle, otherFieldErrors, useFormSubmit } from "../../ui/forms";
import { useConfirm } from "../../ui/Modal";
import { CopyButton, OneTimeSecret } from "../../ui/Secret";
import { useQueryState } from "../../ui/useQueryState";
import type { Device, DeviceCredentials, Sensor } from "./types";

interface Shown {
  creds: DeviceCredentials;
  why: "created" | "rotated";
}

export function DevicesPage() {
  const { me } = useAuth();
  const org = me?.organization.slug ?? "{org}";
  const [q, setQ] = useQueryState(["q", "status"] as const);
  const data = useAsync(async (signal) => {
    const [devices, sensors] = await Promise.all([get<Device[]>("devices", undefined, signal), get<Sensor[]>("sensors", undefined, signal)]);
    return { devices, sensors };
  }, []);
  const [showForm, setShowForm] = useState(false);
  const [shown, setShown] = useState<Shown | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { dialog, ask } = useConfirm();

  const sensorsOf = useMemo(() => {
    const m = new Map<string, Sensor[]>();
    for (const s of data.data?.sensors ?? []) m.set(s.deviceId, [...(m.get(s.deviceId) ?? []), s]);
    return m;
  }, [data.data]);

  const devices = useMemo(() => {
    const needle = q.q.trim().toLowerCase();
    return (data.data?.devices ?? [])
      .filter((d) => !needle || d.name.toLowerCase().includes(needle) || d.description.toLowerCase().includes(needle))
      .filter((d) => !q.status || (q.status === "active" ? d.active : !d.active))
      .sort((a, b) => a.name.localeCompare(b.name));
  }, [data.data, q.q, q.status]);

  const rotate = (d: Device) => {
    ask({
      title: d.active ? "Rotate the secret?" : "Re-enable with a new secret?",
      message: d.active ? (
        <p>
          A new secret is issued for <strong>{d.name}</strong>. The current secret <strong>stops working at once</strong> and connections using it are
          closed: update the device right after.
        </p>
      ) : (
        <p>
          <strong>{d.name}</strong> is revoked. Issuing a new secret re-enables it.
        </p>
      ),
      confirmLabel: d.active ? "Rotate secret" : "Issue new secret",
      run: async () => {
        const creds = await post<DeviceCredentials>(`devices/${d.id}/credentials`);
        setShown({ creds, why: "rotated" });
        setNotice(null);
        data.reload();
      },
    });
  };

  const revoke = (d: Device) => {
    ask({
      title: "Revoke the device?",
      message: (
        <p>
          <strong>{d.name}</strong> is deactivated and its secret deleted: it can no longer connect, open connections are closed and nothing more is stored
          for it. Issuing a new secret later re-enables it.
        </p>
      ),
      confirmLabel: "Revoke",
      danger: true,
      run: async () => {
        await post<Device>(`devices/${d.id}/revoke`);
        setNotice(`${d.name} revoked.`);
        data.reload();
      },
    });
  };

  return (
    <>
      <PageHeader title="Devices" sub="MQTT publishers: each signs in with its own secret">
        <Link className="btn" to="/admin/dead-letters">
          Dead letters
        </Link>
        <FormToggle open={showForm} setOpen={setShowForm} label="Register device" />
      </PageHeader>
      {dialog}
      {shown && (
        <OneTimeSecret
          title={shown.why === "created" ? `Device ${shown.creds.device.name} registered` : `New secret for ${shown.creds.device.name}`}
          label="Secret"
          value={shown.creds.secret}
          onDone={() => setShown(null)}
        >
          <dl className="props">
            <dt>MQTT username</dt>
            <dd>
              <code>
                {org}/{shown.creds.device.name}
              </code>{" "}
              <CopyButton text={`${org}/${shown.creds.device.name}`} label="Copy username" />
            </dd>
            <dt>Publish to</dt>
            <dd>
              <code>
                mp/v1/{org}/{shown.creds.device.name}/telemetry
              </code>
            </dd>
          </dl>
        </OneTimeSecret>
      )}
      <Notice>{notice}</Notice>
      {showForm && (
        <NewDeviceForm
          onCancel={() => setShowForm(false)}
          onCreated={(creds) => {
            setShowForm(false);
            setShown({ creds, why: "created" });
            setNotice(null);
            data.reload();
          }}
        />
      )}
      <div className="filters">
        <input type="search" aria-label="Filter devices" placeholder="Filter by name" value={q.q} onChange={(e) => setQ({ q: e.target.value })} />
        <select aria-label="Status" value={q.status} onChange={(e) => setQ({ status: e.target.value })}>
          <option value="">All devices</option>
          <option value="active">Active</option>
          <option value="revoked">Revoked</option>
        </select>
      </div>
      <Listing
        of={data}
        loadingText="Loading devices"
        isEmpty={devices.length === 0}
        empty={data.data?.devices.length ? "No device matches the filter." : "No devices yet. Register one to start sending telemetry."}
      >
        <Table label="Devices" stack columns={["Name", "Description", "Status", "Last seen", "Sensors"]} actions>
          {devices.map((d) => {
            const sensors = sensorsOf.get(d.id) ?? [];
            const expanded = open === d.id;
            return (
              <Fragment key={d.id}>
                <tr data-testid={`device-row-${d.name}`}>
                  <td data-label="Name">
                    <code>{d.name}</code>
                  </td>
                  <td data-label="Description">{d.description || <span className="muted">—</span>}</td>
                  <td data-label="Status">
                    <Badge value={d.active ? "active" : "revoked"} />
                  </td>
                  <td data-label="Last seen" title={fmtTime(d.lastSeenAt)}>
                    {d.lastSeenAt ? fmtAgo(d.lastSeenAt) : <span className="muted">never</span>}
                  </td>
                  <td data-label="Sensors">
                    {sensors.length ? (
                      <button type="button" className="btn small" aria-expanded={expanded} onClick={() => setOpen(expanded ? null : d.id)}>
                        {sensors.length} sensor{sensors.length === 1 ? "" : "s"} {expanded ? "▴" : "▾"}
                      </button>
                    ) : (
                      <span className="muted">none</span>
                    )}
                  </td>
                  <td data-label="Actions">
                    <div className="cell-actions">
                      <button type="button" className="btn small" onClick={() => rotate(d)}>
                        {d.active ? "Rotate secret" : "Re-enable"}
                      </button>
                      {d.active && (
                        <button type="button" className="btn small danger" onClick={() => revoke(d)}>
                          Revoke
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
                {expanded && (
                  <tr>
                    <td colSpan={6}>
                      <SensorTable sensors={sensors} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </Table>
      </Listing>
    </>
  );
}

function SensorTable({ sensors }: { sensors: Sensor[] }) {
  return (
    <table className="diff" aria-label="Sensors">
      <thead>
        <tr>
          <th>Metric</th>
          <th>Name</th>
          <th>Unit</th>
          <th>Limits</th>
          <th>Equipment</th>
        </tr>
      </thead>
      <tbody>
        {sensors.map((s) => (
          <tr key={s.id}>
            <td>
              <code>{s.metric}</code>
            </td>
            <td>{s.name}</td>
            <td>{s.unit || "—"}</td>
            <td>
              {s.minValue == null && s.maxValue == null ? "—" : `${fmtNumber(s.minValue)} … ${fmtNumber(s.maxValue)}`}
            </td>
            <td>
              <Link to={`/equipment/${s.equipmentId}`}>open</Link>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NewDeviceForm({ onCreated, onCancel }: { onCreated: (c: DeviceCredentials) => void; onCancel: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  // A taken name (409) belongs next to the name field.
  const { busy, errors, submit } = useFormSubmit(async () => {
    onCreated(await post<DeviceCredentials>("devices", { name: name.trim(), description: description.trim() }));
  }, "name");
  const general = otherFieldErrors(errors, ["name", "description"]);
  return (
    <Card title="Register a device">
      <form className="admin-form" onSubmit={submit} aria-label="Register a device">
        <Field label="Device name" error={errors.fields.name} hint="Up to 64 letters, digits, _ . - — the {device} part of its MQTT topic">
          <input required value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
        </Field>
        <Field label="Description" error={errors.fields.description}>
          <input value={description} onChange={(e) => setDescription(e.target.value)} autoComplete="off" />
        </Field>
        <FormError message={general} wide />
        <FormActions busy={busy} label="Register" busyLabel="Registering…" onCancel={onCancel} className="form-actions" />
      </form>
    </Card>
  );
}
