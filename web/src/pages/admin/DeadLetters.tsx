// Dead letters: telemetry that could not be stored (reason, topic, payload excerpt, time), newest first, with a reason filter.
import { useMemo } from "react";
import { Badge, Listing, LoadMore, Options, PageHeader } from "../../ui/common";
import { Table } from "../../ui/Table";
import { useLatest } from "../../ui/hooks";
import { fmtAgo, fmtTime } from "../../format";
import { useQueryState } from "../../ui/useQueryState";
import { DEAD_LETTER_REASONS, type DeadLetter } from "./types";

const STEP = 100;
/** The API's largest page (it has no cursor: "load more" asks for a longer list). */
const MAX = 1000;
const EXCERPT = 140;

export function DeadLettersPage() {
  const [q, setQ] = useQueryState(["reason", "topic"] as const);
  const data = useLatest<DeadLetter>("dead-letters", STEP, MAX);
  const all = data.all;
  const reasons = useMemo(() => [...new Set([...DEAD_LETTER_REASONS, ...all.map((d) => d.reason)])].sort(), [all]);
  const items = useMemo(() => {
    const topic = q.topic.trim().toLowerCase();
    return all.filter((d) => (!q.reason || d.reason === q.reason) && (!topic || d.topic.toLowerCase().includes(topic)));
  }, [all, q.reason, q.topic]);

  return (
    <>
      <PageHeader title="Dead letters" sub="Telemetry that reached the broker but could not be stored, newest first">
        <button type="button" className="btn" onClick={data.reload} disabled={data.loading}>
          Refresh
        </button>
      </PageHeader>
      <div className="filters">
        <select aria-label="Reason" value={q.reason} onChange={(e) => setQ({ reason: e.target.value })}>
          <Options values={reasons} any="All reasons" />
        </select>
        <input type="search" aria-label="Topic contains" placeholder="Topic contains" value={q.topic} onChange={(e) => setQ({ topic: e.target.value })} />
        <span className="muted">
          {items.length} of the latest {all.length}
        </span>
      </div>
      <Listing
        of={data}
        loadingText="Loading dead letters"
        isEmpty={items.length === 0}
        empty={all.length ? "No dead letter matches the filter among those loaded." : "No dead letters: everything received was stored."}
      >
        <Table label="Dead letters" stack columns={["Received", "Reason", "Topic", "Detail", "Payload"]}>
          {items.map((d) => (
            <tr key={d.id} data-testid="dead-letter-row">
              <td data-label="Received" title={fmtTime(d.receivedAt)}>
                {fmtAgo(d.receivedAt)}
              </td>
              <td data-label="Reason">
                <Badge value={d.reason} />
              </td>
              <td data-label="Topic">
                <code>{d.topic}</code>
              </td>
              <td data-label="Detail">{d.detail}</td>
              <td data-label="Payload" className="payload-cell">
                {d.payloadText.length > EXCERPT ? (
                  <details>
                    <summary>{d.payloadText.slice(0, EXCERPT)}…</summary>
                    <pre className="payload">{d.payloadText}</pre>
                  </details>
                ) : (
                  <code className="payload">{d.payloadText || "(empty)"}</code>
                )}
              </td>
            </tr>
          ))}
        </Table>
      </Listing>
      <LoadMore hasMore={data.hasMore} loading={data.loading} onClick={data.loadMore} />
    </>
  );
}
