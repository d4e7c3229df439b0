// A tiny inline trend (SVG polyline) for tables and cards.
export function Sparkline({ values, width = 120, height = 28, className }: { values: number[]; width?: number; height?: number; className?: string }) {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length < 2) return <svg className={`sparkline ${className ?? ""}`} width={width} height={height} aria-hidden />;
  const min = Math.min(...v);
  const max = Math.max(...v);
  const span = max - min || 1;
  const pts = v
    .map((y, i) => `${((i / (v.length - 1)) * (width - 2) + 1).toFixed(1)},${(height - 1 - ((y - min) / span) * (height - 2)).toFixed(1)}`)
    .join(" ");
  return (
    <svg className={`sparkline ${className ?? ""}`} width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label="trend">
      <polyline points={pts} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}
