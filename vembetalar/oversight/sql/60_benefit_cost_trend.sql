-- benefit_cost_trend: each workplace's benefit cost per month in the last {recent_months} months
-- against its earlier months, as a log ratio ln((recent + {cost_smoothing}) / (earlier +
-- {cost_smoothing})), compared with the same ratio of its peer workplaces (same care type and
-- region): a workplace whose costs grow like everyone's is not a finding.

-- step: bc_values view
SELECT e.entity_code, e.peer_group,
  CAST(coalesce(sum(CASE WHEN m.recent = 1 THEN a.cost END), 0) AS DOUBLE)
    / (SELECT count(*) FROM months WHERE recent = 1) AS recent_mean,
  CAST(coalesce(sum(CASE WHEN m.recent = 0 THEN a.cost END), 0) AS DOUBLE)
    / (SELECT count(*) FROM months WHERE recent = 0) AS base_mean
FROM ent e
JOIN agg a ON e.entity_kind = 'workplace' AND a.workplace = e.entity_code
JOIN months m ON a.month_no = m.month_no
WHERE (SELECT count(*) FROM months WHERE recent = 0) >= {min_history_months}
GROUP BY e.entity_code, e.peer_group

-- step: bc_growth table
SELECT entity_code, peer_group, recent_mean, base_mean,
  ln((recent_mean + {cost_smoothing}) / (base_mean + {cost_smoothing})) AS value
FROM bc_values

-- step: bc_stats table
SELECT peer_group, count(*) AS peer_n,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
  percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS q1,
  percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS q3,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY value) AS p99
FROM bc_growth GROUP BY peer_group

-- step: bc_mad view
SELECT s.peer_group, percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(g.value - s.med)) AS mad
FROM bc_growth g JOIN bc_stats s ON g.peer_group = s.peer_group
GROUP BY s.peer_group

-- step: flags_benefit_cost_trend view
SELECT 'benefit_cost_trend' AS indicator, 'workplace' AS entity_kind, g.entity_code,
  'förmånskostnad' AS subject, 'tillväxt' AS measure, g.peer_group, g.value, s.peer_n, s.med, s.p99,
  (g.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, {floor_growth}) AS score,
  g.recent_mean AS aux1, g.base_mean AS aux2, CAST(NULL AS DOUBLE) AS aux3
FROM bc_growth g
JOIN bc_stats s ON g.peer_group = s.peer_group
JOIN bc_mad m ON g.peer_group = m.peer_group
WHERE s.peer_n >= {min_peers}
  AND (g.value - s.med) / greatest(1.4826 * m.mad, (s.q3 - s.q1) / 1.349, {floor_growth}) >= {min_score}
