// The list table every area draws: a scrolling wrapper, a labelled table and
// its header row (an unnamed last column for row actions when asked).
import type { ReactNode } from "react";

/** A header cell: its text, or the text with the cell's class (e.g. "num"). */
export type Column = string | { label: string; className?: string };

export function Table({
  label,
  columns,
  actions,
  stack,
  testId,
  children,
}: {
  /** The table's accessible name. */
  label?: string;
  columns: Column[];
  /** Adds the last header cell for row actions ("Actions" for screen readers only). */
  actions?: boolean;
  /** On phones each row stacks into label: value lines (cells carry data-label). */
  stack?: boolean;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={stack ? "list stack" : "list"} aria-label={label} data-testid={testId}>
        <thead>
          <tr>
            {columns.map((c) => {
              const { label: text, className } = typeof c === "string" ? { label: c, className: undefined } : c;
              return (
                <th key={text} className={className}>
                  {text}
                </th>
              );
            })}
            {actions && (
              <th>
                <span className="sr-only">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
