// A reusable uPlot time chart: several series (one y scale per unit), resizes with its container, drag-to-zoom with a callback, marker bands, horizontal limit lines, and draw/zoom timings for the browser tests.
import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";

/** One line: x in seconds since the epoch (ascending), y values (null = no value). */
export interface ChartSeries {
  label: string;
  unit?: string;
  color?: string;
  x: ArrayLike<number>;
  y: ArrayLike<number | null>;
}

/** A shaded time span (e.g. an anomaly), seconds since the epoch. */
export interface ChartMarker {
  from: number;
  to: number;
  color?: string;
  label?: string;
  /** Colour of a solid strip along the top of the plot (marks the span even when shading overlaps). */
  strip?: string;
}

/** A horizontal line at `value` on the scale of `unit` (e.g. a sensor limit). */
export interface ChartLimit {
  value: number;
  unit?: string;
  color?: string;
  label?: string;
  dash?: number[];
  /** Widen the y scale so the line is always in view (default: drawn only when the data reaches it). */
  fit?: boolean;
}

export interface ChartProps {
  series: ChartSeries[];
  /** The x range to show (seconds); default: the data's extent. */
  xRange?: [number, number];
  markers?: ChartMarker[];
  limits?: ChartLimit[];
  height?: number;
  /** Drag-select on the plot: the chosen x range in seconds. */
  onZoom?: (from: number, to: number) => void;
  /** Double-click on the plot. */
  onReset?: () => void;
  testId?: string;
  className?: string;
  /** Accessible description of the chart. */
  ariaLabel?: string;
}

export const PALETTE = ["#2f7ed8", "#e8743b", "#19a979", "#945ecf", "#ed4a7b", "#13a4b4", "#d4a000", "#6c8893", "#525df4", "#bf399e"];

/** Merges series with their own x arrays onto one sorted x axis (uPlot's aligned data), null where a series has no value. */
export function alignSeries(series: ChartSeries[]): { data: uPlot.AlignedData; points: number } {
  let total = 0;
  for (const s of series) total += s.x.length;
  const all = new Float64Array(total);
  let k = 0;
  for (const s of series) for (let i = 0; i < s.x.length; i++) all[k++] = s.x[i];
  all.sort();
  let n = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[n - 1]) all[n++] = all[i];
  const xs = Array.from(all.subarray(0, n));
  const data: uPlot.AlignedData = [xs];
  let points = 0;
  for (const s of series) {
    const ys: (number | null)[] = new Array(n).fill(null);
    let j = 0;
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      while (j < n && xs[j] < x) j++;
      const v = s.y[i];
      if (j < n && xs[j] === x && v !== null && Number.isFinite(v)) {
        ys[j] = v;
        points++;
      }
    }
    data.push(ys);
  }
  return { data, points };
}

function unitsOf(series: ChartSeries[]): string[] {
  const out: string[] = [];
  for (const s of series) {
    const u = s.unit ?? "";
    if (!out.includes(u)) out.push(u);
  }
  return out.length ? out : [""];
}

const scaleKey = (unit: string) => `u:${unit}`;

