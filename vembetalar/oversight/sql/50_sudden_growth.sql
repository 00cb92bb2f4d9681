-- sudden_growth: each prescriber's and workplace's monthly uttag of a watched group in the last
-- {recent_months} months against its own earlier months (zeros included). The spread is the
-- robust one of those months, never below the Poisson spread sqrt(median), {relative_floor} × the
-- median, nor 1 uttag a month.
-- Only entities active (any ATC) in at least half of the earlier months are scored, so a
-- newcomer is not "growth".

-- step: sg_active view
SELECT entity_kind, entity_code FROM (
  SELECT 'prescriber' AS entity_kind, a.prescriber AS entity_code, count(DISTINCT a.month_no) AS active
  FROM agg a JOIN months m ON a.month_no = m.month_no WHERE m.recent = 0 GROUP BY a.prescriber
  UNION ALL
  SELECT 'workplace' AS entity_kind, a.workplace AS entity_code, count(DISTINCT a.month_no) AS active
  FROM agg a JOIN months m ON a.month_no = m.month_no WHERE m.recent = 0 GROUP BY a.workplace
) x
WHERE active * 2 >= (SELECT count(*) FROM months WHERE recent = 0)
  AND (SELECT count(*) FROM months WHERE recent = 0) >= {min_history_months}

-- step: sg_monthly table
SELECT 'prescriber' AS entity_kind, prescriber AS entity_code, group_code, month_no, sum(n) AS n
FROM aggw GROUP BY prescriber, group_code, month_no
UNION ALL
SELECT 'workplace' AS entity_kind, workplace AS entity_code, group_code, month_no, sum(n) AS n
FROM aggw GROUP BY workplace, group_code, month_no

-- step: sg_filled table
SELECT k.entity_kind, k.entity_code, k.group_code, m.month_no, m.recent,
  CAST(coalesce(s.n, 0) AS DOUBLE) AS n
FROM (
  SELECT DISTINCT x.entity_kind, x.entity_code, x.group_code
  FROM sg_monthly x JOIN sg_active a ON x.entity_kind = a.entity_kind AND x.entity_code = a.entity_code
) k
CROSS JOIN months m
LEFT JOIN sg_monthly s ON s.entity_kind = k.entity_kind AND s.entity_code = k.entity_code
  AND s.group_code = k.group_code AND s.month_no = m.month_no

-- step: sg_base table
SELECT entity_kind, entity_code, group_code, count(*) AS base_months,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS med,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY n) AS p99
FROM sg_filled WHERE recent = 0 GROUP BY entity_kind, entity_code, group_code

-- step: sg_mad view
SELECT b.entity_kind, b.entity_code, b.group_code,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(f.n - b.med)) AS mad
FROM sg_filled f JOIN sg_base b ON f.entity_kind = b.entity_kind AND f.entity_code = b.entity_code
  AND f.group_code = b.group_code
WHERE f.recent = 0
GROUP BY b.entity_kind, b.entity_code, b.group_code

-- step: sg_recent view
SELECT entity_kind, entity_code, group_code, sum(n) AS total, sum(n) / count(*) AS mean
FROM sg_filled WHERE recent = 1 GROUP BY entity_kind, entity_code, group_code

-- step: flags_sudden_growth view
SELECT 'sudden_growth' AS indicator, r.entity_kind, r.entity_code, r.group_code AS subject,
  'uttag per månad' AS measure, 'egen historik' AS peer_group, r.mean AS value,
  b.base_months AS peer_n, b.med, b.p99,
  (r.mean - b.med) / greatest(1.4826 * m.mad, sqrt(b.med), {relative_floor} * b.med, 1.0) AS score,
  r.total AS aux1, CAST(NULL AS DOUBLE) AS aux2, CAST(NULL AS DOUBLE) AS aux3
FROM sg_recent r
JOIN sg_base b ON r.entity_kind = b.entity_kind AND r.entity_code = b.entity_code
  AND r.group_code = b.group_code
JOIN sg_mad m ON r.entity_kind = m.entity_kind AND r.entity_code = m.entity_code
  AND r.group_code = m.group_code
WHERE (r.mean - b.med) / greatest(1.4826 * m.mad, sqrt(b.med), {relative_floor} * b.med, 1.0) >= {min_score}
