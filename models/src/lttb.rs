//! Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013): keeps
//! the points that shape a line chart (peaks, dips) when drawing fewer.

/// Indices of the at most `threshold` points of `points` (x ascending) that
/// LTTB keeps: always the first and the last, then per bucket the point
/// forming the largest triangle with the previously kept point and the
/// average of the next bucket. Fewer points than `threshold` (or a
/// threshold below 3) keep everything, or just the ends.
pub fn lttb(points: &[(f64, f64)], threshold: usize) -> Vec<usize> {
    let n = points.len();
    if threshold >= n || n <= 2 {
        return (0..n).collect();
    }
    if threshold < 3 {
        return match threshold {
            0 => Vec::new(),
            1 => vec![0],
            _ => vec![0, n - 1],
        };
    }
    let mut kept = Vec::with_capacity(threshold);
    kept.push(0);
    // The points between the ends, split into threshold - 2 buckets.
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    for i in 0..threshold - 2 {
        let start = (i as f64 * every) as usize + 1;
        let end = (((i + 1) as f64 * every) as usize + 1).min(n - 1);
        // Average of the next bucket (the last point for the last bucket).
        let next_start = end;
        let next_end = ((((i + 2) as f64) * every) as usize + 1).min(n);
        let next = &points[next_start..next_end.max(next_start + 1).min(n)];
        let (avg_x, avg_y) = {
            let len = next.len().max(1) as f64;
            let (sx, sy) = next.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p.0, sy + p.1));
            (sx / len, sy / len)
        };
        let (ax, ay) = points[a];
        let mut best = start;
        let mut best_area = -1.0;
        for (j, &(x, y)) in points.iter().enumerate().take(end.max(start + 1)).skip(start) {
            let area = ((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay)).abs();
            if area > best_area {
                best_area = area;
                best = j;
            }
        }
        kept.push(best);
        a = best;
    }
    kept.push(n - 1);
    kept
}

#[cfg(test)]
mod tests {
    use super::lttb;

    #[test]
    fn short_series_are_kept_whole() {
        let pts: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, i as f64)).collect();
        assert_eq!(lttb(&pts, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(lttb(&pts, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(lttb(&pts, 2), vec![0, 4]);
        assert_eq!(lttb(&pts, 1), vec![0]);
        assert!(lttb(&[], 3).is_empty());
    }

    #[test]
    fn keeps_the_threshold_count_ends_and_order() {
        let pts: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, (i as f64 / 10.0).sin())).collect();
        for threshold in [3, 10, 99, 500, 999] {
            let kept = lttb(&pts, threshold);
            assert_eq!(kept.len(), threshold);
            assert_eq!(kept[0], 0);
            assert_eq!(*kept.last().unwrap_or(&0), 999);
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        }
    }

    #[test]
    fn keeps_a_lone_spike() {
        // A flat line with one spike: the spike must survive 100 → 10.
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, if i == 57 { 50.0 } else { 1.0 }))
            .collect();
        let kept = lttb(&pts, 10);
        assert!(kept.contains(&57), "{kept:?}");
        // And a dip likewise.
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, if i == 23 { -50.0 } else { 1.0 }))
            .collect();
        assert!(lttb(&pts, 10).contains(&23));
    }

    #[test]
    fn a_straight_line_keeps_points_from_every_bucket() {
        let pts: Vec<(f64, f64)> = (0..102).map(|i| (i as f64, 2.0 * i as f64)).collect();
        let kept = lttb(&pts, 12);
        // 100 middle points in 10 buckets of 10: one from each.
        for (b, idx) in kept[1..11].iter().enumerate() {
            assert!((b * 10 + 1..b * 10 + 11).contains(idx), "bucket {b}: {idx}");
        }
    }
}