export function Chart({ series, xRange, markers = [], limits = [], height = 360, onZoom, onReset, testId, className, ariaLabel }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const overlay = useRef({ markers, limits });
  overlay.current = { markers, limits };
  const callbacks = useRef({ onZoom, onReset });
  callbacks.current = { onZoom, onReset };
  /** Set when the user zooms: answered by the next draw of new data. */
  const zoomStart = useRef<number | null>(null);
  const drawStart = useRef<number>(0);
  const points = useRef(0);

  const aligned = useMemo(() => alignSeries(series), [series]);
  // The chart is rebuilt only when the set of lines changes, not for new data.
  const shape = JSON.stringify(series.map((s, i) => [s.label, s.unit ?? "", s.color ?? PALETTE[i % PALETTE.length]]));

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const parsed = JSON.parse(shape) as [string, string, string][];
    const units = unitsOf(parsed.map(([label, unit]) => ({ label, unit, x: [], y: [] })));
    const scales: uPlot.Scales = { x: { time: true } };
    for (const u of units)
      scales[scaleKey(u)] = {
        auto: true,
        range: (_self, dmin, dmax) => {
          let lo = dmin;
          let hi = dmax;
          for (const l of overlay.current.limits) {
            if (!l.fit || (l.unit ?? "") !== u || !Number.isFinite(l.value)) continue;
            lo = lo === null || !Number.isFinite(lo) ? l.value : Math.min(lo, l.value);
            hi = hi === null || !Number.isFinite(hi) ? l.value : Math.max(hi, l.value);
          }
          if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
          return uPlot.rangeNum(lo, hi, 0.1, true);
        },
      };
    const axes: uPlot.Axis[] = [{ stroke: "#5f6b7a", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#dde3ea" } }];
    // Narrow (phone) charts: two value axes at most and no legend (the page lists the series).
    const narrow = el.clientWidth < 600;
    const maxAxes = narrow ? 2 : 4;
    units.forEach((u, i) =>
      axes.push({
        show: i < maxAxes,
        scale: scaleKey(u),
        side: i % 2 === 0 ? 3 : 1,
        label: u || undefined,
        labelSize: u ? 18 : 0,
        stroke: "#5f6b7a",
        grid: { show: i === 0, stroke: "#eef1f5" },
        ticks: { stroke: "#dde3ea" },
        size: narrow ? 46 : 56,
      }),
    );
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      pxAlign: 0,
      scales,
      axes,
      legend: { show: !narrow, live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: false },
        bind: {
          dblclick: () => () => {
            callbacks.current.onReset?.();
            return null;
          },
        },
      },
      series: [
        { label: "Time" },
        ...parsed.map(([label, unit, color]) => ({
          label: unit ? `${label} (${unit})` : label,
          scale: scaleKey(unit),
          stroke: color,
          width: 1.25,
          spanGaps: false,
          points: { show: false },
        })),
      ],
      hooks: {
        setSelect: [
          (u) => {
            const { left, width } = u.select;
            if (width < 4) return;
            const from = u.posToVal(left, "x");
            const to = u.posToVal(left + width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (callbacks.current.onZoom && to > from) {
              zoomStart.current = performance.now();
              callbacks.current.onZoom(from, to);
            }
          },
        ],
        drawClear: [(u) => drawOverlay(u, overlay.current.markers, "bands")],
        draw: [
          (u) => {
            drawOverlay(u, overlay.current.limits, "lines");
            const ms = performance.now() - drawStart.current;
            el.dataset.points = String(points.current);
            el.dataset.renderMs = ms.toFixed(1);
            if (points.current > 0) console.info(`[mp] chart: drew ${points.current} points in ${ms.toFixed(1)} ms`);
          },
        ],
      },
    };
    drawStart.current = performance.now();
    const u = new uPlot(opts, [[], ...parsed.map(() => [])], el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) >= 1) {
        drawStart.current = performance.now();
        u.setSize({ width: w, height });
      }
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, height]);

  // New data (or a new range): one redraw.
  useEffect(() => {
    const u = plot.current;
    const el = box.current;
    if (!u || !el) return;
    points.current = aligned.points;
    const zooming = zoomStart.current;
    drawStart.current = performance.now();
    u.batch(() => {
      u.setData(aligned.data, true);
      if (xRange) u.setScale("x", { min: xRange[0], max: xRange[1] });
    });
    if (zooming !== null) {
      zoomStart.current = null;
      const ms = performance.now() - zooming;
      el.dataset.zoomMs = ms.toFixed(1);
      console.info(`[mp] chart: zoom answered in ${ms.toFixed(1)} ms (${aligned.points} points)`);
    }
    // shape: a rebuilt chart needs its data again.
  }, [aligned, xRange?.[0], xRange?.[1], shape]); // eslint-disable-line react-hooks/exhaustive-deps

  // Markers and limits changed alone: redraw without new data.
  const overlayKey = JSON.stringify([markers, limits]);
  const drawnOverlay = useRef(overlayKey);
  useEffect(() => {
    if (drawnOverlay.current === overlayKey) return;
    drawnOverlay.current = overlayKey;
    drawStart.current = performance.now();
    plot.current?.redraw(false, false);
  }, [overlayKey]);

  return <div ref={box} className={`chart${className ? ` ${className}` : ""}`} data-testid={testId} role="img" aria-label={ariaLabel ?? "Trend chart"} />;
}

function drawOverlay(u: uPlot, items: ChartMarker[] | ChartLimit[], what: "bands" | "lines") {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  const dpr = uPlot.pxRatio;
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  if (what === "bands") {
    for (const m of items as ChartMarker[]) {
      const x0 = u.valToPos(m.from, "x", true);
      const x1 = u.valToPos(m.to, "x", true);
      if (!Number.isFinite(x0) || !Number.isFinite(x1)) continue;
      const a = Math.max(left, Math.min(x0, x1));
      const b = Math.min(left + width, Math.max(x0, x1));
      if (b < left || a > left + width) continue;
      ctx.fillStyle = m.color ?? "rgba(198, 40, 40, 0.12)";
      // Short spans stay visible: at least 4 px wide.
      const w = Math.max(4 * dpr, b - a);
      ctx.fillRect(a, top, w, height);
      if (m.strip) {
        ctx.fillStyle = m.strip;
        ctx.fillRect(a, top, w, 4 * dpr);
      }
      if (m.label) {
        ctx.fillStyle = "#7f1d1d";
        ctx.font = `${11 * dpr}px system-ui, sans-serif`;
        const tw = ctx.measureText(m.label).width;
        const x = a + w + tw + 6 * dpr < left + width ? a + (w > tw + 6 * dpr ? 3 * dpr : w + 3 * dpr) : Math.max(left, a - tw - 3 * dpr);
        ctx.fillText(m.label, x, top + 16 * dpr);
      }
    }
  } else {
    for (const l of items as ChartLimit[]) {
      const key = scaleKey(l.unit ?? "");
      if (!u.scales[key]) continue;
      const y = u.valToPos(l.value, key, true);
      if (!Number.isFinite(y) || y < top || y > top + height) continue;
      ctx.strokeStyle = l.color ?? "#c62828";
      ctx.lineWidth = dpr;
      ctx.setLineDash((l.dash ?? [6, 4]).map((d) => d * dpr));
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      if (l.label) {
        ctx.setLineDash([]);
        ctx.fillStyle = l.color ?? "#c62828";
        ctx.font = `${11 * dpr}px system-ui, sans-serif`;
        ctx.fillText(l.label, left + 4 * dpr, y - 3 * dpr);
      }
    }
  }
  ctx.restore();
}
